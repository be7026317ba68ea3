"""Views over caches that cannot be written or are wrong: they draw from memory, or recompute, and say so.

The full disk is real: a small tmpfs (root only) holds a copy of the run and is
filled up, so every cache write fails with ENOSPC. A file named `cache` where
the run's cache folder belongs fails for root too. Wrong cache files are real
files, written as damage would leave them.
"""

from __future__ import annotations

import os
import shutil
import zipfile

import numpy as np
import pytest
import streamlit as st

from tests.app.helpers import LATENT_MAP, RUN, TSNE_CACHE, app, button, figures, finish, run_info, view
from tests.test_run_cache import TWO_GIB, sparse_npy, zeros_npz
from tests.test_faults import _small_disk
from tests.test_tasks import wait_until
from ui import tasks
from ui.home import KEPT, KEPT_ARRAYS, KEPT_BYTES, PICTURES
from ui.runs import open_run
from ui.codes import UNKEPT_ELBOS
from vae_core import objectives
from vae_core import run_cache, runs
from vae_core.objectives import Cancelled, iwae_name

INTERPOLATE, EVALUATE = "pages/interpolate.py", "pages/evaluate.py"
HOME = "home"  # opened through the entry script, as a browser does
N_PICTURES = len(PICTURES)


def opened(page: str):
    return app() if page == HOME else view(page)


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def widget(at, kind: str, key: str):
    return next(w for w in at.get(kind) if w.key == key)


# What each view draws when it works: its pictures, its map or its ELBO.
DRAWN = {
    HOME: lambda at: len(at.image) == N_PICTURES,
    LATENT_MAP: lambda at: figures(at)[0]["layout"]["title"]["text"].startswith("PCA · run small"),
    INTERPOLATE: lambda at: figures(at)[0]["layout"]["title"]["text"].startswith("The path on the PCA map"),
    EVALUATE: lambda at: at.metric[0].label == "ELBO of the first 1,000 test images",
}
UNKEPT = {HOME: "Home's thumbnails", LATENT_MAP: "the test digits' codes", INTERPOLATE: "the test digits' codes",
          EVALUATE: "the test digits' ELBOs"}


def fill(folder) -> None:
    """Write zeros into `folder` until its disk has no byte left."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while os.write(fd, bytes(size)):
                    pass
            except OSError:  # ENOSPC: full at this grain, try a finer one
                continue
    finally:
        os.close(fd)


@pytest.fixture
def full_disk(tmp_path, monkeypatch, small_checkpoint):
    """A checkpoints folder holding a copy of the small run, on a 16 MB tmpfs filled to the last byte."""
    with _small_disk(tmp_path / "disk", 16) as disk:
        root = disk / "checkpoints"
        (root / RUN).mkdir(parents=True)
        shutil.copy2(small_checkpoint, root / RUN / runs.CHECKPOINT_FILE)
        monkeypatch.setenv("VAE_CHECKPOINTS", str(root))
        fill(disk)
        yield root
        tasks.pool().shutdown()  # before the disk goes: no worker may still hold a file on it


# ---------------------------------------------------------------- item 2: caches that cannot be written


@pytest.mark.parametrize("page", [HOME, LATENT_MAP, INTERPOLATE, EVALUATE])
def test_a_view_on_a_full_disk_draws_from_memory_and_says_its_cache_was_not_kept(full_disk, page):
    at = opened(page)
    assert not at.exception and not at.error
    assert DRAWN[page](at)
    then = ("This session keeps them; another computes them again." if page == EVALUATE else
            "It is computed again next time.")
    assert f"Could not keep {UNKEPT[page]} on disk: no space left on device. {then}" in " ".join(captions(at))
    assert not list((full_disk / RUN).rglob("*.np[yz]"))  # nothing kept, no temp file left
    if page == EVALUATE:  # held for the session's reruns, which do not estimate 10,000 ELBOs again
        assert list(at.session_state[UNKEPT_ELBOS]) == [run_info(full_disk).digest]


@pytest.mark.parametrize("page", [HOME, LATENT_MAP])
def test_a_file_named_cache_in_the_run_folder_is_named_and_the_view_still_draws(bare_root, page):
    root = bare_root
    (root / RUN / runs.CACHE_FOLDER).write_text("not a folder")
    at = opened(page)
    assert not at.exception and not at.error
    assert DRAWN[page](at)
    assert "the run's 'cache' is a file, not a folder" in " ".join(captions(at))
    assert (root / RUN / runs.CACHE_FOLDER).read_text() == "not a folder"


def test_a_tsne_map_its_worker_cannot_keep_on_a_full_disk_is_shown_from_this_session(full_disk, quick_tsne):
    gate = []

    def computed(task) -> np.ndarray:  # the map, once the test lets it finish; a stop still stops it
        wait_until(lambda: gate or task.should_stop())
        if not gate:
            raise Cancelled()
        return quick_tsne

    task = tasks.start(open_run(RUN), TSNE_CACHE, computed)  # the real task and its real store
    at = view(LATENT_MAP)  # follows that task: identical requests share one
    gate.append(True)
    finish(task)
    at.run()
    assert not at.exception and not at.error
    assert task.state == tasks.DONE
    assert figures(at)[0]["layout"]["title"]["text"] == f"T-SNE · run {RUN} · epoch 2"
    assert "Could not keep this T-SNE map on disk: no space left on device. This session keeps it" in \
        " ".join(captions(at))
    assert tasks.pool().tasks() == []  # not computed again
    assert not list((full_disk / RUN).rglob("tsne-*"))


def test_an_estimate_that_cannot_be_kept_on_a_full_disk_is_shown_from_this_session(full_disk):
    at = view(EVALUATE)
    widget(at, "number_input", "eval_images").set_value(100)
    widget(at, "number_input", "eval_k").set_value(1)
    at.run()
    button(at, "Estimate log p(x) with K = 1 on 100 images").click()
    at.run()
    (task,) = tasks.pool().tasks()
    finish(task)
    at.run()
    assert not at.exception and not at.error
    assert [m.label for m in at.metric][1] == "log p(x) ≥ (K = 1, same images)"
    assert "Could not keep this estimate on disk: no space left on device" in " ".join(captions(at))
    assert tasks.pool().tasks() == []


# ---------------------------------------------------------------- item 7: caches that load but are wrong


def cache(root, name: str, suffix: str = ".npy"):
    info = run_info(root)
    return info.path, run_cache.cache_file(info.path, name, info.digest, suffix)


@pytest.mark.parametrize("damage", ["5x2", "50M x 2", "strings"])
def test_a_wrong_tsne_map_is_deleted_and_the_map_computed_again(root, damage):
    path, file = cache(root, TSNE_CACHE)
    if damage == "50M x 2":  # 800 MB of points, sparse on disk
        sparse_npy(file, (50_000_000, 2))
    else:
        xy = np.zeros((5, 2)) if damage == "5x2" else np.full((10_000, 2), "1.0")
        run_cache.store_cached(path, TSNE_CACHE, run_info(root).digest, xy)
    at = view(LATENT_MAP)
    assert not at.exception and not at.error
    assert figures(at)[0]["layout"]["title"]["text"].startswith("PCA · ")  # meanwhile
    assert [t.key[1] for t in tasks.pool().tasks()] == [TSNE_CACHE]  # computed again
    assert not file.exists()


def test_string_typed_test_elbos_are_replaced_by_the_estimated_ones(root):
    path, file = cache(root, objectives.TEST_ELBOS_NAME)
    run_cache.store_cached(path, objectives.TEST_ELBOS_NAME, run_info(root).digest, np.full(10_000, "-90.0"))
    at = view(EVALUATE)
    assert not at.exception and not at.error
    kept = run_cache.load_cached(path, objectives.TEST_ELBOS_NAME, run_info(root).digest, shape=(10_000,))
    assert at.metric[0].value == f"{kept[:1000].mean():.2f} nats"


def test_a_string_typed_estimate_is_deleted_and_offered_again(root):
    name = iwae_name(100, 1000, 0)  # the page's default K, N and seed
    path, file = cache(root, name)
    run_cache.store_cached(path, name, run_info(root).digest, np.full(1000, "-88.0"))
    at = view(EVALUATE)
    assert not at.exception and not at.error
    assert [m.label for m in at.metric] == ["ELBO of the first 1,000 test images"]
    assert button(at, "Estimate log p(x) with K = 100 on 1,000 images")
    assert not file.exists()


def kept_thumbnails(root) -> dict[str, np.ndarray] | None:
    info = run_info(root)
    return run_cache.load_cached_set(info.path, KEPT, info.digest, KEPT_ARRAYS, KEPT_BYTES)


def test_kept_thumbnails_holding_2_gib_of_zeros_are_drawn_again_and_replaced(root, tmp_path):
    _, file = cache(root, KEPT, ".npz")
    zeros_npz(file, {"samples": TWO_GIB})
    at = app()
    assert not at.exception and not at.error
    assert len(at.image) == N_PICTURES
    assert file.stat().st_size < KEPT_BYTES and kept_thumbnails(root)["samples"].nbytes < KEPT_BYTES


def test_a_20000_by_20000_kept_thumbnail_is_drawn_again_and_replaced(root):
    app()  # draws the thumbnails and keeps them
    _, file = cache(root, KEPT, ".npz")
    with np.load(file) as npz:
        arrays = {key: npz[key] for key in npz.files}
    zeros_npz(file, {**arrays, "samples": (20_000, 20_000)})  # the rest as it was kept
    st.cache_data.clear()
    st.cache_resource.clear()
    at = app()
    assert not at.exception and not at.error
    assert len(at.image) == N_PICTURES
    assert kept_thumbnails(root)["samples"].shape == arrays["samples"].shape
    assert zipfile.ZipFile(file).getinfo("samples.npy").file_size < KEPT_BYTES
