"""The Train view in AppTest: the form's validation, and watching, stopping and resuming a run."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import torch

from streamlit.testing.v1 import AppTest

from tests.app.helpers import (LATENT_MAP, RUN, SAMPLES, TRAIN, app, button, figures, form_error, form_widget, messages,
                               plotly_values, submit, view, wait_for, watching_the_picked_run)
from ui import jobs
from ui.figures import history_frame
from ui.picker import RUN_KEY
from vae_core import checkpoint as ckpt
from vae_core import analysis, latent, run_cache, runs
from vae_core.config import FIELDS, Config
from vae_core.likelihoods import LIKELIHOODS


# ---------------------------------------------------------------- train: the form


@pytest.mark.parametrize("values, expected", [
    ({"train_epochs": 2.7}, "Epochs must be a whole number, got 2.7."),
    ({"train_batch_size": 0}, "Batch size must be between 1 and 60000, got 0."),
    ({"train_limit": -5}, "Subset must be 0 (all 60,000 images) or a number of images from 1 to 60000, got -5."),
    ({"train_hidden": ""}, "Hidden layers must be whole numbers of units separated by commas, such as 400 or "
                           "200,200, got ''."),
    ({"train_jit": True}, "JitTrace_ELBO needs the training step trace"),  # two fields: under the one it names
])
def test_train_form_names_the_wrong_field_in_the_users_words(root, values, expected):
    message = form_error(root, train_run="new", **values)
    assert message.startswith(expected)
    assert not (root / "new").exists()


def test_train_form_puts_the_error_under_its_own_field(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_batch_size=0)
    elements = [e for e in at.main if e.type in ("number_input", "alert") or getattr(e, "proto", None) is not None]
    keys = [getattr(e, "key", None) or ("error" if e in at.error else None) for e in elements]
    keys = [k for k in keys if k]
    assert keys[keys.index("train_batch_size") + 1] == "error"


def test_train_form_names_every_wrong_field_at_once(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_epochs=2.7, train_batch_size=0)
    assert messages(at.error) == ["Epochs must be a whole number, got 2.7.",
                                  "Batch size must be between 1 and 60000, got 0."]
    assert not (root / "new").exists()


def test_train_form_refuses_cuda_on_a_machine_without_a_gpu(root):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    message = form_error(root, train_run="new", train_device="cuda")
    assert "no usable CUDA GPU" in message and "use device 'cpu'" in message


def test_the_learning_rate_field_shows_a_rate_below_a_ten_thousandth_as_it_is(root):
    field = form_widget(view(TRAIN), "train_lr")
    # The format the browser prints the value with (its sprintf's %g keeps the value as Python's does).
    assert float(field.proto.format % 5e-05) == 5e-05


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


def test_train_shows_the_picked_run_with_its_elbo_chart(root):
    at = watching_the_picked_run()
    assert not at.exception
    assert messages(at.subheader) == [f"Run {RUN}"]
    (figure,) = figures(at)
    assert RUN in figure["layout"]["title"]["text"]


def test_the_live_view_redraws_every_few_seconds_while_its_run_does_not_train(root, monkeypatch):
    # So that the run resumed elsewhere (the CLI, another tab) shows on an open Train page, and a full rerun
    # that never came is asked for again at the next redraw: before, an idle run's view never redrew.
    import ui.views
    from ui import train_view

    paces, real = [], ui.views.fragment
    monkeypatch.setattr(ui.views, "fragment",
                        lambda func, run_every=None: paces.append((func.__name__, run_every)) or real(func, run_every))
    at = watching_the_picked_run()
    assert not at.exception and not jobs.job(root, RUN).active
    assert paces == [("live", train_view.IDLE_SECONDS)] and train_view.IDLE_SECONDS <= 5


def test_train_shows_the_history_of_a_run_saved_without_the_cli(root):
    at = watching_the_picked_run()
    (figure,) = figures(at)
    train_trace = next(t for t in figure["data"] if t["name"] == "train ELBO")
    assert len(plotly_values(train_trace["x"])) == 2


def test_train_form_draws_every_config_field_the_cli_takes_with_its_help(root):
    at = view(TRAIN)
    for name, spec in FIELDS.items():
        if spec.cli:
            widget = form_widget(at, f"train_{name}")
            assert widget.label == spec.label and widget.help == spec.help
            if spec.choices:
                assert tuple(widget.options) == tuple(spec.choices)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_train_form_starts_the_run_with_the_model_it_describes(root, likelihood):
    at = view(TRAIN)
    submit(at, train_run="lab", train_epochs=1, train_limit=256, train_likelihood=likelihood, train_hidden="32, 16",
           train_activation="tanh", train_beta=0.5, train_z_dim=2)
    assert not at.error and not at.exception
    try:
        wait_for(root, "lab", lambda j: not j.active)
        config = ckpt.load_state(runs.checkpoint_path(root, "lab")).config
        assert (config.likelihood, config.hidden, config.activation, config.beta, config.z_dim) == \
            (likelihood, (32, 16), "tanh", 0.5, 2)
        at.run()  # beside the chart: what its figures are under this likelihood and beta
        note = next(c for c in messages(at.caption) if c.lower().startswith(LIKELIHOODS[likelihood].note[:20].lower()))
        assert "The train curve is the β = 0.5 objective" in note and "the test curve is the ELBO" in note
    finally:
        jobs.stop(root, "lab")


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
        assert runs.checkpoint_path(root, "quick").is_file()
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


def test_stop_pressed_right_after_start_stops_the_run(root):
    at = view(TRAIN)
    submit(at, train_run="early", train_epochs=3, train_limit=256)
    try:
        assert jobs.job(root, "early").state == "starting"
        assert not figures(at)  # no empty axes before the first epoch, but a word on what comes
        assert "drawn here from the end of epoch 1" in " ".join(messages(at.caption))
        button(at, "Stop training").click()
        at.run()
        # Stopping, or already stopped: forked from the preloaded fork server, a run starts in a fraction of
        # a second and can honour the request before this rerun reads its state.
        assert jobs.job(root, "early").state in ("stopping", "stopped")
        stopped = wait_for(root, "early", lambda j: not j.active)
        assert stopped.state == "stopped" and stopped.epochs_done < 3
        at.run()
        assert not at.success  # never "Finished"
        done = stopped.epochs_done
        assert [p.proto.text for p in at.get("progress")] == [f"Stopped · {done} of 3 epochs done"]
        if done == 0:
            assert "nothing was saved" in messages(at.warning)[0]
        button(at, "Resume to epoch 3").click()  # starts it again with the settings it was given
        at.run()
        finished = wait_for(root, "early", lambda j: not j.active)
        assert finished.state == "finished" and finished.epochs_done == 3
        assert ckpt.load_state(runs.checkpoint_path(root, "early")).config.limit == 256
    finally:
        jobs.stop(root, "early")


def _stopped_at_epoch_2_of_5(root) -> None:
    """The small run (its checkpoint holds 2 epochs), as if stopped on its way to 5."""
    config = ckpt.load_state(runs.checkpoint_path(root, RUN)).config.to_dict()
    (root / RUN / "status.json").write_text(json.dumps({"state": "stopped", "pid": 999999, "epoch": 2, "epochs": 5,
                                                        "config": config, "message": "stopped after 2 of 5"}))


@pytest.mark.parametrize("action", ["Resume", "Train longer"])
def test_a_resumed_run_shows_the_epochs_its_checkpoint_holds_while_it_starts(root, action):
    if action == "Resume":
        _stopped_at_epoch_2_of_5(root)
    at = watching_the_picked_run()
    if action == "Resume":
        button(at, "Resume to epoch 5").click()
    else:
        at.number_input(key="train_more").set_value(5)
        button(at, "Continue").click()
    at.run()
    try:
        (text,) = [p.proto.text for p in at.get("progress")]
        # The checkpoint's epochs, not "0 of 5", while the process starts (on a loaded machine it may be training
        # already when the page is drawn: then the epochs it has done since).
        assert text.startswith(("Starting: loading PyTorch and the data · ", "Training · ")), text
        assert int(re.search(r"(\d+) of 5 epochs done", text).group(1)) >= 2, text
    finally:
        jobs.stop(root, RUN)
        wait_for(root, RUN, lambda j: not j.active)


def _reaped(pid: int, polls: int = 400) -> bool:
    """True once process `pid` has left the process table; False while it stays, a zombie (<defunct>) or not."""
    for _ in range(polls):
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def test_a_finished_training_process_leaves_no_zombie_behind(root):
    at = view(TRAIN)
    submit(at, train_run="reaped", train_epochs=1, train_limit=256)
    try:
        pid = jobs.job(root, "reaped").status["pid"]
        assert wait_for(root, "reaped", lambda j: not j.active).state == "finished"
    finally:
        jobs.stop(root, "reaped")
    assert _reaped(pid), Path(f"/proc/{pid}/stat").read_text()  # detached: init reaps it, not the server


def test_stop_keeps_the_finished_epochs_and_the_resume_button_reaches_the_runs_own_target(root):
    at = view(TRAIN)
    submit(at, train_run="long", train_epochs=40, train_limit=256, train_test_every=1000)
    try:
        wait_for(root, "long", lambda j: j.state == "running" and j.epochs_done >= 2)
        at.run()
        button(at, "Stop training").click()
        at.run()
        stopped = wait_for(root, "long", lambda j: not j.active)
        saved = ckpt.load_state(runs.checkpoint_path(root, "long"))
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
        resumed = ckpt.load_state(runs.checkpoint_path(root, "long"))
        assert resumed.epoch == 40 and finished.epochs_done == 40
        assert resumed.history.train_loss[:saved.epoch] == saved.history.train_loss
    finally:
        jobs.stop(root, "long")


def test_a_run_that_fails_says_why(root):
    path = runs.checkpoint_path(root, "broken")
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
    saved = ckpt.load_state(runs.checkpoint_path(root, RUN)).history.to_dict()
    assert list(history_frame(saved)["epoch"]) == [1, 2]


def test_the_elbos_two_parts_show_on_a_toggle_and_go_into_the_csv(root):
    at = watching_the_picked_run()
    assert len(figures(at)) == 1  # off at first: the ELBO alone
    next(t for t in at.toggle if t.key == "train_parts").set_value(True)
    at.run()
    elbo, parts = figures(at)
    saved = ckpt.load_state(runs.checkpoint_path(root, RUN)).history
    lines = {t["name"]: list(plotly_values(t["y"])) for t in parts["data"]}
    assert lines["test reconstruction"] == pytest.approx(saved.test_reconstruction)
    assert lines["train KL"] == pytest.approx(saved.train_kl)
    frame = history_frame(saved.to_dict())
    assert list(frame["test_kl"]) == pytest.approx(saved.test_kl)  # test_every=1: every epoch has them
    assert (frame["test_reconstruction"] - frame["test_kl"] - frame["test_elbo"]).abs().max() < 3


def test_a_run_saved_before_the_parts_were_kept_says_so(root):
    path = runs.checkpoint_path(root, RUN)
    state = ckpt.load_state(path)
    for name in ("split_epochs", "train_reconstruction", "train_kl", "test_reconstruction", "test_kl"):
        getattr(state.history, name).clear()
    ckpt.save_state(state, path)
    at = watching_the_picked_run()
    next(t for t in at.toggle if t.key == "train_parts").set_value(True)
    at.run()
    assert len(figures(at)) == 1
    assert any("This run recorded no parts" in c for c in messages(at.caption))


def test_the_map_of_a_run_trained_from_the_form_opens_without_a_tsne_wait(root, monkeypatch):
    monkeypatch.delenv("VAE_NO_MAP", raising=False)  # as a user's server runs it: the map is made after training
    at = view(TRAIN)
    submit(at, train_run="mapped", train_epochs=1, train_limit=256)
    assert not at.error and not at.exception
    try:
        wait_for(root, "mapped", lambda j: not j.active)
        job = jobs.job(root, "mapped")
        assert job.state == "finished" and "latent map ready (" in job.status["message"]
    finally:
        jobs.stop(root, "mapped")
    path = root / "mapped" / runs.CHECKPOINT_FILE  # the trainer kept the test codes and their T-SNE map
    assert run_cache.load_cached(path, latent.MEANS_NAME, runs.digest(path)).shape == (10_000, 50)
    assert run_cache.load_cached(path, analysis.tsne_name(30, 0), runs.digest(path)).shape == (10_000, 2)
    at.session_state[RUN_KEY] = "mapped"
    at.switch_page(LATENT_MAP).run()
    title = figures(at)[0]["layout"]["title"]["text"]
    assert title == "T-SNE · run mapped · epoch 1"  # the cached map at once: no PCA stand-in, no wait


def _sidebar_change(label: str) -> None:
    """An AppTest script: the picker's change handler, called as Streamlit calls it, with `label` the value."""
    import streamlit as st

    from ui import picker

    st.session_state.setdefault(picker.RUN_KEY, "other")
    st.session_state[picker.PICKER_KEY] = label
    picker._picked_in_sidebar()
    st.write(st.session_state[picker.RUN_KEY])


@pytest.mark.parametrize("value, picked", [(f"{RUN} · epoch 2/9 · test ELBO -250.00", "other"), (RUN, RUN)],
                         ids=["a label", "a run"])
def test_the_picked_run_stays_when_the_picker_hands_back_a_label_not_a_run(root, small_checkpoint, value, picked):
    # A training run's label in the sidebar changes at every epoch ("· epoch 1/4 ·", then "· epoch 2/4 ·"),
    # and a rerun the browser sends before it has the new label carries the old one, which Streamlit's
    # select box hands back as its value. The views must stay on their run (seen in the browser test: the
    # Latent map fell back to the default run right after a resumed run saved its first epoch).
    import shutil

    other = runs.checkpoint_path(root, "other")
    other.parent.mkdir()
    shutil.copy2(small_checkpoint, other)
    at = AppTest.from_function(_sidebar_change, args=(value,), default_timeout=60).run()
    assert not at.exception
    assert at.markdown[0].value == picked


def test_the_form_trains_with_jit_once_the_step_is_trace(root):
    at = view(TRAIN)
    submit(at, train_run="jitted", train_epochs=1, train_limit=256, train_step="trace", train_jit=True)
    assert not at.error and not at.exception
    wait_for(root, "jitted", lambda j: not j.active)
    config = ckpt.load_state(root / "jitted" / runs.CHECKPOINT_FILE).config
    assert (config.step, config.jit) == ("trace", True)
