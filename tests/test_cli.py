import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vae_core import analysis, latent
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs
from vae_core import files
from vae_core import objectives
from vae_core import timeline
from vae_core.cli import build_parser, config_overrides
from vae_core.config import FIELDS, Config
from vae_core.likelihoods import LIKELIHOODS
from tests.cli_run import cli
from ui import jobs

ROOT = Path(__file__).resolve().parent.parent


def cli_process(*args: str, checkpoints: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *args, "--checkpoints", str(checkpoints)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_train_prints_the_tutorial_lines_counting_epochs_from_1_and_saves_every_epoch(tmp_path):
    out = cli("train", "--run", "t", "--epochs", "2", "--limit", "512", "--test-every", "5", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("[epoch 1 of 2]  average training loss: ")
    assert lines[1].startswith("[epoch 1 of 2] average test loss: ")
    assert lines[2].startswith("[epoch 2 of 2]  average training loss: ")
    assert lines[3].startswith("[epoch 2 of 2] average test loss: ")  # the last epoch is always tested
    state = ckpt.load_state(tmp_path / "t" / runs.CHECKPOINT_FILE)
    assert state.epoch == 2 and state.config.limit == 512
    assert f"{state.history.train_loss[1]:.4f}" in lines[2]


def test_resume_continues_and_evaluate_prints_the_test_loss(tmp_path):
    assert cli("train", "--run", "r", "--epochs", "1", "--limit", "256", checkpoints=tmp_path).returncode == 0
    out = cli("train", "--run", "r", "--epochs", "2", "--resume", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[epoch 2 of 2]  average training loss: ")
    ev = cli("evaluate", "r", checkpoints=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert ev.stdout.startswith("[run r, after epoch 2] average test loss: ")
    assert 0 < float(ev.stdout.split(":")[-1]) < 600


def test_evaluate_estimates_log_px_above_the_elbo_and_labels_it_honestly():
    out = cli("evaluate", "tutorial", "--iwae", "20", "--images", "300", checkpoints=runs.DEFAULT_ROOT)
    assert out.returncode == 0, out.stderr
    loss_line, bound_line, label = out.stdout.splitlines()
    assert loss_line.startswith("[run tutorial, after epoch 100] average test loss: ")
    bound, elbo = _bound_and_elbo(bound_line)
    assert "K=20, 300 test images" in bound_line and elbo < bound < elbo + 15  # tighter than the ELBO
    assert float(bound_line.rsplit("gap ", 1)[1]) == pytest.approx(bound - elbo, abs=2e-4)
    assert "not the dynamically binarized MNIST log-likelihood that papers report" in label


def _bound_and_elbo(line: str) -> tuple[float, float]:
    """The bound and the ELBO that `evaluate --iwae` prints on one line."""
    return float(line.split("log p(x) >= ")[1].split(" ")[0]), float(line.split("ELBO ")[1].split(" ")[0].rstrip(";"))


def test_evaluate_on_a_binarized_run_gives_the_elbo_of_the_images_the_bound_binarized(tmp_path, mnist):
    shipped = runs.checkpoint_path(runs.DEFAULT_ROOT, "burda-binarized")
    (tmp_path / "b").mkdir()
    shutil.copy(shipped, tmp_path / "b" / runs.CHECKPOINT_FILE)  # its cache is written here, not in the shipped run
    out = cli("evaluate", "b", "--iwae", "20", "--images", "200", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    vae = ckpt.load_state(shipped).vae.eval()
    # K = 1 is a one-sample ELBO; with the same seed it draws the bound's 0/1 images, and its first code for each.
    same_images = objectives.iwae_bound(vae, mnist.test_images[:200], k=1, seed=0).mean()
    assert _bound_and_elbo(out.stdout.splitlines()[1])[1] == pytest.approx(same_images, abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--images", "0"], "--images must be between 1 and 10000, got 0"),
    (["--images", "10001"], "--images must be between 1 and 10000"),
])
def test_evaluate_refuses_an_image_count_out_of_range(args, message):
    out = cli("evaluate", "tutorial", *args, checkpoints=runs.DEFAULT_ROOT)
    assert out.returncode == 2 and message in out.stderr, out.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--run", "x", "--z-dim", "1"],
     r"z_dim must be between 2 and 4096, got 1 \(the views map codes in two dimensions: use at least 2\)"),
    (["train", "--run", "x", "--hidden", "200,,200"], "hidden must be whole numbers of units .* got '200,,200'"),
    (["train", "--run", "x", "--threads", "0"], "--threads must be auto or between 1 and"),
    (["train", "--run", "x", "--threads", "1000000"], "--threads must be auto or between 1 and"),
    (["evaluate", "x", "--seed", "18446744073709551616"], "--seed must be between 0 and 9223372036854775807"),
    (["embed", "x", "--seed", "-1"], "--seed must be between 0 and"),
    (["train"], "the following arguments are required: --run"),
    (["evaluate", "ghost"], "no run 'ghost'"),
    (["fly"], "invalid choice: 'fly'"),
    (["evaluate", "x", "--iwae", "0"], "--iwae must be between 1 and 5000 samples per image, got 0"),
    (["evaluate", "x", "--iwae", "5001"], "--iwae must be between 1 and 5000"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, args, message):
    out = cli_process(*args, checkpoints=tmp_path)  # a real process: these are named before torch loads
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "error:" in out.stderr
    assert re.search(message, out.stderr), out.stderr
    assert "--resume" in args or not (tmp_path / "x").exists()  # nothing written


def test_the_cli_refuses_a_run_whose_app_process_is_still_starting_before_torch_loads(tmp_path):
    # The start rule (vae_core.start, whose tests hold its every message): the app's process for run x
    # imports torch, so it holds no lock yet; its status names it, alive. A second trainer must not start.
    from vae_core import runs

    with subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE) as other:
        runs.write_json(tmp_path / "x" / runs.STATUS_FILE, {"state": "starting", "pid": other.pid})
        out = cli("train", "--run", "x", "--epochs", "1", "--limit", "256", checkpoints=tmp_path)
        other.stdin.close()
    assert out.returncode == 2, out.stderr
    assert out.stderr.endswith("train: error: run 'x' is already being trained by another process\n")
    assert not (tmp_path / "x" / "checkpoint.pt").exists()


def test_an_unreadable_checkpoint_exits_1_naming_the_file(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / runs.CHECKPOINT_FILE).write_bytes(b"garbage")
    out = cli("evaluate", "bad", checkpoints=tmp_path)
    assert out.returncode == 1 and "bad/checkpoint.pt is truncated or not a checkpoint" in out.stderr


def test_help_documents_every_training_option(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vae_core", "train", "--help"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--run", "--epochs", "--device", "--jit", "--resume", "--limit", "--lr", "--batch-size",
                   "--z-dim", "--hidden", "--activation", "--likelihood", "--beta", "--warmup", "--free-bits",
                   "--test-every", "--seed",
                   "--checkpoints", "--data", "--threads"):
        assert option in out.stdout
    for spec in FIELDS.values():  # each flag's help is its field's, from the Config's metadata
        if spec.cli:
            assert " ".join(spec.help.split()[:4]) in " ".join(out.stdout.split())


def test_embed_caches_the_latent_means_and_tsne_map_for_the_app(tmp_path):
    assert cli("train", "--run", "e", "--epochs", "1", "--limit", "256", checkpoints=tmp_path).returncode == 0
    out = cli("embed", "e", "--perplexity", "20", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    path = tmp_path / "e" / runs.CHECKPOINT_FILE
    digest = runs.digest(path)
    from vae_core import analysis
    assert run_cache.load_cached(path, latent.MEANS_NAME, digest).shape == (10000, 50)
    assert run_cache.load_cached(path, analysis.tsne_name(20, 0), digest).shape == (10000, 2)


def test_a_temp_file_left_by_a_killed_save_is_removed_at_the_next_start(tmp_path):
    assert cli("train", "--run", "k", "--epochs", "1", "--limit", "256", checkpoints=tmp_path).returncode == 0
    stale = tmp_path / "k" / ".checkpoint.pt.x1y2.tmp"
    stale.write_bytes(b"half a checkpoint")
    old_status = tmp_path / "k" / ".status.json.a1b2.tmp"  # the app's write, killed an hour ago
    old_status.write_bytes(b'{"sta')
    os.utime(old_status, (time.time() - 3600,) * 2)
    # The app writes a stop request without the run's lock: a young temp file may be a write under way.
    writing = tmp_path / "k" / ".stop.json.c3d4.tmp"
    writing.write_bytes(b'{"pid"')
    out = cli("train", "--run", "k", "--epochs", "2", "--resume", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not stale.exists() and "removed .checkpoint.pt.x1y2.tmp" in out.stderr
    assert not old_status.exists() and "removed .status.json.a1b2.tmp" in out.stderr
    assert writing.exists() and ".stop.json" not in out.stderr


def test_bad_values_leave_no_run_folder_behind(tmp_path):
    assert cli("train", "--run", "typo", "--epochs", "0", checkpoints=tmp_path).returncode == 2
    assert not (tmp_path / "typo").exists()


def test_a_stop_requested_while_the_process_starts_is_honoured(tmp_path):
    folder = tmp_path / "early"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "vae_core", "train", "--run", "early", "--epochs", "3",
                             "--checkpoints", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    runs.request_stop(folder, proc.pid)  # the process is still importing torch
    out, err = proc.communicate()
    assert proc.returncode == 130, err
    assert "no epoch finished, nothing saved" in err
    status = runs.read_status(folder)
    assert status["state"] == "stopped" and status["epoch"] == 0
    assert not (folder / runs.CHECKPOINT_FILE).exists()
    assert not (folder / runs.STOP_FILE).exists()  # the request is consumed


def test_a_stale_stop_request_for_another_process_is_ignored(tmp_path):
    folder = tmp_path / "stale"
    folder.mkdir()
    runs.request_stop(folder, pid=1)  # left by some earlier process
    out = cli("train", "--run", "stale", "--epochs", "1", "--limit", "256", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    assert runs.read_status(folder)["state"] == "finished"


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # what a diverging run meets, by design
def test_a_diverging_run_stops_at_the_step_and_says_to_lower_the_learning_rate(tmp_path):
    out = cli("train", "--run", "hot", "--epochs", "3", "--limit", "2000", "--lr", "0.05", checkpoints=tmp_path)
    assert out.returncode == 1
    # nan through Trace_ELBO's sigmoid and back; inf from the fused step's logits, which overflow first
    assert re.search(r"error: the loss became (nan|inf) at epoch 1, step \d+; lower the learning rate", out.stderr)
    assert "Traceback" not in out.stderr
    status = runs.read_status(tmp_path / "hot")
    assert status["state"] == "failed" and re.match("the loss became (nan|inf) at epoch 1", status["message"])


def test_resume_may_lower_the_learning_rate(tmp_path):
    assert cli("train", "--run", "cool", "--epochs", "1", "--limit", "256", checkpoints=tmp_path).returncode == 0
    out = cli("train", "--run", "cool", "--epochs", "2", "--resume", "--lr", "0.0005", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    state = ckpt.load_state(tmp_path / "cool" / runs.CHECKPOINT_FILE)
    assert state.config.lr == 0.0005 and state.optimizer.param_groups[0]["lr"] == 0.0005


def test_a_full_disk_during_training_says_so_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import errno

    real_save, saves = ckpt.save_state, []

    def save_then_fill_the_disk(state, path):
        saves.append(state.epoch)
        if len(saves) > 1:
            raise files.SaveError(errno.ENOSPC, f"no space left on device while saving {path}")
        real_save(state, path)

    monkeypatch.setattr(ckpt, "save_state", save_then_fill_the_disk)
    out = cli("train", "--run", "full", "--epochs", "3", "--limit", "256", checkpoints=tmp_path)
    assert out.returncode == 1
    assert "error: no space left on device while saving" in out.stderr
    assert "the previous checkpoint (epoch 1) is intact" in runs.read_status(tmp_path / "full")["message"]
    assert ckpt.load_state(tmp_path / "full" / runs.CHECKPOINT_FILE).epoch == 1


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_each_likelihood_trains_from_the_cli_and_its_run_evaluates(tmp_path, likelihood):
    out = cli("train", "--run", "l", "--epochs", "1", "--limit", "256", "--likelihood", likelihood,
              "--hidden", "32,16", "--activation", "relu", "--beta", "2", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    config = ckpt.load_state(tmp_path / "l" / runs.CHECKPOINT_FILE).config
    assert (config.likelihood, config.hidden, config.activation, config.beta) == (likelihood, (32, 16), "relu", 2.0)
    ev = cli("evaluate", "l", "--iwae", "5", "--images", "20", checkpoints=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert "log p(x) >=" in ev.stdout and LIKELIHOODS[likelihood].note in ev.stdout


def test_the_job_command_hands_the_cli_the_config_it_was_made_from():
    config = Config(epochs=7, limit=3000, lr=3e-4, batch_size=100, test_every=2, z_dim=2, hidden=(200, 200),
                    activation="tanh", likelihood="gaussian", beta=0.5, seed=9, step="trace", jit=True)
    for made in (config, Config()):  # every field set, and every field at its default (limit None: all images)
        args = jobs.command(Path("runs"), "r", made, resume=False)
        assert args[0] == "train"
        assert Config(**config_overrides(build_parser().parse_args(args))) == made


def _with_map() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "VAE_NO_MAP"}


def test_a_finished_run_caches_its_latent_map_for_the_app(tmp_path, monkeypatch):
    # With 2-d codes, the codes are the map: no T-SNE. A larger latent space's T-SNE map, made by the same
    # trainer, is tests/app/test_app_train.py::test_the_map_of_a_run_trained_from_the_form_opens_without_a_tsne_wait.
    monkeypatch.delenv("VAE_NO_MAP", raising=False)  # the map the other tests' runs skip
    out = cli("train", "--run", "m", "--epochs", "1", "--limit", "256", "--z-dim", "2", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    path = tmp_path / "m" / runs.CHECKPOINT_FILE
    digest = runs.digest(path)
    means = run_cache.load_cached(path, latent.MEANS_NAME, digest)
    assert means.shape == (10_000, 2)
    assert run_cache.load_cached(path, analysis.tsne_name(30, 0), digest) is None  # 2-d codes are their own map
    status = runs.read_status(tmp_path / "m")
    assert status["state"] == "finished" and "latent map ready (" in status["message"] and "map" not in status


def test_a_stop_pressed_while_the_map_is_computed_skips_it_and_keeps_the_run(tmp_path):
    folder = tmp_path / "m"
    proc = subprocess.Popen([sys.executable, "-m", "vae_core", "train", "--run", "m", "--epochs", "1", "--limit",
                             "256", "--checkpoints", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_with_map())
    deadline = time.monotonic() + 300
    while "map" not in (runs.read_status(folder) or {}) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    runs.request_stop(folder, proc.pid)  # the Train page's Stop training, while T-SNE runs
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err  # the run itself had finished
    status = runs.read_status(folder)
    assert status["state"] == "finished" and status["message"].endswith("the latent map was skipped")
    path = folder / runs.CHECKPOINT_FILE
    assert ckpt.load_state(path).epoch == 1
    assert run_cache.load_cached(path, analysis.tsne_name(30, 0), runs.digest(path)) is None


def _train_in_process(tmp_path: Path, *args: str) -> None:
    out = cli("train", *args, "--limit", "256", "--test-every", "1", "--threads", "1", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr


def test_a_resume_drops_frames_past_its_checkpoint_and_records_the_checkpoints_frame_again(tmp_path):
    folder = tmp_path / "r"
    _train_in_process(tmp_path, "--run", "r", "--epochs", "1")
    first = timeline.read_frame(timeline.frame_path(folder, 1))
    timeline.write_frame(folder, dataclasses.replace(first, epoch=7))  # a frame the checkpoint never reached
    timeline.frame_path(folder, 1).unlink()  # as a kill between the checkpoint's save and its frame leaves it
    _train_in_process(tmp_path, "--run", "r", "--epochs", "2", "--resume")
    assert timeline.frame_epochs(folder) == [1, 2]
    again = timeline.read_frame(timeline.frame_path(folder, 1))
    assert all(np.array_equal(getattr(again, f), getattr(first, f)) for f in ("loc", "scale", "kl", "indices"))


def test_overwrite_replaces_the_old_runs_timeline_with_the_new_runs(tmp_path):
    folder = tmp_path / "o"
    _train_in_process(tmp_path, "--run", "o", "--epochs", "2")
    old = timeline.read_frame(timeline.frame_path(folder, 1))
    _train_in_process(tmp_path, "--run", "o", "--epochs", "1", "--seed", "1", "--overwrite")
    assert timeline.frame_epochs(folder) == [1]
    assert not np.array_equal(timeline.read_frame(timeline.frame_path(folder, 1)).loc, old.loc)


def test_a_new_run_removes_frames_left_in_its_folder_by_no_run(tmp_path):
    stray = timeline.Frame(5, np.zeros((20, 50)), np.ones(20), np.zeros(50), 0, np.arange(20), np.arange(20) % 10)
    timeline.write_frame(tmp_path / "n", stray)  # a folder whose checkpoint is gone
    _train_in_process(tmp_path, "--run", "n", "--epochs", "1")
    assert timeline.frame_epochs(tmp_path / "n") == [1]


def test_a_killed_run_keeps_its_frames_and_its_resume_ends_with_an_uninterrupted_runs_frames(tmp_path):
    import signal

    args = ["--epochs", "3", "--limit", "2000", "--test-every", "1", "--threads", "1", "--checkpoints", str(tmp_path)]

    def train(run: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "vae_core", "train", "--run", run, *args], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    whole, cut = train("whole"), train("cut")  # side by side: one core each
    while not timeline.frame_epochs(tmp_path / "cut") and cut.poll() is None:
        time.sleep(0.01)
    os.kill(cut.pid, signal.SIGKILL)  # during epoch 2, a frame written
    assert cut.wait() == -signal.SIGKILL
    saved = ckpt.load_state(tmp_path / "cut" / runs.CHECKPOINT_FILE).epoch
    kept = timeline.read_timeline(tmp_path / "cut")
    assert saved < 3 and not kept.skipped  # each frame written whole
    assert kept.epochs.tolist() in (list(range(1, saved + 1)), list(range(1, saved)))  # a frame follows its save
    assert cli("train", "--run", "cut", "--resume", *args[:-2], checkpoints=tmp_path).returncode == 0
    assert whole.wait() == 0
    resumed, straight = timeline.read_timeline(tmp_path / "cut"), timeline.read_timeline(tmp_path / "whole")
    assert resumed.epochs.tolist() == straight.epochs.tolist() == [1, 2, 3]
    for field in ("loc", "scale", "kl", "active", "indices", "labels"):
        assert np.array_equal(getattr(resumed, field), getattr(straight, field)), field
