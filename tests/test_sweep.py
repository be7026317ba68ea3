"""Sweeps: a grid's runs named and checked before anything starts (no Ray), then trained on a real local Ray of
2 CPUs: a 2 x 2 grid finishes, Stop all stops every run, and a killed Ray worker's run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_run import cli
from vae_core import checkpoint as ckpt
from vae_core import runs, sweep
from vae_core.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PATIENCE_S = 300  # a machine busy with the rest of the suite: events are awaited, never timed


def test_a_grid_is_every_combination_named_after_its_values():
    grid = sweep.parse_grid(["beta=0.5,2", "z-dim=2,10", "hidden=400/200,200"])
    assert grid == {"beta": [0.5, 2.0], "z_dim": [2, 10], "hidden": [(400,), (200, 200)]}
    points = sweep.expand("study", grid)
    assert [p.run for p in points][:3] == ["study-beta0.5-z2-hidden400", "study-beta0.5-z2-hidden200x200",
                                           "study-beta0.5-z10-hidden400"]
    assert len(points) == 8 and points[-1].values == {"beta": 2.0, "z_dim": 10, "hidden": (200, 200)}


@pytest.mark.parametrize("spec, words", [
    ("beta", "is not FIELD=VALUES"),
    ("device=cpu,cuda", "'device' is not a setting a sweep can vary"),
    ("beta=1,1", "lists a value twice"),
])
def test_a_grid_that_cannot_be_swept_says_why(spec, words):
    with pytest.raises(sweep.SweepRefused, match=words):
        sweep.parse_grid([spec])


def test_a_grid_value_out_of_range_is_refused_in_the_configs_words():
    with pytest.raises(ConfigError, match="z_dim must be between 2 and 4096, got 1"):
        sweep.parse_grid(["z_dim=1,10"])


def test_a_sweep_whose_run_names_exist_is_refused_before_anything_starts(tmp_path):
    (tmp_path / "study-beta2").mkdir()
    ran = cli("sweep", "study", "--grid", "beta=0.5,2", "--epochs", "1", checkpoints=tmp_path)
    assert ran.returncode == 2
    assert "1 of this sweep's run names exist already (study-beta2)" in ran.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study-beta2"]  # no sweep file, no run


def test_a_grid_of_more_than_64_runs_asks_for_yes(tmp_path):
    ran = cli("sweep", "big", "--grid", "seed=" + ",".join(map(str, range(65))), checkpoints=tmp_path)
    assert ran.returncode == 2 and "this grid makes 65 runs, more than 64: pass --yes" in ran.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_address_is_one_line_and_leaves_nothing(tmp_path):
    ran = cli("sweep", "far", "--grid", "beta=1,2", "--address", "127.0.0.1:9", checkpoints=tmp_path)
    assert ran.returncode == 2
    assert ran.stderr.strip().count("\n") == 0 and "cannot reach a Ray cluster at 127.0.0.1:9" in ran.stderr
    assert "Traceback" not in ran.stderr and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- on a local Ray of 2 CPUs


def _sweep(root: Path, name: str, *args: str) -> subprocess.Popen:
    """`python -m vae_core sweep` in a process of its own (Ray's driver), on a local Ray of 2 CPUs."""
    command = [sys.executable, "-m", "vae_core", "sweep", name, "--checkpoints", str(root), "--cpus", "2", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "VAE_NO_MAP": "1"})


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_2x2_sweep_trains_its_four_runs_on_ray_as_ordinary_runs(tmp_path):
    process = _sweep(tmp_path, "grid", "--grid", "beta=0.5,2", "--grid", "z_dim=2,10", "--epochs", "1",
                     "--limit", "512", "--test-every", "1")
    out, err = process.communicate(timeout=PATIENCE_S)
    assert process.returncode == 0, err
    study = sweep.read_file(tmp_path, "grid")
    assert [p.run for p in study["points"]] == ["grid-beta0.5-z2", "grid-beta0.5-z10", "grid-beta2-z2", "grid-beta2-z10"]
    for point in study["points"]:
        assert f"{point.run}: finished" in out
        state = ckpt.load_state(runs.checkpoint_path(tmp_path, point.run))
        assert (state.epoch, state.config.beta, state.config.z_dim, state.config.limit) == (
            1, point.values["beta"], point.values["z_dim"], 512)
    assert [r.state for r in sweep.progress(tmp_path, study)] == ["finished"] * 4
    assert "grid-beta2-z10" in out.split("\n\n")[-2]  # the last progress table, before the ends


@pytest.mark.slow
def test_stop_all_stops_the_training_runs_and_the_waiting_ones_never_start(tmp_path):
    # 2 CPUs and 2 per run: one run trains at a time, the others wait in Ray's queue.
    process = _sweep(tmp_path, "halt", "--grid", "seed=1,2,3", "--epochs", "50", "--limit", "2048",
                     "--cpus-per-run", "2")
    first = tmp_path / "halt-seed1"
    _until(lambda: (runs.read_status(first) or {}).get("state") == "running", "the first run to train")
    assert cli("sweep", "halt", "--stop", checkpoints=tmp_path).returncode == 0
    out, err = process.communicate(timeout=PATIENCE_S)
    assert process.returncode == 130, err
    assert all(f"halt-seed{s}: stopped" in out for s in (1, 2, 3))
    assert runs.read_status(first)["state"] == "stopped"
    assert not (tmp_path / "halt-seed2").exists() and not (tmp_path / "halt-seed3").exists()
    states = [r.state for r in sweep.progress(tmp_path, sweep.read_file(tmp_path, "halt"))]
    assert states == ["stopped", "not started", "not started"]


@pytest.mark.slow
def test_a_killed_ray_worker_loses_at_most_its_epoch_and_the_run_resumes(tmp_path):
    process = _sweep(tmp_path, "crash", "--grid", "seed=4", "--epochs", "4", "--limit", "2048", "--test-every", "1")
    folder = tmp_path / "crash-seed4"
    _until(lambda: (runs.read_status(folder) or {}).get("epoch", 0) >= 1, "an epoch to be saved")
    trainer = runs.read_status(folder)["pid"]
    worker = int(Path(f"/proc/{trainer}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent: Ray's worker
    os.kill(worker, signal.SIGKILL)
    _until(lambda: not Path(f"/proc/{trainer}").exists() or "Z" in Path(f"/proc/{trainer}/stat").read_text().split()[2],
           "the trainer to die with its worker")
    out, err = process.communicate(timeout=PATIENCE_S)
    assert process.returncode == 0, err
    assert "crash-seed4: finished" in out
    state = ckpt.load_state(runs.checkpoint_path(tmp_path, "crash-seed4"))
    assert state.epoch == 4 and len(state.history.train_loss) == 4
    log = (folder / runs.LOG_FILE).read_text()
    assert log.count("[epoch 4 of 4]  average training loss") == 1  # trained once to its end, resumed after the kill
    assert runs.read_status(folder)["pid"] != trainer
    assert json.loads((tmp_path / "crash.sweep.json").read_text())["runs"][0]["run"] == "crash-seed4"
