"""A sweep: a grid of Config values, one ordinary run per grid point, named after its values. No torch, no Ray.

    from vae_core import sweep
    grid = sweep.parse_grid(["beta=0.5,1,2,4", "z_dim=2,10"])     # {"beta": [0.5, 1.0, 2.0, 4.0], ...}
    points = sweep.expand("study", grid)                # [Point("study-beta0.5-z2", {"beta": 0.5, "z_dim": 2}), ...]
    sweep.check_new(root, "study", points, confirmed=False)   # SweepRefused: too many runs, or a name taken
    sweep.write_file(root, "study", grid, points, base={"epochs": 5})   # checkpoints/study.sweep.json
    sweep.progress(root, sweep.read_file(root, "study"))      # each run's state, epoch and last test ELBO
    sweep.stop_all(root, sweep.read_file(root, "study"))      # a stop request to each run that trains

A grid's values are read as the Train form and the CLI read a field (vae_core.config.parse_value) and checked
by the Config, so a sweep refuses what a single run would, in the same words. The runs are ordinary run folders
under the checkpoints root: every view, Stop, Resume and Compare work on each. The sweep file beside them names
the grid, the settings shared by all its runs and the runs themselves. The runner is vae_core.sweep_ray.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from vae_core import runs
from vae_core.config import FIELDS, Config, ConfigError, format_value, parse_value
from vae_core.errors import UsageError

# More runs than this in one grid ask for a confirmation (--yes, or the form's tick): a typo in a grid
# multiplies, and each run trains for minutes.
CONFIRM_ABOVE = 64
SWEEP_SUFFIX = ".sweep.json"
# Short names of the fields most often swept, in run names (study-beta2-z10); the others keep their own.
SHORT = {"z_dim": "z", "batch_size": "batch", "free_bits": "fb", "test_every": "test", "likelihood": "",
         "activation": ""}
# Fields a grid may not sweep: they name or place the run rather than change what it learns.
NOT_SWEPT = ("image_height", "image_width", "device")


class SweepRefused(UsageError):
    """Why a sweep may not start, in the user's words."""


@dataclass(frozen=True)
class Point:
    run: str  # the run's name: the sweep's name and the point's values
    values: dict[str, Any]  # the swept fields' values at this point


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`field=v1,v2,...` specs as {field: values}; SweepRefused or ConfigError (naming the field) when wrong.
    A field with several numbers per value (hidden layers) separates its values with '/': hidden=400/200,200."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not text.strip():
            raise SweepRefused(f"--grid {spec!r} is not FIELD=VALUES: write it as beta=0.5,1,2 (several values, "
                               f"comma-separated)")
        if name not in FIELDS or name in NOT_SWEPT or not FIELDS[name].cli:
            allowed = ", ".join(n for n, s in FIELDS.items() if s.cli and n not in NOT_SWEPT)
            raise SweepRefused(f"--grid {name!r} is not a setting a sweep can vary; these are: {allowed}")
        if name in grid:
            raise SweepRefused(f"--grid {name} is given twice: list all its values in one --grid {name}=...")
        parts = text.split("/" if FIELDS[name].kind is tuple else ",")
        values = [parse_value(name, part) for part in parts]
        for value in values:
            Config(**{name: value})  # ConfigError names the field and what it allows
        if len(set(map(repr, values))) != len(values):
            raise SweepRefused(f"--grid {name} lists a value twice: {text}")
        grid[name] = values
    if not grid:
        raise SweepRefused("a sweep needs at least one --grid FIELD=VALUES")
    return grid


def _label(name: str, value: Any) -> str:
    """A value as it reads in a run name: beta2, z10, lr0.0003, 200x200, binarized."""
    text = format_value(name, value).replace(",", "x")
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return SHORT.get(name, name.replace("_", "")) + text


def expand(name: str, grid: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every point of the grid, in the order the grid lists its fields and values, each named after its values."""
    runs.validate_run_name(name)
    fields = list(grid)
    points = []
    for combination in itertools.product(*(grid[f] for f in fields)):
        values = dict(zip(fields, combination))
        run = "-".join([name, *(_label(f, v) for f, v in values.items())])
        try:
            runs.validate_run_name(run)
        except runs.RunNameError:
            raise SweepRefused(f"the run name {run!r} of one grid point is not allowed (at most 64 letters, digits, "
                               f"'-', '_' or '.'): choose a shorter sweep name than {name!r}") from None
        points.append(Point(run, values))
    return points


def file_path(root: str | Path, name: str) -> Path:
    """The sweep file of sweep `name`: beside its runs, under the checkpoints root."""
    return Path(root) / f"{runs.validate_run_name(name)}{SWEEP_SUFFIX}"


def check_new(root: str | Path, name: str, points: Sequence[Point], base: Mapping[str, Any] | None = None,
              confirmed: bool = False) -> None:
    """SweepRefused unless the sweep may start: its runs' settings hold, its runs and its file are new names, and
    a grid of more than CONFIRM_ABOVE runs is confirmed. Nothing is written."""
    for point in points:
        try:
            Config(**{**(base or {}), **point.values})
        except ConfigError as exc:  # a grid value that does not go with the shared settings
            raise SweepRefused(f"run {point.run}: {exc}") from None
    if len(points) > CONFIRM_ABOVE and not confirmed:
        raise SweepRefused(f"this grid makes {len(points)} runs, more than {CONFIRM_ABOVE}: pass --yes to train them "
                           f"all, or fewer values")
    if file_path(root, name).exists():
        raise SweepRefused(f"a sweep named {name} exists already ({file_path(root, name)}): choose another name")
    taken = [p.run for p in points if runs.run_dir(root, p.run).exists()]
    if taken:
        shown = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        raise SweepRefused(f"{len(taken)} of this sweep's run names exist already ({shown}): choose another sweep "
                           f"name; nothing was started")


def write_file(root: str | Path, name: str, grid: Mapping[str, Sequence[Any]], points: Sequence[Point],
               base: Mapping[str, Any]) -> Path:
    """Write the sweep file (atomically): its grid, the settings all its runs share, its runs and their values."""
    path = file_path(root, name)
    Path(root).mkdir(parents=True, exist_ok=True)
    runs.write_json(path, {"name": name, "created": time.time(),
                           "grid": {f: [format_value(f, v) for v in vs] for f, vs in grid.items()},
                           "base": {f: format_value(f, v) for f, v in base.items()},
                           "runs": [{"run": p.run, "values": {f: format_value(f, v) for f, v in p.values.items()}}
                                    for p in points]})
    return path


def read_file(root: str | Path, name: str) -> dict[str, Any]:
    """The sweep file of `name`, its values parsed back; UsageError if there is none or it cannot be read."""
    path = file_path(root, name)
    raw = runs.read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list):
        sweeps = ", ".join(list_sweeps(root)) or "none"
        raise UsageError(f"no sweep {name!r}: {path} does not exist or cannot be read (sweeps: {sweeps})")
    return {**raw, "grid": {f: [parse_value(f, v) for v in vs] for f, vs in raw["grid"].items()},
            "base": {f: parse_value(f, v) for f, v in raw["base"].items()},
            "points": [Point(r["run"], {f: parse_value(f, v) for f, v in r["values"].items()}) for r in raw["runs"]]}


def stopped(root: str | Path, name: str) -> bool:
    """True once Stop all was asked for the sweep: runs not started yet do not start."""
    raw = runs.read_json(file_path(root, name))
    return isinstance(raw, dict) and bool(raw.get("stopped"))


def list_sweeps(root: str | Path) -> list[str]:
    """The sweeps under `root`, newest first."""
    files = sorted(Path(root).glob(f"*{SWEEP_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [f.name[:-len(SWEEP_SUFFIX)] for f in files]


def config_of(sweep: Mapping[str, Any], point: Point) -> Config:
    """The Config a point's run trains with: the sweep's shared settings and the point's values."""
    return Config(**{**sweep["base"], **point.values})


@dataclass(frozen=True)
class RunProgress:
    run: str
    state: str  # waiting (its turn to come), not started (Stop all came first), starting, running, ..., failed
    epoch: int  # epochs done
    epochs: int  # the target
    test_elbo: float | None  # the last test ELBO, nats per image


def progress(root: str | Path, sweep: Mapping[str, Any]) -> list[RunProgress]:
    """Each run's state, epochs done and last test ELBO, from its status and history files (no torch)."""
    rows = []
    halted = stopped(root, sweep["name"])
    for point in sweep["points"]:
        folder = runs.run_dir(root, point.run)
        status = runs.read_status(folder) or {}
        history = runs.read_history(folder) or {}
        state = status.get("state", "not started" if halted else "waiting")
        if state in ("starting", "running") and runs.stop_requested(folder, status.get("pid")):
            state = "stopping"
        tests = history.get("test_loss") or []
        rows.append(RunProgress(point.run, state, int(status.get("epoch") or 0),
                                int(status.get("epochs") or config_of(sweep, point).epochs),
                                -tests[-1] if tests else None))
    return rows


def table(rows: Sequence[RunProgress]) -> str:
    """The progress rows as a text table: run, state, epochs, test ELBO."""
    width = max([len(r.run) for r in rows] + [3])
    lines = [f"{'run':{width}}  {'state':11}  {'epoch':>9}  {'test ELBO':>9}"]
    for r in rows:
        elbo = f"{r.test_elbo:9.2f}" if r.test_elbo is not None else f"{'':9}"
        lines.append(f"{r.run:{width}}  {r.state:11}  {f'{r.epoch}/{r.epochs}':>9}  {elbo}")
    return "\n".join(lines)


def stop_all(root: str | Path, sweep: Mapping[str, Any]) -> list[str]:
    """Ask every run of the sweep that is starting or training to stop after its current step, and the runs not
    started yet never to start (the sweep file says so); the runs asked."""
    path = file_path(root, sweep["name"])
    raw = runs.read_json(path)
    if isinstance(raw, dict):
        runs.write_json(path, {**raw, "stopped": time.time()})
    asked = []
    for point in sweep["points"]:
        folder = runs.run_dir(root, point.run)
        status = runs.read_status(folder) or {}
        if status.get("state") in ("starting", "running") and isinstance(status.get("pid"), int):
            runs.request_stop(folder, status["pid"])
            asked.append(point.run)
    return asked
