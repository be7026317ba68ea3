"""Fixtures of the AppTest tests: a small real run, fresh caches, a checkpoints folder per test.

Each test gets its own checkpoints folder ($VAE_CHECKPOINTS) holding a copy of
one run, "small": the tutorial's model trained 2 epochs on 1,024 real digits,
with what the views computed and kept once for the test run (Home's thumbnails,
the test digits' codes and ELBOs), so that each test reads them instead of
computing them again; `bare_root` is the run without them, for the tests of
their making.
`view(page)` opens the app at a page as a link does: the entry script, with
the sidebar's "Checkpoint" picker, runs that page (Home does not run). After a
later `switch_page`, AppTest runs the page file alone: the picker is not
there and the views fall back to the default run, the only one here.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from tests.app.helpers import RUN
from ui.home import KEPT
from vae_core import analysis, latent, objectives
from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core.config import Config
from tests.timeline_frames import record


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """Folder `name`, made by `make` once for the whole test run: pytest-xdist's workers share it (the first to
    ask makes it, under a lock, while the others wait), so that each does not train and compute it again.
    The tests only read it, or copy from it."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # this run's folder, above each worker's own
    folder = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory, mnist) -> Path:
    """A real 2-epoch run on the first 1,024 training digits, saved once for the test run, with the timeline
    frame the trainer records after each epoch (beside it, in timeline/)."""
    folder = made_once(tmp_path_factory, "made", lambda made: record(
        made / RUN, mnist, Config(epochs=2, limit=1024, batch_size=128, test_every=1)))
    return runs.checkpoint_path(folder, RUN)


@pytest.fixture(scope="session")
def quick_tsne(small_checkpoint, mnist, tmp_path_factory) -> np.ndarray:
    """A real but short T-SNE of the small run's 10,000 test codes, to pre-store in a run's cache; made once
    for the test run (its affinities alone take seconds), as the small run is."""
    def make(folder: Path) -> None:
        vae = ckpt.load_state(small_checkpoint).vae.eval()
        means = latent.encode(vae, mnist.test_images).loc
        np.save(folder / "tsne.npy", analysis.tsne_2d(means, early_exaggeration_iter=10, n_iter=10))

    return np.load(made_once(tmp_path_factory, "quick-tsne", make) / "tsne.npy")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    stop_background_tasks()
    st.cache_data.clear()
    st.cache_resource.clear()


def stop_background_tasks() -> None:
    """Cancel the test's T-SNE maps and log p(x) estimates and wait for the pool's workers to end: a thread
    still in native code when the interpreter exits aborts the whole test run (exit code 134)."""
    from ui.tasks import pool

    pool().shutdown()


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("VAE_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="session")
def kept_files(small_checkpoint, tmp_path_factory) -> list[Path]:
    """The files in which the app keeps what it computes once per checkpoint of the small run: Home's
    thumbnails, the test digits' codes and their ELBOs (16 draws each: 5 s), made once (for the test run) by
    the views themselves."""
    folder = made_once(tmp_path_factory, "kept", lambda kept: _keep(small_checkpoint, kept))
    cache = folder / RUN / runs.CACHE_FOLDER
    return sorted(f for f in cache.iterdir() if not f.name.startswith("."))


def _keep(small_checkpoint: Path, root: Path) -> None:
    """Open Home, Draw and Evaluate on a copy of the small run in `root`, as a user would: their caches stay."""
    from tests.app.helpers import app, view

    target = runs.checkpoint_path(root, RUN)
    target.parent.mkdir()
    shutil.copy2(small_checkpoint, target)
    before = os.environ.get("VAE_CHECKPOINTS")
    os.environ["VAE_CHECKPOINTS"] = str(root)
    try:
        assert not app().exception
        for page in ("pages/draw.py", "pages/evaluate.py"):  # the codes, and the ELBOs, of the 10,000 test digits
            assert not view(page).exception
    finally:
        os.environ.pop("VAE_CHECKPOINTS") if before is None else os.environ.update(VAE_CHECKPOINTS=before)
        stop_background_tasks()
        st.cache_data.clear()
        st.cache_resource.clear()
    cache = target.parent / runs.CACHE_FOLDER
    assert sorted(cache.glob(f"{KEPT}-*")), "Home kept no thumbnails"
    for name in (latent.MEANS_NAME, objectives.TEST_ELBOS_NAME):
        assert list(cache.glob(f"{name}-*")), f"the views kept no {name}"


@pytest.fixture
def bare_root(empty_root, small_checkpoint) -> Path:
    """A checkpoints folder of its own holding a copy of the small run, with nothing in its cache."""
    target = runs.checkpoint_path(empty_root, RUN)
    target.parent.mkdir()
    shutil.copy2(small_checkpoint, target)
    return empty_root


@pytest.fixture
def root(bare_root, kept_files, small_checkpoint) -> Path:
    """A checkpoints folder of its own holding a copy of the small run, its timeline and what the views keep
    once per checkpoint (Home's thumbnails, the test digits' codes and ELBOs)."""
    shutil.copytree(small_checkpoint.parent / runs.TIMELINE_FOLDER, bare_root / RUN / runs.TIMELINE_FOLDER)
    cache = bare_root / RUN / runs.CACHE_FOLDER
    cache.mkdir()
    for file in kept_files:
        shutil.copy2(file, cache / file.name)
    return bare_root
