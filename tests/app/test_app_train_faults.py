"""The Train view in AppTest when things go wrong: damaged files, divergence, a full disk, the server's limits."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from tests.app.helpers import (RUN, TRAIN, app, button, form_error, form_widget, messages, submit, view, wait_for,
                               watching_the_picked_run)
from ui import jobs
from ui.picker import PICKER_KEY, RUN_KEY
from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core import files
from vae_core.config import Config


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


def test_the_learning_rate_offered_to_a_diverged_run_shows_every_digit(root):
    folder = root / "warm"
    folder.mkdir()
    (folder / "status.json").write_text(json.dumps({
        "state": "failed", "pid": 999999, "epoch": 0, "epochs": 1, "config": Config(lr=5e-5).to_dict(),
        "message": "the loss became nan at epoch 1, step 3; lower the learning rate and Resume"}))
    at = app()
    at.session_state[RUN_KEY] = "warm"
    at.switch_page(TRAIN).run()
    field = at.number_input(key="train_resume_lr")
    assert field.value == pytest.approx(5e-06)  # a tenth of the rate that diverged
    assert float(field.proto.format % field.value) == field.value  # as the browser prints it ("%.5f": 0.00001)


def test_start_on_a_full_disk_says_so_and_starts_nothing(root, monkeypatch):
    import errno

    def full(path, value):
        raise files.SaveError(errno.ENOSPC, f"no space left on device while saving {path}")

    monkeypatch.setattr(runs, "write_json", full)
    message = form_error(root, train_run="new", train_epochs=1)
    assert message.startswith("Run new could not start: no space left on device while saving")
    assert not (root / "new" / "train.log").exists()


def test_a_stop_that_cannot_be_written_says_so_beside_the_run(root, monkeypatch):
    import errno

    def full(path, value):
        raise files.SaveError(errno.ENOSPC, f"no space left on device while saving {path}")

    at = view(TRAIN)
    submit(at, train_run="early", train_epochs=3, train_limit=256)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(runs, "write_json", full)
            button(at, "Stop training").click()
            at.run()
        (message,) = messages(at.error)
        assert message.startswith("Run early could not be asked to stop: no space left on device while saving")
        assert button(at, "Stop training")  # still offered: the next press may find room
    finally:
        jobs.stop(root, "early")
        wait_for(root, "early", lambda j: not j.active)


def test_a_start_refused_because_another_tab_started_a_run_stays_in_sight_under_start(root):
    at = view(TRAIN)  # opened while nothing trains: the form is open
    folder = root / "theirs"  # started from another tab since, and training
    folder.mkdir()
    (folder / "status.json").write_text('{"state": "running", "pid": 999999, "epoch": 0, "epochs": 3}')
    with runs.run_lock(folder):
        submit(at, train_run="mine", train_epochs=3, train_limit=256)
    form, sweeps = at.expander  # the run's form, then the sweep's
    assert form.label == "Start a new run" and form.proto.expanded  # not folded away with the reason in it
    assert sweeps.label.startswith("Start a sweep")
    elements = list(at.main)
    start = next(i for i, e in enumerate(elements) if e is button(at, "Start"))
    assert elements[start + 1] is at.error[0]  # the reason right under the button pressed
    assert (form_widget(at, "train_run").value, form_widget(at, "train_epochs").value) == ("mine", 3)
    assert not (root / "mine").exists()


def test_a_session_watching_a_run_is_not_moved_to_a_run_another_tab_starts(root):
    at = view(TRAIN)
    assert messages(at.subheader) == [f"Run {RUN}"]
    folder = root / "theirs"
    folder.mkdir()
    (folder / "status.json").write_text('{"state": "running", "pid": 999999, "epoch": 0, "epochs": 3}')
    with runs.run_lock(folder):
        at.run()
    assert messages(at.subheader) == [f"Run {RUN}"]


def test_the_shipped_run_is_never_overwritten_or_trained_further_from_the_app(root):
    shutil.copytree(root / RUN, root / "tutorial")
    before = (root / "tutorial" / "checkpoint.pt").read_bytes()
    message = form_error(root, train_run="tutorial", train_overwrite=True)  # the start rule's refusal reaches the page
    assert message.startswith("Run tutorial is shipped with the app and is never replaced")
    assert (root / "tutorial" / "checkpoint.pt").read_bytes() == before
    at = app()
    at.session_state[RUN_KEY] = "tutorial"
    at.switch_page(TRAIN).run()
    assert not [p for p in at.get("popover")]
    assert any("not trained further from here" in c.value for c in at.caption)


def test_overwriting_a_run_takes_a_second_press_and_keeps_the_old_one_until_the_new_saves(root):
    before = runs.checkpoint_path(root, RUN).read_bytes()
    at = view(TRAIN)
    submit(at, train_run=RUN, train_overwrite=True, train_epochs=5)
    assert len(at.error) == 1 and jobs.job(root, RUN).state == "saved"  # asked to press again; nothing started
    submit(at, train_run=RUN, train_overwrite=True, train_epochs=5)
    try:
        assert not at.error and jobs.job(root, RUN).active
        jobs.stop(root, RUN)  # at once: the new run saves no epoch
        wait_for(root, RUN, lambda j: not j.active)
        assert runs.checkpoint_path(root, RUN).read_bytes() == before  # the old run is back
    finally:
        jobs.stop(root, RUN)


def test_a_start_the_servers_limit_refuses_says_so_at_the_first_press_not_after_a_confirmation(root):
    with runs.run_lock(root / "busy"):  # another run trains: the server's one job
        message = form_error(root, train_run=RUN, train_overwrite=True, train_epochs=5)
    assert message.startswith("Run busy is training, and this server trains 1 run(s) at a time")
    assert jobs.job(root, RUN).state == "saved"


def test_a_new_session_finds_the_run_that_trains_and_lists_it_from_its_start(root):
    folder = root / "bg"  # started by an earlier server, still in its first epoch
    folder.mkdir()
    (folder / "status.json").write_text('{"state": "running", "pid": 999999, "epoch": 0, "epochs": 3}')
    with runs.run_lock(folder):
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
        assert messages(again.error)  # refused (vae_core.start): no second process queues behind the lock
        jobs.stop(root, "race")
        stopped = wait_for(root, "race", lambda j: not j.active)
        assert stopped.state == "stopped"
        time.sleep(1)  # nothing queued behind the lock comes back to life
        assert jobs.job(root, "race").state == "stopped" and not jobs.training(root)
    finally:
        jobs.stop(root, "race")


def test_the_map_computed_after_the_last_epoch_shows_its_progress_and_offers_stop(root):
    import os

    folder = root / RUN
    runs.write_json(folder / runs.STATUS_FILE, {
        "state": "running", "pid": os.getpid(), "started": time.time(), "epoch": 2, "epochs": 2, "batch": 0,
        "batches": 8, "map": 0.4, "updated": time.time()})
    with runs.run_lock(folder):  # held by the training process while it maps
        at = app()
        at.session_state[RUN_KEY] = RUN
        at.switch_page(TRAIN).run()
    assert [p.proto.text for p in at.get("progress")] == [
        "2 of 2 epochs done · computing the latent map of epoch 2 for the views (T-SNE): 40%"]
    assert button(at, "Stop training")
    assert "Stop training skips it; the Latent map view can compute it later." in messages(at.caption)


def _killed_when(root, run: str, config: Config, moment) -> None:
    """Start `run` as the Train page does, SIGKILL its process once moment(status.json) holds, wait for its end."""
    import os
    import signal

    jobs.start(root, run, config)
    folder = root / run
    while not moment(runs.read_status(folder) or {}):  # an event, not a time: each poll reads the file anew
        assert jobs.job(root, run).active, jobs.job(root, run)
        time.sleep(0.02)
    os.kill(runs.read_status(folder)["pid"], signal.SIGKILL)
    wait_for(root, run, lambda j: not j.active)


def _watching(run: str):
    at = app()
    at.session_state[RUN_KEY] = run
    at.switch_page(TRAIN)
    return at.run()


@pytest.mark.slow
def test_a_run_killed_while_it_maps_after_its_last_epoch_says_training_finished_and_how_to_make_the_map(
        root, monkeypatch):
    monkeypatch.delenv("VAE_NO_MAP", raising=False)  # the app's runs make the map after their last epoch
    _killed_when(root, "mapped", Config(epochs=1, limit=2000), lambda status: "map" in status)
    assert jobs.job(root, "mapped").epochs_done == 1  # the premise: the checkpoint holds the last epoch
    at = _watching("mapped")
    assert not at.error
    (warning,) = messages(at.warning)
    assert warning.startswith("Training finished: epoch 1 of 1 is saved.")
    assert "the map was not made" in warning and "`python -m vae_core embed mapped`" in warning
    assert not [b for b in at.button if b.label.startswith("Resume")]  # no epoch is missing


@pytest.mark.slow
def test_a_run_killed_before_its_first_epoch_says_nothing_was_saved(root):
    # Batches of 16 over all 60,000 images: the first epoch is 3,750 steps, long after the status says running.
    _killed_when(root, "early", Config(epochs=1, batch_size=16), lambda status: status.get("state") == "running")
    assert not runs.checkpoint_path(root, "early").exists()  # the premise: no epoch finished
    at = _watching("early")
    (error,) = messages(at.error)
    assert "before its first epoch finished, so nothing was saved" in error
    assert "kept" not in error
    assert button(at, "Resume to epoch 1")  # starts it again with the settings it was given


def test_a_huge_failure_message_is_cut_on_the_page_and_points_to_the_log(root):
    huge = "RuntimeError: " + "tensor([nan, " * 800_000  # 10 MB on one line, as a tensor dump may be
    (root / RUN / "status.json").write_text(json.dumps({
        "state": "failed", "pid": 999999, "epoch": 2, "epochs": 4, "message": huge}))
    (root / RUN / "train.log").write_text(f"Traceback (most recent call last):\n{huge}\n")  # the trainer's stderr
    at = watching_the_picked_run()
    (error,) = messages(at.error)
    assert len(error) < 1500
    assert error.startswith("The run failed: RuntimeError: tensor([nan,")
    assert re.search(r"\[cut: [\d,]+ characters in all; the whole text is in the run's train\.log", error)


def test_a_diverged_run_with_a_checkpoint_offers_resume_from_it_at_a_lower_learning_rate(root):
    config = ckpt.load_state(runs.checkpoint_path(root, RUN)).config  # the small run: 2 epochs saved
    (root / RUN / "status.json").write_text(json.dumps({
        "state": "failed", "pid": 999999, "epoch": 2, "epochs": 4, "config": config.to_dict(),
        "message": "the loss became nan at epoch 3, step 5; lower the learning rate (the tutorial's is 1e-3) "
                   "and Resume"}))
    at = watching_the_picked_run()
    (error,) = messages(at.error)
    assert error.startswith("The run failed: the loss became nan at epoch 3, step 5; lower the learning rate")
    field = at.number_input(key="train_resume_lr")
    assert field.value == pytest.approx(config.lr / 10)
    button(at, "Resume to epoch 4").click()
    at.run()
    try:
        started = jobs.job(root, RUN)
        assert started.epochs_done == 2 and started.status["config"]["lr"] == pytest.approx(config.lr / 10)
    finally:
        jobs.stop(root, RUN)
        wait_for(root, RUN, lambda j: not j.active)


@pytest.mark.slow
def test_a_run_whose_map_did_not_fit_on_the_disk_reads_finished_with_how_to_make_the_map(tmp_path, monkeypatch):
    import subprocess
    import sys

    from tests.test_faults import _small_disk

    monkeypatch.delenv("VAE_NO_MAP", raising=False)  # the trainer makes the map after its last epoch
    # 9 MB: the checkpoint (8.3 MB) and the run's small files fit, the test digits' codes (2 MB) do not.
    with _small_disk(tmp_path / "disk", 9) as disk:
        monkeypatch.setenv("VAE_CHECKPOINTS", str(disk))
        trained = subprocess.run([sys.executable, "-m", "vae_core", "train", "--run", "full", "--epochs", "1",
                                  "--limit", "512", "--checkpoints", str(disk)], capture_output=True, text=True)
        assert trained.returncode == 0, trained.stderr
        at = _watching("full")
        assert not at.error
        assert messages(at.success) == ["Finished after epoch 1 of 1."]
        (note,) = [m for m in messages(at.info) if "latent map" in m]
        assert note.startswith("The latent map was not kept (no space left on device while saving")
        assert "python -m vae_core embed full, or in the Latent map view" in note
