"""Listing runs when run.json or checkpoint.pt is not what it should be: a lie, a trap, a padded file, a folder."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core import folders
from vae_core.config import Config
from vae_core.folders import CheckpointError
from vae_core.model import VAE
from vae_core.train import new_state

# Bytes a refused 1 GiB checkpoint may cost to judge: its archive's directory and record, never the file.
READ_BUDGET = 16 << 20


def bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux's rchar)."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def saved(trained, root: Path, name: str = "r") -> Path:
    path = folders.checkpoint_path(root, name)
    ckpt.save_state(trained, path)
    return path


def lie(path: Path, change) -> None:
    """Rewrite run.json through `change`, keeping the size, mtime and SHA-256 it names: those of the checkpoint."""
    summary = path.with_name(folders.RUN_FILE)
    raw = json.loads(summary.read_text())
    change(raw)
    summary.write_text(json.dumps(raw))


@pytest.mark.parametrize("config", [Config(), Config(hidden=(200, 200), activation="tanh", z_dim=2),
                                    Config(likelihood="gaussian", hidden=(64, 32, 16))], ids=str)
def test_the_parameters_counted_without_torch_are_those_of_the_model_built(config):
    with torch.device("meta"):
        built = sum(p.numel() for p in VAE(config).parameters())
    assert folders.parameter_count(config) == built


def test_checkpoints_before_and_after_training_take_the_bytes_their_config_implies(trained, tmp_path):
    untrained = new_state(trained.config)  # no Adam moments yet: the fewest bytes
    for name, state in (("untrained", untrained), ("trained", trained)):
        path = saved(state, tmp_path, name)
        least, most = folders.checkpoint_bytes(state.config)
        assert least <= path.stat().st_size <= most, name


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
    runs, unreadable = folders.scan_runs(tmp_path)
    (info,) = runs
    assert (info.epoch, info.epochs, info.config.hidden, info.test_loss, info.train_loss) == (
        trained.epoch, trained.config.epochs, trained.config.hidden, trained.history.test_loss[-1],
        trained.history.train_loss[-1])
    assert not unreadable


def test_a_run_json_nested_past_the_recursion_limit_gives_way_to_the_checkpoint(trained, tmp_path):
    path = saved(trained, tmp_path)
    path.with_name(folders.RUN_FILE).write_text("[" * 100_000 + "]" * 100_000)
    runs, unreadable = folders.scan_runs(tmp_path)
    assert [(r.name, r.epoch) for r in runs] == [("r", trained.epoch)] and not unreadable


def test_a_checkpoint_padded_to_1_gib_is_refused_unread_naming_its_size_and_the_size_expected(trained, tmp_path):
    path = saved(trained, tmp_path)
    os.truncate(path, 1 << 30)  # sparse: no disk used, but 1 GiB to read
    before = bytes_read()
    runs, unreadable = folders.scan_runs(tmp_path)
    with pytest.raises(CheckpointError) as refused:
        ckpt.read_snapshot(path)  # what every view opens the run with
    assert bytes_read() - before < READ_BUDGET
    most = folders.checkpoint_bytes(trained.config)[1]
    expected = (f"checkpoint {path} is 1,024.0 MB, far more than the {most / 2**20:,.1f} MB at most that a "
                f"checkpoint of the config in its run.json")
    assert runs == [] and unreadable["r"].startswith(expected) and str(refused.value).startswith(expected)


def test_a_checkpoint_archive_padded_with_a_large_record_is_refused_unread(tmp_path):
    config = Config(hidden=(16,), z_dim=2, epochs=1)
    path = saved(new_state(config), tmp_path)
    path.with_name(folders.RUN_FILE).unlink()  # the file alone says what it should weigh
    with zipfile.ZipFile(path, "a") as archive:  # torch.load reads past a record nobody names
        archive.writestr(zipfile.ZipInfo("archive/padding"), b"\0" * (2 * folders.checkpoint_bytes(config)[1]))
    size, before = path.stat().st_size, bytes_read()
    with pytest.raises(CheckpointError, match=rf"is {size / 2**20:,.1f} MB, far more than the .* MB at most that a "
                                              rf"checkpoint of its config \(hidden 16, z_dim 2\) holds: refused unread"):
        ckpt.read_snapshot(path)
    assert bytes_read() - before < READ_BUDGET


def test_a_folder_named_checkpoint_pt_is_reported_not_left_out_silently(trained, tmp_path):
    saved(trained, tmp_path, "good")
    hollow = tmp_path / "hollow" / folders.CHECKPOINT_FILE
    hollow.mkdir(parents=True)
    runs, unreadable = folders.scan_runs(tmp_path)
    assert [r.name for r in runs] == ["good"]
    assert unreadable == {"hollow": f"checkpoint.pt is a folder, not a file: {hollow}. Remove it, or move a "
                                    f"checkpoint file there"}
