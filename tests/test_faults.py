"""Faults made real: SIGKILL at random moments of training, a disk that fills up while a run saves."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_run import run_cli, until
from vae_core import checkpoint as ckpt
from vae_core import forkserver, runs
from vae_core.start import alive

ROOT = Path(__file__).resolve().parent.parent
KILLS = 10  # ten moments cover a step, a test pass and a save


def _running(folder: Path, pid: int, polls: int = 2400) -> bool:
    """Wait until process `pid` says it trains (past its imports), or has died; bounded polls."""
    for _ in range(polls):
        status = runs.read_status(folder) or {}
        if status.get("pid") == pid and status.get("state") == "running":
            return True
        if not alive(pid):
            return False
        time.sleep(0.05)
    return False


def _train(checkpoints: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vae_core", "train", "--run", "k", "--limit", "512", "--test-every", "3",
            "--checkpoints", str(checkpoints), *extra]


def test_ten_sigkills_at_random_moments_never_lose_a_finished_epoch(tmp_path):
    rng = random.Random(0)
    path = runs.checkpoint_path(tmp_path, "k")
    done = 0
    for _ in range(KILLS):
        resume = ["--resume"] if path.exists() else []
        # A process of its own, forked with torch loaded as the app starts its runs (vae_core.forkserver): a
        # restart takes a fraction of a second, not the 2 to 4 s of a new interpreter's imports.
        pid = forkserver.detach(_train(tmp_path, "--epochs", "1000", *resume)[3:], log=tmp_path / "train.log",
                                cwd=ROOT, env=os.environ)
        assert _running(path.parent, pid), (tmp_path / "train.log").read_text()
        if not path.exists():  # the first epoch is let finish (an event, not a time: a busy machine is slow)
            until(lambda: path.exists() or not alive(pid))
        time.sleep(rng.uniform(0.0, 1.0))  # a random moment: the outcome holds at any, whatever the speed
        os.kill(pid, signal.SIGKILL)
        until(lambda: not alive(pid))
        if path.exists():
            state = ckpt.load_state(path)  # never half-written
            assert len(state.history.train_loss) == state.epoch
            assert state.epoch >= done  # no finished epoch lost
            done = state.epoch
    assert done > 0
    out = run_cli(*_train(tmp_path, "--epochs", str(done + 1), "--resume")[3:])
    assert out.returncode == 0, out.stderr  # and the run resumes from there
    assert ckpt.load_state(path).epoch == done + 1


@contextlib.contextmanager
def _small_disk(folder: Path, megabytes: int):
    """A tmpfs of `megabytes` mounted on `folder` (root only; skipped elsewhere)."""
    folder.mkdir()
    mounted = _mount(["-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)])
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC tests stand in")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


def _make_read_only(folder: Path) -> None:
    """Remount the tmpfs on `folder` read-only: writes fail with EROFS, even as root (chmod would not stop root)."""
    remounted = _mount(["-o", "remount,ro", str(folder)])
    assert remounted.returncode == 0, remounted.stderr


def test_a_disk_that_fills_up_while_a_run_saves_is_named_and_the_last_checkpoint_kept(tmp_path):
    # 12 MB: the first checkpoint (8.3 MB) fits, the second cannot be written beside it.
    with _small_disk(tmp_path / "disk", 12) as disk:
        out = run_cli(*_train(disk, "--epochs", "3")[3:])
        assert out.returncode == 1, out.stderr
        assert "error: no space left on device while saving" in out.stderr
        assert "the previous checkpoint (epoch 1) is intact" in out.stderr
        assert "Traceback" not in out.stderr
        path = runs.checkpoint_path(disk, "k")
        assert ckpt.load_state(path).epoch == 1
        assert not list(path.parent.glob(".*.tmp"))


def test_a_disk_too_full_for_the_map_after_training_leaves_the_run_finished_without_it(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_NO_MAP", raising=False)  # the map the other tests' runs skip
    # 9 MB: the checkpoint (8.3 MB) and the run's small files fit; the test-set means (2 MB) do not, and numpy
    # reports the short write as "500000 requested and 258016 written", with no errno.
    with _small_disk(tmp_path / "disk", 9) as disk:
        out = run_cli(*_train(disk, "--epochs", "1")[3:])
        assert out.returncode == 0, out.stderr  # training is complete
        assert "Traceback" not in out.stderr
        status = runs.read_status(disk / "k")
        assert status["state"] == "finished" and "map" not in status
        assert "the latent map was not kept (no space left on device while saving" in status["message"]
        assert "python -m vae_core embed k" in status["message"]
        assert ckpt.load_state(runs.checkpoint_path(disk, "k")).epoch == 1
        assert not list((disk / "k" / runs.CACHE_FOLDER).glob(".*.tmp"))


@pytest.mark.parametrize("start", ["new", "resume"])
def test_a_read_only_checkpoints_folder_is_named_without_a_traceback(tmp_path, start):
    with _small_disk(tmp_path / "disk", 16) as disk:
        if start == "resume":
            assert run_cli(*_train(disk, "--epochs", "1")[3:]).returncode == 0
        _make_read_only(disk)
        out = run_cli(*_train(disk, "--epochs", "2", *(["--resume"] if start == "resume" else []))[3:])
        assert out.returncode == 1, out.stderr
        assert out.stderr.strip().splitlines()[-1] == (
            f"python -m vae_core train: error: cannot write {disk / 'k'}: the folder is read-only or not writable")
        assert "Traceback" not in out.stderr
