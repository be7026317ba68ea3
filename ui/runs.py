"""Runs, models and data for the views: the sidebar picker and cached loaders.

    from ui.runs import mnist_test, require_model, run_picker
    run_picker()                        # in streamlit_app.py: shared by every view
    info, vae = require_model()         # in a view: st.info + st.stop when there is none

Models are cached with st.cache_resource and keyed by the checkpoint's
content hash, so a checkpoint rewritten by a training run is reloaded;
arrays worth keeping (latent means, T-SNE maps) go to a disk cache in the
run's folder, keyed by the same hash.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae_core import analysis
from vae_core import checkpoint as ckpt
from vae_core.data import load_split
from vae_core.model import VAE

DEFAULT_RUN = "tutorial"
RUN_KEY = "run"  # session_state key of the picked run's name
_ENTERED = "_entered"  # set by streamlit_app.py in every session it runs for
_WANTED = "_wanted"  # the page a session asked for before the entry script ran


def enter() -> None:
    """Called by the entry script after st.navigation: mark the session, honour a deep link."""
    st.session_state[_ENTERED] = True
    wanted = st.session_state.pop(_WANTED, None)
    if wanted:
        st.switch_page(wanted)


def through_entry(page: str) -> None:
    """Send a session that reached `page` without the entry script through it first.

    A freshly started server serves its very first request from pages/ in
    Streamlit's older multipage mode, skipping streamlit_app.py (no
    navigation, no picker) until st.navigation has run once.
    """
    if not st.session_state.get(_ENTERED):
        st.session_state[_WANTED] = page
        st.switch_page("streamlit_app.py")


def checkpoints_root() -> Path:
    """Where runs live: $VAE_CHECKPOINTS (tests use it) or the project's checkpoints/."""
    return Path(os.environ.get("VAE_CHECKPOINTS", ckpt.DEFAULT_ROOT))


def _stamp(root: Path) -> tuple:
    """Changes whenever a checkpoint is added, replaced or removed."""
    files = sorted(root.glob(f"*/{ckpt.CHECKPOINT_FILE}"))
    return tuple((str(f), f.stat().st_mtime_ns) for f in files if f.exists())


@st.cache_data(show_spinner=False, max_entries=8)
def _runs(root: str, stamp: tuple) -> list[ckpt.RunInfo]:
    return ckpt.list_runs(root)


def runs() -> list[ckpt.RunInfo]:
    """Readable runs, newest first (cached until a checkpoint changes)."""
    root = checkpoints_root()
    return _runs(str(root), _stamp(root))


def describe(info: ckpt.RunInfo) -> str:
    """One line for a run: name, epoch and last test ELBO."""
    elbo = f" · test ELBO {-info.test_loss:.2f}" if info.test_loss is not None else ""
    return f"{info.name} · epoch {info.epoch}/{info.epochs}{elbo}"


def default_run(available: list[ckpt.RunInfo]) -> ckpt.RunInfo | None:
    """The shipped tutorial run when present, else the newest."""
    by_name = {r.name: r for r in available}
    return by_name.get(DEFAULT_RUN) or (available[0] if available else None)


def run_picker() -> ckpt.RunInfo | None:
    """Sidebar select box over the runs; the choice is shared by every view."""
    available = runs()
    if not available:
        st.sidebar.caption("No trained runs yet.")
        return None
    by_name = {r.name: r for r in available}
    if st.session_state.get(RUN_KEY) not in by_name:
        st.session_state[RUN_KEY] = default_run(available).name
    name = st.sidebar.selectbox("Checkpoint", list(by_name), key=RUN_KEY,
                                format_func=lambda n: describe(by_name[n]),
                                help="Runs in checkpoints/, newest first.")
    return by_name[name]


def picked_run() -> ckpt.RunInfo | None:
    """The run chosen in the sidebar, or the default one when none is chosen."""
    available = runs()
    chosen = {r.name: r for r in available}.get(st.session_state.get(RUN_KEY))
    return chosen or default_run(available)


def require_model() -> tuple[ckpt.RunInfo, VAE]:
    """The picked run and its model, or an explanation with a link to Train, then stop."""
    info = picked_run()
    if info is None:
        st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    return info, load_model(str(info.path), digest(info.path))


@st.cache_data(show_spinner=False, max_entries=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    return ckpt.file_digest(path)


def digest(path: Path) -> str:
    """SHA-256 of a checkpoint, recomputed only when the file changes."""
    stat = path.stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def load_model(path: str, content_digest: str) -> VAE:
    """The VAE of a checkpoint, in eval mode on the CPU (one per content hash)."""
    return ckpt.load_state(path).vae.eval()


@st.cache_resource(show_spinner="Loading the MNIST test set…")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 test images (n, 784) and labels, loaded once per server (training runs elsewhere)."""
    return load_split(train=False)


def cached_array(info: ckpt.RunInfo, name: str) -> np.ndarray | None:
    """The array stored under `name` for this checkpoint's content, or None."""
    return ckpt.load_cached(info.path, name, digest(info.path))


def store_array(info: ckpt.RunInfo, name: str, value: np.ndarray) -> None:
    """Keep `value` under `name` for this checkpoint's content, in the run's cache/ folder."""
    ckpt.store_cached(info.path, name, digest(info.path), value)


def disk_cached(info: ckpt.RunInfo, name: str, compute) -> np.ndarray:
    """The array stored under `name`, computed with `compute()` and stored the first time."""
    value = cached_array(info, name)
    if value is None:
        value = np.asarray(compute())
        store_array(info, name, value)
    return value


def latent_means(info: ckpt.RunInfo, vae: VAE) -> np.ndarray:
    """z_loc of the 10,000 test images for this checkpoint, from the disk cache when there."""
    return disk_cached(info, analysis.MEANS_NAME, lambda: analysis.latent_means(vae, mnist_test()[0]))
