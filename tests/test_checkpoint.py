import copy
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core import files, folders
from vae_core.folders import CheckpointError, RunNameError
from vae_core.train import new_state

from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def test_round_trip_restores_config_history_epoch_weights_and_optimizer(trained, tmp_path, mnist):
    path = tmp_path / "run" / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    back = ckpt.load_state(path)
    assert back.config == trained.config and back.epoch == trained.epoch
    assert back.history == trained.history
    for (name, a), b in zip(trained.vae.state_dict().items(), back.vae.state_dict().values()):
        assert torch.equal(a, b), name
    assert back.optimizer.state_dict()["state"][0]["exp_avg"].equal(trained.optimizer.state_dict()["state"][0]["exp_avg"])
    z_loc, _ = back.vae.encoder(mnist.test_images[:3])
    assert torch.equal(z_loc, trained.vae.encoder(mnist.test_images[:3])[0])


def test_weights_on_disk_hold_only_cpu_tensors(trained, tmp_path):
    path = tmp_path / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    assert {t.device.type for t in raw["model"].values()} == {"cpu"}


def test_a_failing_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(trained, tmp_path, monkeypatch):
    path = tmp_path / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    before = path.read_bytes()

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_state(trained, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [folders.CHECKPOINT_FILE, folders.RUN_FILE]  # no temp file


def test_a_process_killed_while_saving_leaves_a_readable_checkpoint(trained, tmp_path):
    path = tmp_path / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    saver = ("import sys; from vae_core import checkpoint as c\n"
             "s = c.load_state(sys.argv[1])\n"
             "print('ready', flush=True)\n"
             "while True: c.save_state(s, sys.argv[1])\n")
    proc = subprocess.Popen([sys.executable, "-c", saver, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.7)  # dozens of saves are under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.load_state(path).epoch == trained.epoch
    assert folders.list_runs(tmp_path.parent) is not None


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_truncated_file_is_refused_with_its_name(trained, tmp_path):
    good = tmp_path / "good.pt"
    ckpt.save_state(trained, good)
    bad = _write(tmp_path / "trunc.pt", good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"trunc\.pt is truncated or not a checkpoint"):
        ckpt.load_state(bad)


def test_random_bytes_are_refused(tmp_path):
    bad = _write(tmp_path / "noise.pt", os.urandom(4096))
    with pytest.raises(CheckpointError, match=r"noise\.pt"):
        ckpt.load_state(bad)


def test_pickle_payload_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt holds pickled Python objects \(posix\.system\).*refused"):
        ckpt.load_state(path)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(CheckpointError, match=r"legacy\.pt is truncated or not a checkpoint file.*nothing was loaded"):
        ckpt.load_state(legacy)
    assert not marker.exists()


def test_wrong_shape_weights_are_refused(trained, tmp_path):
    path = tmp_path / "shape.pt"
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    raw["model"]["decoder.img.weight"] = torch.zeros(10, 10)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"shape\.pt does not fit the model.*decoder\.img\.weight"):
        ckpt.load_state(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: raw.pop("history"), "lacks history"),
    (lambda raw: raw.update(format="other"), "is not a vae_core.checkpoint/1 file"),
    (lambda raw: raw["config"].update(z_dim=-1), "invalid config: z_dim"),
    (lambda raw: raw.update(epoch=9), "history of 3 epochs but claims 9"),
    (lambda raw: raw["rng"].pop("torch"), "invalid RNG state"),
    (lambda raw: raw["model"].update({"decoder.img.weight": raw["model"]["decoder.img.weight"].double()}),
     r"decoder\.img\.weight has dtype torch\.float64, expected torch\.float32"),
    (lambda raw: raw["model"]["encoder.hidden.0.weight"].__setitem__((0, 0), float("nan")),
     r"encoder\.hidden\.0\.weight: weights are not finite"),
    (lambda raw: raw["history"]["train_loss"].__setitem__(0, "191.0"), r"train_loss holds '191\.0', not a number"),
    (lambda raw: raw["history"]["test_epochs"].__setitem__(0, 0.5), r"test_epochs holds 0\.5, not a whole number"),
    (lambda raw: raw["history"]["test_kl"].pop(), r"the ELBO's parts are recorded for 3 epochs but have \[3, 3, 3, 2\]"),
    (lambda raw: raw["history"]["split_epochs"].__setitem__(0, "0"), r"split_epochs holds '0', not a whole number"),
])
def test_inconsistent_contents_are_refused(trained, tmp_path, mutate, message):
    path = tmp_path / "odd.pt"
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    mutate(raw)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load_state(path)


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*python -m vae_core train --run ghost"):
        ckpt.load_state(tmp_path / "ghost" / folders.CHECKPOINT_FILE)


@pytest.mark.parametrize("name", ["demo", "run-1", "a.b_c", "X" * 64, "tutorial"])
def test_valid_run_names_are_accepted(name):
    assert folders.run_dir("checkpoints", name) == Path("checkpoints") / name


@pytest.mark.parametrize("name", ["", "..", ".", "../x", "a/b", "a\\b", "/abs", ".hidden", "a..b",
                                  "x" * 65, "sp ace", "nul\0", "é"])
def test_run_names_that_could_escape_or_confuse_are_refused(name):
    with pytest.raises(RunNameError, match="is not allowed"):
        folders.run_dir("checkpoints", name)


def test_list_runs_is_newest_first_and_skips_unreadable_runs(trained, tmp_path):
    for name in ("old", "new"):
        ckpt.save_state(trained, folders.checkpoint_path(tmp_path, name))
        time.sleep(0.02)
    (tmp_path / "broken").mkdir()
    _write(tmp_path / "broken" / folders.CHECKPOINT_FILE, b"junk")
    runs = folders.list_runs(tmp_path)
    assert [r.name for r in runs] == ["new", "old"]
    assert runs[0].epoch == 3 and runs[0].test_loss == trained.history.test_loss[-1]


def test_file_digest_changes_with_content(trained, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    ckpt.save_state(trained, a)
    state = new_state(tiny_config(epochs=1))
    ckpt.save_state(state, b)
    assert folders.file_digest(a) != folders.file_digest(b)
    assert folders.file_digest(a) == folders.file_digest(a)


def test_a_snapshot_loads_the_version_it_read_even_after_the_file_is_replaced(trained, tmp_path):
    path = tmp_path / "run" / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    data, digest = ckpt.read_snapshot(path)
    ckpt.save_state(new_state(tiny_config(epochs=1)), path)  # a training run replaces the file
    assert digest != folders.file_digest(path)
    assert ckpt.load_state(path, data).epoch == trained.epoch


def test_a_snapshot_of_a_damaged_file_is_refused_like_the_file(tmp_path):
    path = tmp_path / "run" / folders.CHECKPOINT_FILE
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint file"):
        ckpt.read_snapshot(path)  # before its bytes are read: only its archive's directory is looked at


def test_a_config_absurd_for_memory_is_refused_before_anything_is_allocated(trained, tmp_path):
    path = tmp_path / "huge" / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    raw["config"].update(hidden=[65536], z_dim=4096)  # within the ranges, about 14 GiB to build
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"does not fit the model its config describes.*has shape"):
        ckpt.load_state(path)


def test_one_unreadable_run_is_reported_with_its_reason_and_never_hides_the_others(trained, tmp_path):
    ckpt.save_state(trained, folders.checkpoint_path(tmp_path, "good"))
    bad = folders.checkpoint_path(tmp_path, "bad")
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()  # a run folder before its first checkpoint: no run yet
    runs, unreadable = folders.scan_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert list(unreadable) == ["bad"] and "truncated or not a checkpoint file" in unreadable["bad"]


def _failing_save(trained, path, monkeypatch, exc) -> str:
    """Save over `path` with torch.save failing midway with `exc`; the SaveError's words."""
    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise exc

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(files.SaveError) as caught:
        ckpt.save_state(trained, path)
    return str(caught.value.strerror)


def test_a_full_disk_is_named_and_the_previous_checkpoint_kept(trained, tmp_path, monkeypatch):
    import errno

    path = tmp_path / "run" / folders.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    before = path.read_bytes()
    message = _failing_save(trained, path, monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert message == f"no space left on device while saving {path}"
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [folders.CHECKPOINT_FILE, folders.RUN_FILE]  # no temp file


def test_torchs_own_words_for_a_full_disk_are_recognised(trained, tmp_path, monkeypatch):
    path = tmp_path / "run" / folders.CHECKPOINT_FILE
    monkeypatch.setattr(files, "_free_bytes", lambda path: 0)  # the disk is full
    message = _failing_save(trained, path, monkeypatch,
                            RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"))
    assert message.startswith("no space left on device while saving")


def test_a_read_only_folder_is_named(trained, tmp_path, monkeypatch):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(files.SaveError, match="the folder is read-only or not writable"):
        ckpt.save_state(trained, tmp_path / "run" / folders.CHECKPOINT_FILE)


def test_image_sizes_are_mnists_not_a_free_choice(trained, tmp_path):
    path = tmp_path / "big.pt"
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    raw["config"].update(image_height=4096, image_width=4096)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"image_height must be 28, got 4096: MNIST's images are 28 x 28"):
        ckpt.load_state(path)


def test_an_archive_that_would_expand_far_beyond_its_size_is_refused_unread(trained, tmp_path):
    import zipfile

    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (64 << 20))  # 64 MB of zeros in a few KB
    with pytest.raises(CheckpointError, match=r"bomb\.pt would expand to 64 MB from 0\.\d MB on disk"):
        ckpt.load_state(path)
    ckpt.save_state(trained, tmp_path / "real.pt")
    assert ckpt.load_state(tmp_path / "real.pt").epoch == trained.epoch  # a real one expands to its own size


def test_a_checkpoint_saved_before_the_elbos_parts_were_kept_loads_without_them(trained, tmp_path):
    path = tmp_path / "older.pt"
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    for name in ("split_epochs", "train_reconstruction", "train_kl", "test_reconstruction", "test_kl"):
        del raw["history"][name]
    torch.save(raw, path)
    back = ckpt.load_state(path)
    assert back.history.split_epochs == [] and back.history.test_loss == trained.history.test_loss


# ---------------------------------------------------------------- run.json: runs listed without loading weights


def _counting_loads(monkeypatch) -> list:
    """Record every checkpoint load_state reads (the real function still does the work)."""
    calls, real = [], ckpt.load_state
    monkeypatch.setattr(ckpt, "load_state", lambda path, data=None: calls.append(path) or real(path, data))
    return calls


def test_runs_are_listed_from_run_json_without_loading_a_checkpoint(trained, tmp_path, monkeypatch):
    path = folders.checkpoint_path(tmp_path, "fast")
    ckpt.save_state(trained, path)
    summary = json.loads((path.parent / folders.RUN_FILE).read_text())
    assert summary["epoch"] == 3 and summary["test_loss"] == trained.history.test_loss[-1]
    assert summary["checkpoint"]["sha256"] == folders.file_digest(path)
    loads = _counting_loads(monkeypatch)
    (info,) = folders.list_runs(tmp_path)
    assert (info.name, info.epoch, info.epochs, info.test_loss) == ("fast", 3, trained.config.epochs,
                                                                  trained.history.test_loss[-1])
    assert loads == []
    os.utime(path, ns=(1, 1))  # a fresh clone: the same bytes with another mtime; the hash vouches for them
    assert folders.list_runs(tmp_path)[0].epoch == 3 and loads == []


@pytest.mark.parametrize("damage", ["replaced", "garbage", "wrong types"])
def test_a_run_json_that_is_not_this_checkpoints_is_ignored(trained, tmp_path, monkeypatch, damage):
    path = folders.checkpoint_path(tmp_path, "r")
    ckpt.save_state(trained, path)
    summary = path.parent / folders.RUN_FILE
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
    (info,) = folders.list_runs(tmp_path)
    assert info.epoch == (2 if damage == "replaced" else 3) and len(loads) == 1  # the checkpoint itself said


@pytest.mark.parametrize("listed_from", ["run.json", "the checkpoint"])
def test_a_listed_run_names_the_sha256_its_caches_are_keyed_by(trained, tmp_path, listed_from):
    path = folders.checkpoint_path(tmp_path, "r")
    ckpt.save_state(trained, path)
    if listed_from == "the checkpoint":
        (path.parent / folders.RUN_FILE).unlink()
    (info,) = folders.list_runs(tmp_path)
    assert info.digest == folders.file_digest(path)


def test_arrays_cached_together_come_back_as_stored_and_a_damaged_set_is_deleted(tmp_path):
    path, digest = tmp_path / folders.CHECKPOINT_FILE, "ab" * 32
    arrays = {"image": np.arange(12, dtype=np.uint8).reshape(3, 4), "name": np.asarray("tsne-p30")}
    folders.store_cached_set(path, "set", digest, arrays)
    back = folders.load_cached_set(path, "set", digest)
    assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    file = folders.cache_file(path, "set", digest, ".npz")
    file.write_bytes(file.read_bytes()[:40])  # cut short, as by a full disk outside atomic_write
    assert folders.load_cached_set(path, "set", digest) is None and not file.exists()


def test_a_run_saved_with_a_one_dimensional_code_is_refused_with_why_it_cannot_be_shown(tmp_path):
    config = copy.copy(tiny_config(z_dim=2, hidden=(16,)))
    object.__setattr__(config, "z_dim", 1)  # as a version that allowed z_dim 1 saved it: weights and all fit
    path = folders.checkpoint_path(tmp_path, "line")
    ckpt.save_state(new_state(config), path)
    with pytest.raises(CheckpointError, match=r"line/checkpoint\.pt cannot be shown or resumed: it has an invalid "
                                              r"config: z_dim must be between 2 and 4096, got 1 \(the views map "
                                              r"codes in two dimensions: use at least 2\)"):
        ckpt.load_state(path)
