"""The Train view in AppTest: the form's validation, and watching a run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.app.helpers import (RUN, TRAIN, app, button,
                               figures, messages, plotly_values, view)
from ui import jobs
from ui.runs import RUN_KEY
from vae_core import checkpoint as ckpt


# ---------------------------------------------------------------- train: the form


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


def test_train_form_refuses_zero_epochs(root):
    message = form_error(root, train_run="new", train_epochs=0)
    assert "epochs must be between 1 and 10000, got 0" in message


def test_train_form_refuses_a_run_name_that_leaves_the_folder(root):
    message = form_error(root, train_run="../x")
    assert "invalid run name '../x'" in message
    assert "letters, digits, '-', '_' or '.'" in message and "no '..'" in message
    assert not (root.parent / "x").exists()


def test_train_form_refuses_a_zero_learning_rate(root):
    message = form_error(root, train_run="new", train_lr=0.0)
    assert "lr must be in (0, 1], got 0.0" in message


def test_train_form_refuses_a_zero_batch_size(root):
    message = form_error(root, train_run="new", train_batch=0)
    assert "batch_size must be between 1 and 60000, got 0" in message


def test_train_form_refuses_a_negative_subset(root):
    message = form_error(root, train_run="new", train_limit=-5)
    assert "Subset must be 0 (all 60,000 images) or a number of images from 1 to 60000, got -5" in message


def test_train_form_refuses_cuda_on_a_machine_without_a_gpu(root):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    message = form_error(root, train_run="new", train_device="cuda")
    assert "no usable CUDA GPU" in message and "use device 'cpu'" in message


def test_train_start_on_an_existing_run_suggests_resume(root):
    message = form_error(root, train_run=RUN)
    assert f"Run '{RUN}' exists already" in message
    assert "Resume" in message and "Overwrite" in message


def test_train_resume_of_a_missing_run_says_there_is_nothing_to_resume(root):
    message = form_error(root, "Resume", train_run="nothere")
    assert "Run 'nothere' has no checkpoint to resume yet" in message
    assert not (root / "nothere").exists()


def test_train_refusals_start_no_process(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_epochs=0)
    assert not (root / "new").exists()
    assert jobs.job(root, "new").state == "none"


# ---------------------------------------------------------------- train: the run view


def test_train_without_runs_asks_to_start_one(empty_root):
    at = view(TRAIN)
    assert not at.exception
    assert messages(at.info) == ["No run yet: fill in the form below and press Start."]


def watching_the_picked_run() -> AppTest:
    # The entry script's sidebar picker keeps the chosen run under RUN_KEY; AppTest runs the page alone.
    at = app()
    at.session_state[RUN_KEY] = RUN
    at.switch_page(TRAIN)
    return at.run()


def test_train_shows_the_picked_run_with_its_elbo_chart(root):
    at = watching_the_picked_run()
    assert not at.exception
    assert messages(at.subheader) == [f"Run {RUN}"]
    (figure,) = figures(at)
    assert RUN in figure["layout"]["title"]["text"]


def test_train_shows_the_history_of_a_run_saved_without_the_cli(root):
    at = watching_the_picked_run()
    (figure,) = figures(at)
    train_trace = next(t for t in figure["data"] if t["name"] == "train ELBO")
    assert len(plotly_values(train_trace["x"])) == 2


def test_train_start_runs_a_short_job_to_the_end(root):
    at = view(TRAIN)
    submit(at, train_run="quick", train_epochs=1, train_limit=256)
    assert not at.error and not at.exception
    assert messages(at.subheader) == ["Run quick"]
    try:
        for _ in range(600):  # generous: one epoch of 256 digits takes seconds
            if not jobs.job(root, "quick").active:
                break
            time.sleep(0.5)
        assert jobs.job(root, "quick").state == "finished"
        at.run()
        assert messages(at.success) == ["Finished: trained 1 epochs."]
        assert ckpt.checkpoint_path(root, "quick").is_file()
    finally:
        jobs.stop(root, "quick")


def wait_for(root: Path, run: str, done, polls: int = 1200):
    """Poll the run's job until done(job) holds (no wall-clock limit, just a bounded number of polls)."""
    for _ in range(polls):
        job = jobs.job(root, run)
        if done(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"run {run!r} never got there; last state {jobs.job(root, run)}")


def test_stop_keeps_the_finished_epochs_and_resume_continues_them(root):
    at = view(TRAIN)
    submit(at, train_run="long", train_epochs=500, train_limit=256, train_test_every=1000)
    try:
        wait_for(root, "long", lambda j: j.state == "running" and j.status.get("epoch", 0) >= 2)
        again = submit(view(TRAIN), train_run="long", train_overwrite=True)
        assert "is running already" in messages(again.error)[0]

        at.run()
        button(at, "Stop").click()
        at.run()
        stopped = wait_for(root, "long", lambda j: not j.active)
        assert stopped.state == "stopped" and "--resume" in stopped.message
        saved = ckpt.load_state(ckpt.checkpoint_path(root, "long"))
        assert 2 <= saved.epoch < 500 and len(saved.history.train_loss) == saved.epoch

        at.run()
        assert "Stopped." in messages(at.warning)[0]
        submit(at, "Resume", train_run="long", train_epochs=saved.epoch + 2)
        assert not at.error
        finished = wait_for(root, "long", lambda j: j.state == "finished")
        resumed = ckpt.load_state(ckpt.checkpoint_path(root, "long"))
        assert resumed.epoch == saved.epoch + 2 and finished.status["epoch"] == saved.epoch + 2
        assert resumed.history.train_loss[:saved.epoch] == saved.history.train_loss
    finally:
        jobs.stop(root, "long")


def test_a_run_that_fails_says_why(root):
    path = ckpt.checkpoint_path(root, "broken")
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    at = view(TRAIN)
    submit(at, "Resume", train_run="broken", train_epochs=3)
    failed = wait_for(root, "broken", lambda j: not j.active)
    assert failed.state == "failed" and "is truncated or not a checkpoint file" in failed.message
    at.run()
    (error,) = messages(at.error)
    assert error.startswith("The run failed:") and "broken/checkpoint.pt" in error
