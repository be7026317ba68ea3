"""Faults made real: SIGKILL at random moments of training, a disk that fills up while a run saves."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vae_core import checkpoint as ckpt

from vae_core import folders
from vae_core import monitor

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20


def _running(folder: Path, pid: int, polls: int = 2400) -> bool:
    """Wait until process `pid` says it trains (past its imports), or has died; bounded polls."""
    for _ in range(polls):
        status = monitor.read_status(folder) or {}
        if status.get("pid") == pid and status.get("state") == "running":
            return True
        time.sleep(0.05)
    return False


def _train(checkpoints: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vae_core", "train", "--run", "k", "--limit", "512", "--test-every", "3",
            "--checkpoints", str(checkpoints), *extra]


def test_twenty_sigkills_at_random_moments_never_lose_a_finished_epoch(tmp_path):
    rng = random.Random(0)
    path = folders.checkpoint_path(tmp_path, "k")
    done = 0
    for _ in range(KILLS):
        resume = ["--resume"] if path.exists() else []
        proc = subprocess.Popen(_train(tmp_path, "--epochs", "1000", *resume), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _running(path.parent, proc.pid)
        time.sleep(rng.uniform(0.0, 1.0))  # into a step, a test pass or a save: an epoch is ~0.2 s here
        proc.kill()
        proc.wait()
        if path.exists():
            state = ckpt.load_state(path)  # never half-written
            assert len(state.history.train_loss) == state.epoch
            assert state.epoch >= done  # no finished epoch lost
            done = state.epoch
    assert done > 0
    out = subprocess.run(_train(tmp_path, "--epochs", str(done + 1), "--resume"), cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr  # and the run resumes from there
    assert ckpt.load_state(path).epoch == done + 1


@contextlib.contextmanager
def _small_disk(folder: Path, megabytes: int):
    """A tmpfs of `megabytes` mounted on `folder` (root only; skipped elsewhere)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC tests stand in")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_disk_that_fills_up_while_a_run_saves_is_named_and_the_last_checkpoint_kept(tmp_path):
    # 12 MB: the first checkpoint (8.3 MB) fits, the second cannot be written beside it.
    with _small_disk(tmp_path / "disk", 12) as disk:
        out = subprocess.run(_train(disk, "--epochs", "3"), cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 1, out.stderr
        assert "error: no space left on device while saving" in out.stderr
        assert "the previous checkpoint (epoch 1) is intact" in out.stderr
        assert "Traceback" not in out.stderr
        path = folders.checkpoint_path(disk, "k")
        assert ckpt.load_state(path).epoch == 1
        assert not list(path.parent.glob(".*.tmp"))
