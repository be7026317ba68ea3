import copy
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core import files, runs
from vae_core.runs import CheckpointError
from vae_core.train import new_state

from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def test_round_trip_restores_config_history_epoch_weights_and_optimizer(trained, tmp_path, mnist):
    path = tmp_path / "run" / runs.CHECKPOINT_FILE
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
    path = tmp_path / runs.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    assert {t.device.type for t in raw["model"].values()} == {"cpu"}


def test_a_failing_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(trained, tmp_path, monkeypatch):
    path = tmp_path / runs.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    before = path.read_bytes()

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_state(trained, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [runs.CHECKPOINT_FILE, runs.RUN_FILE]  # no temp file


def test_a_process_killed_while_saving_leaves_a_readable_checkpoint(trained, tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
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
    info = runs.read_summary(path) or ckpt.index_run(path)  # a run.json killed midway is not believed
    assert (info.epoch, info.digest) == (trained.epoch, runs.digest(path))


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
        ckpt.load_state(tmp_path / "ghost" / runs.CHECKPOINT_FILE)


def test_a_snapshot_is_keyed_by_the_digest_of_the_file_it_read_and_another_checkpoint_by_another(trained, tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    ckpt.save_state(trained, a)
    ckpt.save_state(new_state(tiny_config(epochs=1)), b)
    assert ckpt.read_snapshot(a)[1] == runs.digest(a)  # the bytes read and the file on disk: one hasher
    assert runs.digest(a) != runs.digest(b)


def test_a_snapshot_loads_the_version_it_read_even_after_the_file_is_replaced(trained, tmp_path):
    path = tmp_path / "run" / runs.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    data, digest = ckpt.read_snapshot(path)
    ckpt.save_state(new_state(tiny_config(epochs=1)), path)  # a training run replaces the file
    assert digest != runs.digest(path)
    assert ckpt.load_state(path, data).epoch == trained.epoch


def test_a_snapshot_of_a_damaged_file_is_refused_like_the_file(tmp_path):
    path = tmp_path / "run" / runs.CHECKPOINT_FILE
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="truncated or not a checkpoint file"):
        ckpt.read_snapshot(path)  # before its bytes are read: only its archive's directory is looked at


def test_a_config_absurd_for_memory_is_refused_before_anything_is_allocated(trained, tmp_path):
    path = tmp_path / "huge" / runs.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    raw = torch.load(path, weights_only=True)
    raw["config"].update(hidden=[65536], z_dim=4096)  # within the ranges, about 14 GiB to build
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"does not fit the model its config describes.*has shape"):
        ckpt.load_state(path)


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

    path = tmp_path / "run" / runs.CHECKPOINT_FILE
    ckpt.save_state(trained, path)
    before = path.read_bytes()
    message = _failing_save(trained, path, monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert message == f"no space left on device while saving {path}"
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [runs.CHECKPOINT_FILE, runs.RUN_FILE]  # no temp file


def test_torchs_own_words_for_a_full_disk_are_recognised(trained, tmp_path, monkeypatch):
    path = tmp_path / "run" / runs.CHECKPOINT_FILE
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
        ckpt.save_state(trained, tmp_path / "run" / runs.CHECKPOINT_FILE)


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


def test_a_run_saved_with_a_one_dimensional_code_is_refused_with_why_it_cannot_be_shown(tmp_path):
    config = copy.copy(tiny_config(z_dim=2, hidden=(16,)))
    object.__setattr__(config, "z_dim", 1)  # as a version that allowed z_dim 1 saved it: weights and all fit
    path = runs.checkpoint_path(tmp_path, "line")
    ckpt.save_state(new_state(config), path)
    with pytest.raises(CheckpointError, match=r"line/checkpoint\.pt cannot be shown or resumed: it has an invalid "
                                              r"config: z_dim must be between 2 and 4096, got 1 \(the views map "
                                              r"codes in two dimensions: use at least 2\)"):
        ckpt.load_state(path)
