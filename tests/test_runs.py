"""A run folder (vae_core.runs): run names, the runs listed from run.json and from checkpoints saved without one,
what a run.json may not be believed on, and the files a training process leaves for the app."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core.config import Config
from vae_core.runs import CheckpointError, RunNameError
from vae_core.sizes import checkpoint_bytes
from vae_core.train import new_state

ROOT = Path(__file__).resolve().parent.parent

# Bytes a refused 1 GiB checkpoint may cost to judge: its archive's directory and record, never the file.
READ_BUDGET = 16 << 20


def bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux's rchar)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def saved(trained, root: Path, name: str = "r") -> Path:
    path = runs.checkpoint_path(root, name)
    ckpt.save_state(trained, path)
    return path


def listing(root: Path) -> runs.Scan:
    """Every run under `root` as the picker and the CLI list them: one saved without a run.json is loaded."""
    return ckpt.index_runs(runs.scan_runs(root))


def _counting_loads(monkeypatch) -> list:
    """Record every checkpoint load_state reads (the real function still does the work)."""
    calls, real = [], ckpt.load_state
    monkeypatch.setattr(ckpt, "load_state", lambda path, data=None: calls.append(path) or real(path, data))
    return calls


def lie(path: Path, change) -> None:
    """Rewrite run.json through `change`, keeping the size, mtime and SHA-256 it names: those of the checkpoint."""
    summary = path.with_name(runs.RUN_FILE)
    raw = json.loads(summary.read_text())
    change(raw)
    summary.write_text(json.dumps(raw))


@pytest.mark.parametrize("name", ["demo", "run-1", "a.b_c", "X" * 64, "tutorial"])
def test_valid_run_names_are_accepted(name):
    assert runs.run_dir("checkpoints", name) == Path("checkpoints") / name


@pytest.mark.parametrize("name", ["", "..", ".", "../x", "a/b", "a\\b", "/abs", ".hidden", "a..b",
                                  "x" * 65, "sp ace", "nul\0", "é"])
def test_run_names_that_could_escape_or_confuse_are_refused(name):
    with pytest.raises(RunNameError, match="is not allowed"):
        runs.run_dir("checkpoints", name)


def test_runs_are_listed_newest_first_and_an_unreadable_one_is_left_out(trained, tmp_path):
    for name, mtime_s in (("old", 1_000), ("new", 2_000)):
        saved(trained, tmp_path, name)
        os.utime(runs.checkpoint_path(tmp_path, name), (mtime_s, mtime_s))  # run.json then names it by its hash
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / runs.CHECKPOINT_FILE).write_bytes(b"junk")
    listed = listing(tmp_path).runs
    assert [r.name for r in listed] == ["new", "old"]
    assert listed[0].epoch == 3 and listed[0].test_loss == trained.history.test_loss[-1]


def test_one_unreadable_run_is_reported_with_its_reason_and_never_hides_the_others(trained, tmp_path):
    ckpt.save_state(trained, runs.checkpoint_path(tmp_path, "good"))
    bad = runs.checkpoint_path(tmp_path, "bad")
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()  # a run folder before its first checkpoint: no run yet
    scan = listing(tmp_path)
    assert [r.name for r in scan.runs] == ["good"]
    assert list(scan.unreadable) == ["bad"] and "truncated or not a checkpoint file" in scan.unreadable["bad"]


def test_runs_are_listed_from_run_json_without_loading_a_checkpoint(trained, tmp_path, monkeypatch):
    path = runs.checkpoint_path(tmp_path, "fast")
    ckpt.save_state(trained, path)
    summary = json.loads((path.parent / runs.RUN_FILE).read_text())
    assert summary["epoch"] == 3 and summary["test_loss"] == trained.history.test_loss[-1]
    assert summary["checkpoint"]["sha256"] == runs.digest(path)
    loads = _counting_loads(monkeypatch)
    (info,) = runs.list_runs(tmp_path)
    assert (info.name, info.epoch, info.epochs, info.test_loss) == ("fast", 3, trained.config.epochs,
                                                                  trained.history.test_loss[-1])
    assert loads == []
    os.utime(path, ns=(1, 1))  # a fresh clone: the same bytes with another mtime; the hash vouches for them
    assert runs.list_runs(tmp_path)[0].epoch == 3 and loads == []


@pytest.mark.parametrize("damage", ["replaced", "garbage", "wrong types"])
def test_a_run_json_that_is_not_this_checkpoints_is_ignored(trained, tmp_path, monkeypatch, damage):
    path = runs.checkpoint_path(tmp_path, "r")
    ckpt.save_state(trained, path)
    summary = path.parent / runs.RUN_FILE
    if damage == "replaced":  # a checkpoint copied in over the run, its run.json left as it was
        older = copy.deepcopy(trained)
        older.epoch, older.history.train_loss = 2, older.history.train_loss[:2]
        older.history.epoch_seconds = older.history.epoch_seconds[:2]
        ckpt.save_state(older, tmp_path / "elsewhere.pt")
        shutil.copyfile(tmp_path / "elsewhere.pt", path)
    elif damage == "garbage":
        summary.write_text("{not json")
    else:
        summary.write_text(summary.read_text().replace('"epoch": 3', '"epoch": "three"'))
    loads = _counting_loads(monkeypatch)
    (info,) = listing(tmp_path).runs
    assert info.epoch == (2 if damage == "replaced" else 3) and len(loads) == 1  # the checkpoint itself said


@pytest.mark.parametrize("listed_from", ["run.json", "the checkpoint"])
def test_a_listed_run_names_the_sha256_its_caches_are_keyed_by(trained, tmp_path, listed_from):
    path = runs.checkpoint_path(tmp_path, "r")
    ckpt.save_state(trained, path)
    if listed_from == "the checkpoint":
        (path.parent / runs.RUN_FILE).unlink()
    (info,) = listing(tmp_path).runs
    assert info.digest == runs.digest(path)


def test_a_run_saved_without_a_run_json_gets_one_at_its_first_listing_and_is_listed_next_without_torch(
        trained, tmp_path):
    path = saved(trained, tmp_path)
    path.with_name(runs.RUN_FILE).unlink()  # as a run saved before run.json existed, or copied in alone
    assert runs.scan_runs(tmp_path).unindexed == [path]
    (info,) = listing(tmp_path).runs  # loaded once: the picker and the CLI list it still
    probe = ("import sys; from vae_core import runs; scan = runs.scan_runs(sys.argv[1]); "
             "print([(r.name, r.epoch, r.digest) for r in scan.runs], scan.unindexed, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == f"{[('r', trained.epoch, runs.digest(path))]} [] False", out.stderr
    assert info.digest == runs.digest(path)


def test_a_checkpoint_saved_under_another_name_and_moved_into_place_is_listed_from_its_run_json(
        trained, tmp_path, monkeypatch):
    folder = tmp_path / "r"
    ckpt.save_state(trained, folder / "saving.pt")
    os.replace(folder / "saving.pt", folder / runs.CHECKPOINT_FILE)  # a rename keeps the bytes and the mtime
    loads = _counting_loads(monkeypatch)
    (info,) = listing(tmp_path).runs
    assert (info.name, info.epoch, loads) == ("r", trained.epoch, [])


@pytest.mark.parametrize("change", [
    lambda raw: raw.update(epoch=9999) or raw["config"].update(epochs=10_000),
    lambda raw: raw.update(test_loss=-1e300),  # a test ELBO of 1e300
    lambda raw: raw.update(train_loss=float("nan")),
    lambda raw: raw["config"].update(hidden=[65536]),
    lambda raw: raw.update(epoch=True),
], ids=["epoch 9999", "ELBO 1e300", "NaN loss", "hidden 65536", "epoch true"])
def test_a_run_json_naming_the_checkpoint_exactly_but_saying_the_impossible_gives_way_to_the_checkpoint(
        trained, tmp_path, change):
    path = saved(trained, tmp_path)
    lie(path, change)
    scan = listing(tmp_path)
    (info,) = scan.runs
    assert (info.epoch, info.epochs, info.config.hidden, info.test_loss, info.train_loss) == (
        trained.epoch, trained.config.epochs, trained.config.hidden, trained.history.test_loss[-1],
        trained.history.train_loss[-1])
    assert not scan.unreadable


def test_a_run_json_nested_past_the_recursion_limit_gives_way_to_the_checkpoint(trained, tmp_path):
    path = saved(trained, tmp_path)
    path.with_name(runs.RUN_FILE).write_text("[" * 100_000 + "]" * 100_000)
    scan = listing(tmp_path)
    assert [(r.name, r.epoch) for r in scan.runs] == [("r", trained.epoch)] and not scan.unreadable


def test_a_checkpoint_padded_to_1_gib_is_refused_unread_naming_its_size_and_the_size_expected(trained, tmp_path):
    path = saved(trained, tmp_path)
    os.truncate(path, 1 << 30)  # sparse: no disk used, but 1 GiB to read
    before = bytes_read()
    scan = listing(tmp_path)
    with pytest.raises(CheckpointError) as refused:
        ckpt.read_snapshot(path)  # what every view opens the run with
    assert bytes_read() - before < READ_BUDGET
    most = checkpoint_bytes(trained.config)[1]
    expected = (f"checkpoint {path} is 1,024.0 MB, far more than the {most / 2**20:,.1f} MB at most that a "
                f"checkpoint of the config in its run.json")
    assert scan.runs == [] and scan.unreadable["r"].startswith(expected) and str(refused.value).startswith(expected)


def test_a_checkpoint_archive_padded_with_a_large_record_is_refused_unread(tmp_path):
    config = Config(hidden=(16,), z_dim=2, epochs=1)
    path = saved(new_state(config), tmp_path)
    path.with_name(runs.RUN_FILE).unlink()  # the file alone says what it should weigh
    with zipfile.ZipFile(path, "a") as archive:  # torch.load reads past a record nobody names
        archive.writestr(zipfile.ZipInfo("archive/padding"), b"\0" * (2 * checkpoint_bytes(config)[1]))
    size, before = path.stat().st_size, bytes_read()
    with pytest.raises(CheckpointError, match=rf"is {size / 2**20:,.1f} MB, far more than the .* MB at most that a "
                                              rf"checkpoint of its config \(hidden 16, z_dim 2\) holds: refused unread"):
        ckpt.read_snapshot(path)
    assert bytes_read() - before < READ_BUDGET


def test_a_folder_named_checkpoint_pt_is_reported_not_left_out_silently(trained, tmp_path):
    saved(trained, tmp_path, "good")
    hollow = tmp_path / "hollow" / runs.CHECKPOINT_FILE
    hollow.mkdir(parents=True)
    scan = runs.scan_runs(tmp_path)
    assert [r.name for r in scan.runs] == ["good"]
    assert scan.unreadable == {"hollow": f"checkpoint.pt is a folder, not a file: {hollow}. Remove it, or move a "
                                    f"checkpoint file there"}


def test_an_old_preview_counting_from_0_reads_as_epochs_done(tmp_path):
    np.savez(tmp_path / runs.PREVIEW_FILE, samples=np.zeros((16, 28, 28)), originals=np.zeros((8, 28, 28)),
             reconstructions=np.zeros((8, 28, 28)), epoch=np.array(99))
    assert runs.read_preview(tmp_path)["epochs_done"] == 100


def test_a_stop_request_is_for_one_process_and_stays_seen(tmp_path):
    flag = runs.StopRequest(tmp_path)
    assert not flag()
    runs.request_stop(tmp_path, pid=os.getpid() + 1)  # another process's request
    assert not flag()
    runs.request_stop(tmp_path, pid=os.getpid())
    assert flag()
    runs.clear_stop(tmp_path)
    assert flag()  # a stop once seen is not taken back


def _preview(**arrays) -> dict:
    """A preview as the trainer writes it, with `arrays` in place of its own."""
    return {"samples": np.zeros((16, 28, 28), np.float32), "originals": np.zeros((8, 28, 28), np.float32),
            "reconstructions": np.zeros((8, 28, 28), np.float32), "epochs_done": np.array(3), **arrays}


@pytest.mark.parametrize("case, arrays", [
    ("string samples", {"samples": np.full((16, 28, 28), "7")}),
    ("20,000 samples", {"samples": np.zeros((20_000, 28, 28), np.float32)}),
    ("64 MB of zeros beside the arrays", {"padding": np.zeros(64 << 20, np.uint8)}),
])
def test_a_preview_of_the_wrong_shape_dtype_or_size_is_no_preview_and_is_not_decompressed(tmp_path, case, arrays):
    import tracemalloc

    np.savez_compressed(tmp_path / runs.PREVIEW_FILE, **_preview(**arrays))
    tracemalloc.start()
    try:
        assert runs.read_preview(tmp_path) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # bytes: judged from the archive's entry sizes and array headers, never expanded
