"""Constants and helpers the AppTest tests share (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from ui import jobs
from ui.picker import RUN_KEY
from vae_core import analysis
from vae_core import run_cache, runs

ROOT = Path(__file__).resolve().parent.parent.parent
RUN = "small"
SAMPLES, RECONSTRUCTIONS, LATENT_MAP, TRAIN = ("pages/samples.py", "pages/reconstructions.py",
                                               "pages/latent_map.py", "pages/train.py")
# What pages/latent_map.py caches its T-SNE under at the default perplexity (30) and seed (0).
TSNE_CACHE = analysis.tsne_name(30, 0)
N_TEST = 10_000


def run_info(root: Path) -> runs.RunInfo:
    """The small run as the picker lists it (a copy without its run.json is loaded, and given one)."""
    from vae_core.checkpoint import index_runs

    return next(r for r in index_runs(runs.scan_runs(root)).runs if r.name == RUN)


def app() -> AppTest:
    """The app after its first run (Home, through the entry script)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    return at


def view(page: str, **state) -> AppTest:
    """The app opened at `page`, as a link to it opens it: the entry script (the sidebar's run picker) runs
    the page, Home does not; `state` is put in the session first."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(page)
    at.run()
    return at


def stored_map(root: Path, xy: np.ndarray) -> AppTest:
    """The Latent map view, with `xy` stored as the run's T-SNE map (no wait for T-SNE)."""
    path = root / RUN / "checkpoint.pt"
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), xy)
    return view(LATENT_MAP)


def messages(elements) -> list[str]:
    return [e.value for e in elements]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def plotly_values(axis) -> np.ndarray:
    """Plotly JSON holds arrays either as lists or as typed base64 blocks."""
    if isinstance(axis, dict):
        return np.frombuffer(base64.b64decode(axis["bdata"]), dtype=np.dtype(axis["dtype"]))
    return np.asarray(axis)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


# ---------------------------------------------------------------- the Train view


def submit(at: AppTest, label: str = "Start", **values) -> AppTest:
    """Fill the Train form's widgets (by key) and press one of its submit buttons."""
    for key, value in values.items():
        form_widget(at, key).set_value(value)
    button(at, label).click()
    return at.run()


def form_widget(at: AppTest, key: str):
    for kind in ("number_input", "text_input", "selectbox", "checkbox"):
        found = [w for w in at.get(kind) if w.key == key]
        if found:
            return found[0]
    raise KeyError(key)


def form_error(root: Path, label: str = "Start", **values) -> str:
    at = view(TRAIN)
    submit(at, label, **values)
    assert not at.exception
    assert len(at.error) == 1
    return at.error[0].value



def watching_the_picked_run() -> AppTest:
    # The entry script's sidebar picker keeps the chosen run under RUN_KEY; AppTest runs the page alone.
    at = app()
    at.session_state[RUN_KEY] = RUN
    at.switch_page(TRAIN)
    return at.run()



def wait_for(root: Path, run: str, done, polls: int = 2400):
    """Poll the run's job until done(job) holds (no wall-clock limit, just a bounded number of polls)."""
    for _ in range(polls):
        job = jobs.job(root, run)
        if done(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"run {run!r} never got there; last state {jobs.job(root, run)}")


def finish(task, polls: int = 24000):
    """Wait for a background task's end while watching it, as the page's polling fragment does (a task no
    page watches for VAE_TASK_ABANDON s is abandoned: a busy machine's T-SNE takes longer than that).
    Bounded polls, no wall-clock limit."""
    for _ in range(polls):
        if task.done:
            return task
        task.watch()
        time.sleep(0.1)
    raise AssertionError(f"the task never ended; it is {task.state}")


@contextmanager
def training(folder: Path):
    """The run in `folder` as its training process shows it: status "running" and the run's lock held."""
    runs.write_json(folder / runs.STATUS_FILE, {
        "state": "running", "pid": os.getpid(), "started": time.time(), "epoch": 2, "epochs": 4, "batch": 0,
        "batches": 8, "updated": time.time()})
    with runs.run_lock(folder):
        yield
