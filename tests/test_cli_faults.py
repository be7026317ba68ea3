"""The CLI after faults: divergence at any learning rate, temp files that killed saves left behind."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.cli_run import cli
from vae_core import checkpoint as ckpt
from vae_core import runs
AN_HOUR_AGO = time.time() - 3600  # older than any grace period: what a kill left long ago


def left_by_a_kill(folder: Path, name: str) -> Path:
    """A temp file of `name` as atomic_write makes one, dated an hour back."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f".{name}.k1ll.tmp"
    file.write_bytes(b"half a file")
    os.utime(file, (AN_HOUR_AGO, AN_HOUR_AGO))
    return file


def left_in_run_and_cache(folder: Path) -> list[Path]:
    """What kills leave: a status, test-set means, a T-SNE map and a timeline frame, each cut short."""
    cache = folder / runs.CACHE_FOLDER
    return [left_by_a_kill(folder, runs.STATUS_FILE), left_by_a_kill(cache, "test-means-0123456789abcdef.npy"),
            left_by_a_kill(cache, "tsne-p30-s0-i100+200-exact-0123456789abcdef.npy"),
            left_by_a_kill(folder / runs.TIMELINE_FOLDER, "epoch-0001.npz")]


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # what a diverging run meets, by design
@pytest.mark.parametrize("lr", ["0.1", "0.2", "0.5", "1"])
def test_a_run_diverging_at_a_high_learning_rate_says_to_lower_it_whatever_raises_first(tmp_path, lr):
    out = cli("train", "--run", "d", "--epochs", "6", "--limit", "2000", "--lr", lr, checkpoints=tmp_path)
    assert out.returncode == 1, out.stderr
    assert re.search(r"error: the loss became nan at epoch 1, step \d+; lower the learning rate", out.stderr)
    assert "Traceback" not in out.stderr and "Expected parameter" not in out.stderr
    status = runs.read_status(tmp_path / "d")
    assert status["state"] == "failed" and "lower the learning rate" in status["message"]


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # what a diverging run meets, by design
def test_a_resumed_run_that_diverges_keeps_its_last_finished_epoch(tmp_path):
    assert cli("train", "--run", "d", "--epochs", "1", "--limit", "2000", checkpoints=tmp_path).returncode == 0
    out = cli("train", "--run", "d", "--epochs", "4", "--resume", "--lr", "1", checkpoints=tmp_path)
    assert out.returncode == 1, out.stderr
    assert re.search(r"error: the loss became nan at epoch 2, step \d+; lower the learning rate", out.stderr)
    assert ckpt.load_state(tmp_path / "d" / runs.CHECKPOINT_FILE).epoch == 1


@pytest.mark.parametrize("start", ["new", "resume"])
def test_temp_files_a_kill_left_in_the_run_and_its_cache_are_removed_at_a_start(tmp_path, start):
    if start == "resume":
        assert cli("train", "--run", "k", "--epochs", "1", "--limit", "256", checkpoints=tmp_path).returncode == 0
    left = left_in_run_and_cache(tmp_path / "k")  # a new start: a run killed before its first epoch ended
    out = cli("train", "--run", "k", "--epochs", "2", "--limit", "256", *(["--resume"] if start == "resume" else []),
              checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [f for f in left if f.exists()] == []
    assert "removed cache/.test-means-0123456789abcdef.npy.k1ll.tmp" in out.stderr


def test_temp_files_a_kill_left_while_the_run_trained_are_removed_when_it_finishes(tmp_path, monkeypatch):
    real_save, left = ckpt.save_state, []

    def save_then_leave_temp_files(state, path):  # views killed while they cached, as epoch 1 ended
        real_save(state, path)
        if state.epoch == 1:
            left.extend(left_in_run_and_cache(Path(path).parent))

    monkeypatch.setattr(ckpt, "save_state", save_then_leave_temp_files)
    assert cli("train", "--run", "k", "--epochs", "2", "--limit", "256", checkpoints=tmp_path).returncode == 0
    assert len(left) == 4 and [f for f in left if f.exists()] == []
    assert runs.read_status(tmp_path / "k")["state"] == "finished"


def test_temp_files_a_kill_left_are_removed_by_embed(tmp_path):
    # 2-d codes are their own map: embed keeps the means without a T-SNE (seconds, not a minute).
    assert cli("train", "--run", "e", "--epochs", "1", "--limit", "256", "--z-dim", "2",
               checkpoints=tmp_path).returncode == 0
    left = left_in_run_and_cache(tmp_path / "e")
    out = cli("embed", "e", checkpoints=tmp_path)
    assert out.returncode == 0, out.stderr
    assert [f for f in left if f.exists()] == []

