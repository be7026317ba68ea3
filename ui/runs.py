"""Runs, models and data for the views: the sidebar picker and cached loaders.

    from ui.runs import mnist_test, require_model, run_picker
    run_picker()                        # in streamlit_app.py: shared by every view
    model = require_model()             # in a view: st.info + st.stop when there is none
    model.vae, model.epoch, model.digest

A view loads one version of a checkpoint: its bytes are read once, hashed, and
the model, its epoch and every array derived from it (latent means, maps)
come from those bytes and are cached under their hash. A training run that
replaces the file meanwhile can never pair one epoch's title with another
epoch's content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ui import jobs, views
from vae_core import analysis
from vae_core import checkpoint as ckpt
from vae_core import monitor
from vae_core.data import load_split
from vae_core.model import VAE
from vae_core.objectives import parse_iwae_name

DEFAULT_RUN = "tutorial"
RUN_KEY = "run"  # session_state key of the picked run's name (plain state: it outlives every page)
PICKER_KEY = "run_picker"  # the sidebar widget's own key, a mirror of RUN_KEY


@dataclass(frozen=True)
class Model:
    """One version of a run's checkpoint, loaded; everything a view shows of it comes from these bytes."""
    name: str
    path: Path  # the checkpoint file
    digest: str  # SHA-256 of the bytes the model was built from
    epoch: int  # epochs completed
    epochs: int  # epochs asked for
    test_loss: float | None  # last test loss per image
    vae: VAE
    history: dict[str, list]  # the run's History as plain lists

    @property
    def version(self) -> str:
        """Short id of this checkpoint version, for titles and file names."""
        return self.digest[:8]


def checkpoints_root() -> Path:
    """Where runs live: $VAE_CHECKPOINTS (tests use it) or the project's checkpoints/."""
    return Path(os.environ.get("VAE_CHECKPOINTS", ckpt.DEFAULT_ROOT))


def _stamp(root: Path) -> tuple:
    """Changes whenever a checkpoint is added, replaced or removed."""
    stamps = []
    for f in sorted(root.glob(f"*/{ckpt.CHECKPOINT_FILE}")):
        try:
            stamps.append((str(f), f.stat().st_mtime_ns))
        except FileNotFoundError:  # removed since the glob
            pass
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, stamp: tuple) -> tuple[list[ckpt.RunInfo], dict[str, str]]:
    return ckpt.scan_runs(root)


def runs() -> list[ckpt.RunInfo]:
    """Readable runs, newest first (cached until a checkpoint changes)."""
    root = checkpoints_root()
    return _scan(str(root), _stamp(root))[0]


def unreadable_runs() -> dict[str, str]:
    """Runs whose checkpoint cannot be read, with why."""
    root = checkpoints_root()
    return _scan(str(root), _stamp(root))[1]


def describe(info: ckpt.RunInfo) -> str:
    """One line for a run: name, epochs completed and last test ELBO."""
    elbo = f" · test ELBO {-info.test_loss:.2f}" if info.test_loss is not None else ""
    return f"{info.name} · epoch {info.epoch}/{info.epochs}{elbo}"


def default_run(available: list[ckpt.RunInfo]) -> ckpt.RunInfo | None:
    """The shipped tutorial run when present, else the newest."""
    by_name = {r.name: r for r in available}
    return by_name.get(DEFAULT_RUN) or (available[0] if available else None)


def pick(name: str) -> None:
    """Switch every view, and the sidebar picker from its next drawing on, to run `name`."""
    st.session_state[RUN_KEY] = name


def _new_run(name: str | None) -> bool:
    """True for a run folder that exists but has no checkpoint yet (its first epoch is under way)."""
    if not name:
        return False
    try:
        return ckpt.run_dir(checkpoints_root(), name).is_dir()
    except ckpt.RunNameError:
        return False


def picked_name() -> str | None:
    """The name of the run the session looks at: the picker's choice, else the default run."""
    available = runs()
    name = st.session_state.get(RUN_KEY)
    if name in {r.name for r in available} or _new_run(name):
        return name
    fallback = default_run(available)
    return fallback.name if fallback else None


def run_picker() -> str | None:
    """Sidebar select box over the runs; the choice is shared by every view."""
    name = picked_name()
    for bad, why in unreadable_runs().items():
        st.sidebar.warning(f"Run {bad} cannot be read, so it is not listed: {why}", icon=":material/warning:")
    if name is None:
        st.sidebar.caption("No trained runs yet.")
        return None
    by_name = {r.name: r for r in runs()}
    starting = [run for run in jobs.training(checkpoints_root()) if run not in by_name]  # no checkpoint yet
    options = list(by_name) + starting + ([] if name in by_name or name in starting else [name])
    st.session_state[PICKER_KEY] = name
    st.sidebar.selectbox("Checkpoint", options, key=PICKER_KEY, on_change=lambda: pick(st.session_state[PICKER_KEY]),
                         format_func=lambda n: describe(by_name[n]) if n in by_name else _unsaved(n),
                         help="Runs in checkpoints/, newest first. Every view shows the run picked here.")
    return name


def _training(name: str) -> bool:
    """True while the run's status says it is starting or training (a damaged status says no)."""
    status = monitor.read_status(ckpt.run_dir(checkpoints_root(), name))
    return isinstance(status, dict) and status.get("state") in ("starting", "running")


def _unsaved(name: str) -> str:
    """One line for a run with no checkpoint yet."""
    return f"{name} · {'first epoch under way' if _training(name) else 'no epoch saved'}"


def require_model() -> Model:
    """The picked run's model, or an explanation with a link to Train, then stop."""
    name = picked_name()
    if name is None:
        st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
        views.link("train", "Go to Train")
        st.stop()
    path = ckpt.checkpoint_path(checkpoints_root(), name)
    if not path.exists():
        training = _training(name)
        st.info(f"Run {name} has not finished its first epoch yet: this view opens once it has." if training else
                f"Run {name} has no finished epoch: it ended before its first one did. Resume it on Train, "
                f"or pick another run in the sidebar.")
        views.link("train", f"{'Watch' if training else 'Resume'} {name} on Train")
        if training:
            st.fragment(_open_when_saved, run_every=2.0)(path)
        st.stop()
    try:
        data, digest = ckpt.read_snapshot(path)
        return _load(name, str(path), digest, data)
    except ckpt.CheckpointError as exc:
        st.error(f"Run {name} cannot be shown: {exc}", icon=":material/error:")
        st.stop()


def _open_when_saved(path: Path) -> None:
    """Polled while a run's first epoch is under way: redraw the view once its checkpoint exists."""
    if path.exists():
        st.rerun()


def open_run(name: str) -> Model:
    """Run `name`'s model as its checkpoint is now; CheckpointError says why it cannot be read."""
    path = ckpt.checkpoint_path(checkpoints_root(), name)
    data, digest = ckpt.read_snapshot(path)
    return _load(name, str(path), digest, data)


def current_model() -> Model | None:
    """The picked run's model, or None when there is none yet (or it cannot be read); never stops."""
    name = picked_name()
    if name is None:
        return None
    path = ckpt.checkpoint_path(checkpoints_root(), name)
    try:
        data, digest = ckpt.read_snapshot(path)
        return _load(name, str(path), digest, data)
    except ckpt.CheckpointError:
        return None


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load(name: str, path: str, digest: str, _data: bytes) -> Model:
    """The model of one checkpoint version, in eval mode on the CPU (one per content hash)."""
    state = ckpt.load_state(path, _data)
    h = state.history
    return Model(name, Path(path), digest, state.epoch, state.config.epochs,
                 h.test_loss[-1] if h.test_loss else None, state.vae.eval(), h.to_dict())


@st.cache_resource(show_spinner="Loading the MNIST test set…")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The 10,000 test images (n, 784) and labels, loaded once per server (training runs elsewhere)."""
    return load_split(train=False)


def cached_array(model: Model, name: str) -> np.ndarray | None:
    """The array stored under `name` for this checkpoint version, or None."""
    return ckpt.load_cached(model.path, name, model.digest)


def store_array(model: Model, name: str, value: np.ndarray) -> None:
    """Keep `value` under `name` for this checkpoint version, in the run's cache/ folder."""
    ckpt.store_cached(model.path, name, model.digest, value)


@dataclass(frozen=True)
class Estimate:
    """A log p(x) estimate kept for a checkpoint version."""
    k: int  # importance samples per image
    images: int  # the first `images` test images
    seed: int
    log_px: float  # the bound, averaged over the images: nats per image


def estimates(model: Model) -> list[Estimate]:
    """The log p(x) estimates kept for this checkpoint version, most images first, then most samples."""
    found = []
    for name in ckpt.cached_names(model.path, model.digest):
        parsed = parse_iwae_name(name)
        bounds = cached_array(model, name) if parsed else None
        if bounds is not None:
            found.append(Estimate(*parsed, float(bounds.mean())))
    return sorted(found, key=lambda e: (e.images, e.k, -e.seed), reverse=True)


def latent_means(model: Model) -> np.ndarray:
    """z_loc of the 10,000 test images for this checkpoint version, from the disk cache when there."""
    value = cached_array(model, analysis.MEANS_NAME)
    if value is None:
        value = analysis.latent_means(model.vae, mnist_test()[0])
        store_array(model, analysis.MEANS_NAME, value)
    return value
