"""Models and data for the views: the picked run's checkpoint loaded, and cached loaders.

    from ui.runs import mnist_test, require_model
    model = require_model()             # in a view: st.info + st.stop when there is none
    model.vae, model.epoch, model.digest
    xy = cached_array(model, name, (10000, 2))  # None when absent, or not that (then deleted, unread)
    say_unkept("this map", store_array(model, name, xy))  # a quiet caption when the disk would not keep it
    elbos, why = cached(model, name, compute, (10000,))  # read, else computed and kept; why: None once kept

A view loads one version of a checkpoint: its bytes are read once, hashed, and
the model, its epoch and every array derived from it (latent means, maps)
come from those bytes and are cached under their hash. A training run that
replaces the file meanwhile can never pair one epoch's title with another
epoch's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
import torch

from ui import views
from ui.picker import checkpoints_root, picked_name, training_now
from vae_core import checkpoint as ckpt
from vae_core import run_cache
from vae_core.runs import CheckpointError, checkpoint_path
from vae_core.data import load_split
from vae_core.model import VAE
from vae_core.objectives import parse_iwae_name


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


def require_model() -> Model:
    """The picked run's model, or an explanation with a link to Train, then stop."""
    name = picked_name()
    if name is None:
        st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
        views.link("train", "Go to Train")
        st.stop()
    path = checkpoint_path(checkpoints_root(), name)
    if not path.exists():
        training = training_now(name)
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
    except CheckpointError as exc:
        st.error(f"Run {name} cannot be shown: {exc}", icon=":material/error:")
        st.stop()


def _open_when_saved(path: Path) -> None:
    """Polled while a run's first epoch is under way: redraw the view once its checkpoint exists."""
    if path.exists():
        st.rerun()


def open_run(name: str) -> Model:
    """Run `name`'s model as its checkpoint is now; CheckpointError says why it cannot be read."""
    path = checkpoint_path(checkpoints_root(), name)
    data, digest = ckpt.read_snapshot(path)
    return _load(name, str(path), digest, data)


def current_model() -> Model | None:
    """The picked run's model, or None when there is none yet (or it cannot be read); never stops."""
    name = picked_name()
    if name is None:
        return None
    path = checkpoint_path(checkpoints_root(), name)
    try:
        data, digest = ckpt.read_snapshot(path)
        return _load(name, str(path), digest, data)
    except CheckpointError:
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


def n_test_images() -> int:
    """How many test images there are (10,000): the length of every array cached per test image."""
    return mnist_test()[0].shape[0]


def cached_array(model: Model, name: str, shape: tuple[int | None, ...]) -> np.ndarray | None:
    """The float array stored under `name` for this checkpoint version if it has `shape` (None axes: any
    length), else None: a damaged or wrong one is deleted unread and computed again."""
    return run_cache.load_cached(model.path, name, model.digest, shape=shape)


def store_array(model: Model, name: str, value: np.ndarray) -> str | None:
    """Keep `value` under `name` for this checkpoint version, in the run's cache/ folder. None once kept;
    else why it could not be (a full disk, a read-only folder), in words: the caller still has `value`.
    Safe from a worker thread: it draws nothing."""
    return run_cache.unkept_reason(run_cache.keep(model.path, name, model.digest, value))


def cached(model: Model, name: str, compute: Callable[[], np.ndarray],
           shape: tuple[int | None, ...]) -> tuple[np.ndarray, str | None]:
    """The float array `name` of this checkpoint version (run_cache.cached): read from the disk when it is
    there with `shape`, else `compute()`d and kept; and None, or why the disk would not keep it, in words
    (for say_unkept). Draws nothing: safe in a worker thread or a cached function."""
    value, error = run_cache.cached(model.path, name, model.digest, compute, (shape, np.floating))
    return value, run_cache.unkept_reason(error)


def say_unkept(what: str, reason: str | None, then: str = "It is computed again next time.") -> None:
    """A quiet line under the view when `what`, computed and shown, could not be kept on disk (`reason`)."""
    if reason:
        st.caption(f":material/info: Could not keep {what} on disk: {reason}. {then}")


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
    for name in run_cache.cached_names(model.path, model.digest):
        parsed = parse_iwae_name(name)  # (k, images, seed): one bound per image
        bounds = cached_array(model, name, (parsed[1],)) if parsed and parsed[1] <= n_test_images() else None
        if bounds is not None:
            found.append(Estimate(*parsed, float(bounds.mean())))
    return sorted(found, key=lambda e: (e.images, e.k, -e.seed), reverse=True)

