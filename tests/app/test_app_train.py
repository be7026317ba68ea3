"""The Train view in AppTest: the form's validation, and watching a run."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.app.helpers import (RUN, SAMPLES, TRAIN, app, button,
                               figures, messages, plotly_values, view)
from ui import jobs
from ui.figures import history_frame
from ui.runs import PICKER_KEY, RUN_KEY
from vae_core import checkpoint as ckpt
from vae_core.config import Config


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


def field_errors(at: AppTest) -> list[str]:
    return messages(at.error)


@pytest.mark.parametrize("values, expected", [
    ({"train_epochs": 0}, "Epochs must be between 1 and 10000, got 0."),
    ({"train_epochs": 2.7}, "Epochs must be a whole number, got 2.7."),
    ({"train_lr": 0.0}, "Learning rate must be more than 0 and at most 1, got 0.0"),
    ({"train_batch": 0}, "Batch size must be between 1 and 60000, got 0."),
    ({"train_limit": -5}, "Subset must be 0 (all 60,000 images) or a number of images from 1 to 60000, got -5."),
])
def test_train_form_names_the_wrong_field_in_the_users_words(root, values, expected):
    message = form_error(root, train_run="new", **values)
    assert message.startswith(expected)
    assert not (root / "new").exists()


def test_train_form_puts_the_error_under_its_own_field(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_batch=0)
    elements = [e for e in at.main if e.type in ("number_input", "alert") or getattr(e, "proto", None) is not None]
    keys = [getattr(e, "key", None) or ("error" if e in at.error else None) for e in elements]
    keys = [k for k in keys if k]
    assert keys[keys.index("train_batch") + 1] == "error"


def test_train_form_names_every_wrong_field_at_once(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_epochs=2.7, train_batch=0)
    assert messages(at.error) == ["Epochs must be a whole number, got 2.7.",
                                  "Batch size must be between 1 and 60000, got 0."]
    assert not (root / "new").exists()


def test_train_form_refuses_a_run_name_that_leaves_the_folder(root):
    message = form_error(root, train_run="../x")
    assert "Run name '../x' is not allowed" in message
    assert "letters, digits, '-', '_' or '.'" in message and "no '..'" in message
    assert not (root.parent / "x").exists()


def test_train_form_refuses_a_run_name_taken_by_a_file(root):
    (root / "README.md").write_text("not a run")
    message = form_error(root, train_run="README.md")
    assert message.startswith("Run name 'README.md' is taken by a file")


def test_train_form_refuses_cuda_on_a_machine_without_a_gpu(root):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    message = form_error(root, train_run="new", train_device="cuda")
    assert "no usable CUDA GPU" in message and "use device 'cpu'" in message


def test_train_start_on_an_existing_run_points_to_resume_and_overwrite(root):
    message = form_error(root, train_run=RUN)
    assert f"A run named {RUN} exists already" in message
    assert "resume" in message and "Overwrite" in message


def test_train_refusals_start_no_process(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_epochs=0)
    assert not (root / "new").exists()
    assert jobs.job(root, "new").state == "none"


# ---------------------------------------------------------------- train: the run view


def test_train_without_runs_asks_to_start_one(empty_root):
    at = view(TRAIN)
    assert not at.exception
    assert messages(at.info) == ["No run yet: fill in the form above and press Start."]


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


def test_train_start_runs_a_short_job_to_the_end_and_links_to_its_views(root):
    at = view(TRAIN)
    submit(at, train_run="quick", train_epochs=1, train_limit=256)
    assert not at.error and not at.exception
    assert messages(at.subheader) == ["Run quick"]
    try:
        wait_for(root, "quick", lambda j: not j.active)
        assert jobs.job(root, "quick").state == "finished"
        at.run()
        assert messages(at.success) == ["Finished after epoch 1 of 1."]
        assert ckpt.checkpoint_path(root, "quick").is_file()
        assert {link.proto.page for link in at.get("page_link")} >= {"samples", "latent_map"}
    finally:
        jobs.stop(root, "quick")


def test_the_picker_switches_to_a_started_run_and_train_follows_the_picker(root):
    at = view(TRAIN)
    submit(at, train_run="mine", train_epochs=1, train_limit=256)
    try:
        assert at.session_state[RUN_KEY] == "mine"
        at.session_state[RUN_KEY] = RUN  # the user picks another run in the sidebar
        at.run()
        assert messages(at.subheader) == [f"Run {RUN}"]
    finally:
        jobs.stop(root, "mine")
        wait_for(root, "mine", lambda j: not j.active)


def wait_for(root: Path, run: str, done, polls: int = 2400):
    """Poll the run's job until done(job) holds (no wall-clock limit, just a bounded number of polls)."""
    for _ in range(polls):
        job = jobs.job(root, run)
        if done(job):
            return job
        time.sleep(0.25)
    raise AssertionError(f"run {run!r} never got there; last state {jobs.job(root, run)}")


def test_stop_pressed_right_after_start_stops_the_run(root):
    at = view(TRAIN)
    submit(at, train_run="early", train_epochs=3, train_limit=256)
    try:
        assert jobs.job(root, "early").state == "starting"
        button(at, "Stop").click()
        at.run()
        assert jobs.job(root, "early").state == "stopping"
        stopped = wait_for(root, "early", lambda j: not j.active)
        assert stopped.state == "stopped" and stopped.epochs_done < 3
        at.run()
        assert not at.success  # never "Finished"
        assert [p.proto.text for p in at.get("progress")] == ["Stopped · 0 of 3 epochs done"]
        assert "nothing was saved" in messages(at.warning)[0]
        button(at, "Resume to epoch 3").click()  # starts it again with the settings it was given
        at.run()
        finished = wait_for(root, "early", lambda j: not j.active)
        assert finished.state == "finished" and finished.epochs_done == 3
        assert ckpt.load_state(ckpt.checkpoint_path(root, "early")).config.limit == 256
    finally:
        jobs.stop(root, "early")


def test_stop_keeps_the_finished_epochs_and_the_resume_button_reaches_the_runs_own_target(root):
    at = view(TRAIN)
    submit(at, train_run="long", train_epochs=40, train_limit=256, train_test_every=1000)
    try:
        wait_for(root, "long", lambda j: j.state == "running" and j.epochs_done >= 2)
        at.run()
        button(at, "Stop").click()
        at.run()
        stopped = wait_for(root, "long", lambda j: not j.active)
        saved = ckpt.load_state(ckpt.checkpoint_path(root, "long"))
        assert stopped.state == "stopped" and 2 <= saved.epoch < 40
        assert len(saved.history.train_loss) == saved.epoch

        at.switch_page(SAMPLES).run()  # the form resets nothing: Resume does not read it
        at.switch_page(TRAIN).run()
        (warning,) = messages(at.warning)
        assert warning == f"Stopped after epoch {saved.epoch} of 40. Resume continues from there."
        assert "/" not in warning and "python" not in warning
        button(at, "Resume to epoch 40").click()
        at.run()
        finished = wait_for(root, "long", lambda j: j.state == "finished")
        resumed = ckpt.load_state(ckpt.checkpoint_path(root, "long"))
        assert resumed.epoch == 40 and finished.epochs_done == 40
        assert resumed.history.train_loss[:saved.epoch] == saved.history.train_loss
    finally:
        jobs.stop(root, "long")


def test_a_run_that_fails_says_why(root):
    path = ckpt.checkpoint_path(root, "broken")
    path.parent.mkdir()
    path.write_bytes(b"not a checkpoint")
    at = app()
    at.session_state[RUN_KEY] = "broken"
    at.switch_page(TRAIN).run()
    jobs.start(root, "broken", Config(epochs=3), resume=True)
    failed = wait_for(root, "broken", lambda j: not j.active)
    assert failed.state == "failed" and "is truncated or not a checkpoint file" in failed.message
    at.run()
    (error,) = messages(at.error)
    assert error.startswith("The run failed:") and "broken/checkpoint.pt" in error


def test_chart_csv_and_progress_count_the_same_epochs_from_1(root):
    at = watching_the_picked_run()
    (figure,) = figures(at)
    train = next(t for t in figure["data"] if t["name"] == "train ELBO")
    assert list(plotly_values(train["x"])) == [1, 2]
    assert any("2 of 2 epochs done" in p.proto.text for p in at.get("progress"))
    saved = ckpt.load_state(ckpt.checkpoint_path(root, RUN)).history.to_dict()
    assert list(history_frame(saved)["epoch"]) == [1, 2]


@pytest.mark.parametrize("name, content", [
    ("status.json", b"[1, 2]"),
    ("status.json", b'{"state": 5, "epoch": "x", "epochs": [3], "pid": -1}'),
    ("status.json", b"{not json"),
    ("history.json", b'{"train_loss": ["a", "b"], "test_epochs": [0], "test_loss": [1.0]}'),
    ("history.json", b'"just a string"'),
    ("preview.npz", b"PK\x03\x04 truncated"),
    ("preview.npz", b""),
])
def test_a_damaged_run_file_never_breaks_the_train_page(root, name, content):
    folder = root / RUN
    (folder / name).write_bytes(content)
    at = watching_the_picked_run()
    assert not at.exception
    assert messages(at.subheader) == [f"Run {RUN}"]


def test_a_damaged_preview_with_the_wrong_arrays_is_left_out(root):
    import numpy as np

    np.savez(root / RUN / "preview.npz", samples=np.zeros(3), epochs_done=np.array([1, 2]))
    at = watching_the_picked_run()
    assert not at.exception and not at.image


def test_a_run_killed_between_its_save_and_its_status_shows_what_the_checkpoint_holds(root):
    folder = root / RUN  # the small run: its checkpoint holds 2 epochs
    (folder / "status.json").write_text('{"state": "running", "pid": -1, "epoch": 1, "epochs": 2}')
    (folder / "history.json").write_text('{"train_loss": [190.0], "test_epochs": [], "test_loss": []}')
    job = jobs.job(root, RUN)
    assert job.state == "lost" and job.epochs_done == 2 and len(job.history["train_loss"]) == 2


def test_a_diverged_run_resumes_at_the_lower_learning_rate_the_user_gives(root):
    folder = root / "hot"
    folder.mkdir()
    config = Config(epochs=1, limit=256, lr=0.05).to_dict()
    (folder / "status.json").write_text(json.dumps({
        "state": "failed", "pid": 999999, "epoch": 0, "epochs": 1, "config": config,
        "message": "the loss became nan at epoch 1, step 3; lower the learning rate (the tutorial's is 1e-3) and Resume"}))
    at = app()
    at.session_state[RUN_KEY] = "hot"
    at.switch_page(TRAIN).run()
    field = at.number_input(key="train_resume_lr")
    assert field.value == pytest.approx(0.005)
    field.set_value(0.001)
    button(at, "Resume to epoch 1").click()
    at.run()
    try:
        assert jobs.job(root, "hot").status["config"]["lr"] == 0.001
        finished = wait_for(root, "hot", lambda j: not j.active)
        assert finished.state == "finished"
    finally:
        jobs.stop(root, "hot")


def test_start_on_a_full_disk_says_so_under_the_run_name_and_starts_nothing(root, monkeypatch):
    import errno

    from vae_core import monitor

    def full(path, value):
        raise ckpt.SaveError(errno.ENOSPC, f"no space left on device while saving {path}")

    monkeypatch.setattr(monitor, "write_json", full)
    message = form_error(root, train_run="new", train_epochs=1)
    assert message.startswith("Run new could not start: no space left on device while saving")
    assert not (root / "new" / "train.log").exists()


def test_only_one_run_trains_at_a_time_on_a_server(root):
    from vae_core import monitor

    with monitor.run_lock(root / "busy"):  # another run's trainer holds its lock
        message = form_error(root, train_run="new", train_epochs=1)
    assert message.startswith("Run busy is training, and this server trains 1 run(s) at a time (VAE_MAX_JOBS)")
    assert not (root / "new").exists()


def test_a_model_too_large_for_the_memory_budget_is_refused_with_its_estimate(root):
    message = form_error(root, train_run="huge", train_hidden=65536, train_z_dim=4096)
    assert re.match(r"This model would take about \d+\.\d GiB to train .* more than the 2 GiB", message)
    assert not (root / "huge").exists()


def test_the_shipped_run_is_never_overwritten_or_trained_further_from_the_app(root):
    shutil.copytree(root / RUN, root / "tutorial")
    before = (root / "tutorial" / "checkpoint.pt").read_bytes()
    message = form_error(root, train_run="tutorial", train_overwrite=True)
    assert message.startswith("Run tutorial is shipped with the app and is never replaced")
    assert (root / "tutorial" / "checkpoint.pt").read_bytes() == before
    at = app()
    at.session_state[RUN_KEY] = "tutorial"
    at.switch_page(TRAIN).run()
    assert not [p for p in at.get("popover")] and "not trained further from here" in at.caption[-1].value


def test_overwriting_a_run_takes_a_second_press_and_keeps_the_old_one_until_the_new_saves(root):
    before = ckpt.checkpoint_path(root, RUN).read_bytes()
    at = view(TRAIN)
    submit(at, train_run=RUN, train_overwrite=True, train_epochs=5)
    (first,) = messages(at.error)
    assert first.startswith(f"Run {RUN} exists: press Start again to replace it")
    assert jobs.job(root, RUN).state == "saved"  # nothing started
    submit(at, train_run=RUN, train_overwrite=True, train_epochs=5)
    try:
        assert not at.error and jobs.job(root, RUN).active
        jobs.stop(root, RUN)  # at once: the new run saves no epoch
        wait_for(root, RUN, lambda j: not j.active)
        assert ckpt.checkpoint_path(root, RUN).read_bytes() == before  # the old run is back
    finally:
        jobs.stop(root, RUN)


def test_a_new_session_finds_the_run_that_trains_and_lists_it_from_its_start(root):
    from vae_core import monitor

    folder = root / "bg"  # started by an earlier server, still in its first epoch
    folder.mkdir()
    (folder / "status.json").write_text('{"state": "running", "pid": 999999, "epoch": 0, "epochs": 3}')
    with monitor.run_lock(folder):
        at = app()
        assert "bg · first epoch under way" in at.sidebar.selectbox(key=PICKER_KEY).options
        at.switch_page(TRAIN).run()
        assert messages(at.subheader) == ["Run bg"]


def test_a_second_start_while_the_first_process_still_starts_is_refused(root):
    at = view(TRAIN)
    submit(at, train_run="race", train_epochs=3, train_limit=256)
    try:
        assert jobs.job(root, "race").state == "starting"  # importing torch: no lock yet
        again = view(TRAIN)
        submit(again, train_run="race", train_overwrite=True)
        submit(again, train_run="race", train_overwrite=True)  # the second, deliberate press
        assert any("is training already" in m for m in messages(again.error))
        jobs.stop(root, "race")
        stopped = wait_for(root, "race", lambda j: not j.active)
        assert stopped.state == "stopped"
        time.sleep(1)  # nothing queued behind the lock comes back to life
        assert jobs.job(root, "race").state == "stopped" and not jobs.training(root)
    finally:
        jobs.stop(root, "race")
