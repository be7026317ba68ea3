"""The start rule (vae_core.start): each refusal, in the command line's words and the app's, tested here once;
the callers' own tests check only that they ask it (tests/test_cli.py, tests/app/test_app_train_faults.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ui import jobs
from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core.config import Config
from vae_core.start import Policy, StartRefused, alive, check

APP = Policy(app=True, shipped=("tutorial",), max_jobs=1, memory_gib=2.0)


def refusal(root: Path, run: str, config=None, **kwargs) -> StartRefused:
    """The rule's refusal of `run` (the test fails if it may start)."""
    with pytest.raises(StartRefused) as refused:
        check(root, run, Config(epochs=1) if config is None else config, **kwargs)
    return refused.value


def saved_run(root: Path, run: str = "r", content: bytes = b"a checkpoint") -> Path:
    """A run folder holding a checkpoint file (the rule only asks whether it exists)."""
    path = runs.checkpoint_path(root, run)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def alive_elsewhere():
    """The pid of a live process that is not this one (it waits on its stdin until the test ends)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    yield proc.pid
    proc.stdin.close()
    proc.wait()


@pytest.mark.parametrize("policy, words", [
    (Policy(), "run name '../x' is not allowed: use 1 to 64 letters"),
    (APP, "Run name '../x' is not allowed: use 1 to 64 letters"),  # under the form's field: a sentence
])
def test_a_run_name_that_leaves_the_folder_is_refused(tmp_path, policy, words):
    refused = refusal(tmp_path, "../x", policy=policy)
    assert refused.reason == "name" and str(refused).startswith(words)


def test_a_run_name_taken_by_a_file_is_refused(tmp_path):
    (tmp_path / "README.md").write_text("not a run")
    assert str(refusal(tmp_path, "README.md")).startswith("run name 'README.md' is taken by a file")


def test_resume_and_overwrite_together_are_refused(tmp_path):
    assert str(refusal(tmp_path, "r", resume=True, overwrite=True)) == \
        "--resume and --overwrite contradict each other; pass one"


@pytest.mark.parametrize("policy, words", [
    (Policy(), "run 'r' is already being trained by another process"),
    (APP, "Run r is training already: pick it in the sidebar to watch it."),
])
def test_a_run_whose_process_holds_its_lock_is_training_already(tmp_path, policy, words):
    with runs.run_lock(tmp_path / "r"):
        assert str(refusal(tmp_path, "r", policy=policy, overwrite=True)) == words


def test_a_run_whose_process_is_still_starting_is_training_already(tmp_path, alive_elsewhere):
    # Launched by the app and still importing torch: no lock yet, its status names its live process.
    runs.write_json(tmp_path / "r" / runs.STATUS_FILE, {"state": "starting", "pid": alive_elsewhere})
    assert refusal(tmp_path, "r").reason == "busy"


# A parent that never waits for its child, as a container's init may not: the child, once ended, is a zombie.
_NEGLECTFUL_PARENT = """
import os, sys
pid = os.fork()
if pid == 0:
    os._exit(0)
print(pid, flush=True)
sys.stdin.read()
"""


def test_a_starting_status_whose_process_ended_unreaped_is_no_run_in_training(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", _NEGLECTFUL_PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        for _ in range(400):  # until the child has exited (bounded polls)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.05)
        runs.write_json(tmp_path / "r" / runs.STATUS_FILE, {"state": "starting", "pid": pid})
        assert not alive(pid)
        check(tmp_path, "r", Config(epochs=1))  # no refusal: nothing trains it
    finally:
        parent.stdin.close()
        parent.wait()


def test_a_starting_status_that_names_this_process_is_its_own_start(tmp_path):
    # The CLI the app launched reads the status the app wrote for it: that is no other process.
    runs.write_json(tmp_path / "r" / runs.STATUS_FILE, {"state": "starting", "pid": os.getpid()})
    assert check(tmp_path, "r", Config(epochs=1)) == Config(epochs=1)


def test_the_app_trains_max_jobs_runs_at_a_time(tmp_path):
    with runs.run_lock(tmp_path / "busy"):
        assert str(refusal(tmp_path, "new", policy=APP)) == (
            "Run busy is training, and this server trains 1 run(s) at a time (VAE_MAX_JOBS): stop it first, "
            "or wait until it ends.")
        assert check(tmp_path, "new", Config(epochs=1)) == Config(epochs=1)  # the command line has no such cap


def test_a_model_over_the_memory_budget_is_refused_with_its_estimate(tmp_path):
    refused = refusal(tmp_path, "huge", Config(hidden=(65536,), z_dim=4096), policy=APP)
    assert re.fullmatch(r"This model would take about \d+\.\d GiB to train \(PyTorch and the data, the weights and "
                        r"Adam's state, a batch's activations\), more than the 2 GiB this server allows "
                        r"\(VAE_MEMORY_GIB\): lower the batch size, the hidden units or the latent dimensions\.",
                        str(refused))


def test_a_batch_of_60000_is_refused_under_the_apps_default_2_gib_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MEMORY_GIB", 2.0)  # the default; measured, this run peaks at 3.0 GB
    with pytest.raises(jobs.StartRefused, match=r"would take about \d+\.\d GiB to train"):
        jobs.check_start(tmp_path, "big", Config(batch_size=60000))


@pytest.mark.parametrize("resume", [False, True])
def test_a_shipped_run_is_never_replaced_or_trained_further_from_the_app(tmp_path, resume):
    saved_run(tmp_path, "tutorial")
    assert str(refusal(tmp_path, "tutorial", policy=APP, resume=resume, overwrite=not resume)) == (
        "Run tutorial is shipped with the app and is never replaced or trained further from here: choose "
        "another name.")


def test_the_command_line_may_overwrite_a_shipped_run(tmp_path):
    saved_run(tmp_path, "tutorial")
    assert check(tmp_path, "tutorial", {"epochs": 1}, overwrite=True) == Config(epochs=1)


@pytest.mark.parametrize("policy, words", [
    (Policy(), "run 'r' already exists ({path}); pass --resume to continue it, --overwrite to start it anew, or "
               "choose another --run name"),
    (APP, "A run named r exists already: pick it in the sidebar to resume it, tick Overwrite to start it anew, "
          "or choose another name."),
])
def test_an_existing_run_is_not_started_anew_without_overwrite(tmp_path, policy, words):
    path = saved_run(tmp_path)
    assert str(refusal(tmp_path, "r", policy=policy)) == words.format(path=path)


def test_replacing_a_run_takes_a_confirmed_second_request(tmp_path):
    saved_run(tmp_path)
    refused = refusal(tmp_path, "r", policy=APP, overwrite=True, confirmed=False)
    assert refused.reason == "confirm" and str(refused) == (
        "Run r exists: press Start again to replace it. Its checkpoint is kept until the new run has saved its "
        "first epoch.")
    assert check(tmp_path, "r", Config(epochs=1), policy=APP, overwrite=True, confirmed=True) == Config(epochs=1)


def test_a_confirmation_is_asked_only_when_nothing_else_refuses_the_start(tmp_path):
    saved_run(tmp_path)
    with runs.run_lock(tmp_path / "busy"):
        assert refusal(tmp_path, "r", policy=APP, overwrite=True, confirmed=False).reason == "jobs"


@pytest.mark.parametrize("policy, words", [
    (Policy(), r"cannot resume run 'r': .*/r/checkpoint.pt does not exist; drop --resume to start it"),
    (APP, r"Run r has no checkpoint to resume: start it anew from the form\."),
])
def test_resuming_a_run_without_a_checkpoint_is_refused(tmp_path, policy, words):
    assert re.fullmatch(words, str(refusal(tmp_path, "r", {"epochs": 3}, policy=policy, resume=True)))


def test_resuming_with_a_setting_that_changes_the_model_is_refused(tmp_path):
    saved_run(tmp_path)
    refused = refusal(tmp_path, "r", {"epochs": 3, "z_dim": 8}, resume=True, saved=(Config(epochs=1), 1))
    assert str(refused) == "a resumed run keeps its config; these differ: z_dim=8 (the run has 50)"


def test_resuming_with_the_runs_own_hidden_layers_is_no_clash(tmp_path):
    # The flag's value is a tuple, the checkpoint's config a list in JSON: the same layers all the same.
    saved_run(tmp_path)
    resumed = check(tmp_path, "r", {"epochs": 3, "hidden": (400,)}, resume=True, saved=(Config(epochs=1), 1))
    assert resumed.hidden == (400,) and resumed.epochs == 3


@pytest.mark.parametrize("policy, words", [
    (Policy(), "run 'r' has already trained 2 of 2 epochs; pass a larger --epochs to continue it"),
    (APP, "Run r has trained 2 of 2 epochs already: train it on to a later epoch."),
])
def test_resuming_to_a_target_already_reached_is_refused(tmp_path, policy, words):
    saved_run(tmp_path)
    assert str(refusal(tmp_path, "r", {}, policy=policy, resume=True, saved=(Config(epochs=2), 2))) == words


def test_a_resumed_run_keeps_its_config_but_for_the_fields_a_resume_may_change(tmp_path):
    saved_run(tmp_path)
    stored = Config(epochs=2, z_dim=8, lr=1e-3)
    resumed = check(tmp_path, "r", {"epochs": 5, "lr": 5e-4}, resume=True, saved=(stored, 2))
    assert resumed == Config(epochs=5, z_dim=8, lr=5e-4)


def test_resume_reads_what_the_checkpoint_holds_from_its_run_json_without_loading_it(tmp_path, trained):
    ckpt.save_state(trained, runs.checkpoint_path(tmp_path, "r"))  # 3 epochs done; writes run.json beside it
    assert refusal(tmp_path, "r", {"epochs": 3}, resume=True).reason == "done"


# ---------------------------------------------------------------- the job runner asks the rule


def test_the_job_runner_refuses_a_resume_to_a_target_reached_and_starts_no_process(tmp_path, trained):
    ckpt.save_state(trained, runs.checkpoint_path(tmp_path, "r"))  # 3 of 3 epochs done
    with pytest.raises(jobs.StartRefused, match="Run r has trained 3 of 3 epochs already"):
        jobs.start(tmp_path, "r", trained.config, resume=True)
    assert runs.read_status(tmp_path / "r") is None and not (tmp_path / "r" / runs.LOG_FILE).exists()
