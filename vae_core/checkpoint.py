"""Atomic checkpoint writes and safe, validated reads (run folders and their index: vae_core.runs).

    from vae_core.checkpoint import save_state, load_state, index_runs
    save_state(state, folder / CHECKPOINT_FILE)       # temp file + fsync + os.replace; run.json beside it
    state = load_state(folder / CHECKPOINT_FILE)      # torch.load(weights_only=True), on the CPU
    scan = index_runs(runs.scan_runs(root))           # runs saved without a run.json: loaded once, given one

A checkpoint is one file holding the config, history, epoch, RNG states and
the model and optimizer weights (on the CPU, so it loads anywhere). It is
never unpickled beyond plain tensors and containers, and every way it can be
bad (truncated, random bytes, a pickle payload, wrong shapes, missing
fields) raises a CheckpointError naming the file and the problem.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from vae_core.config import Config
from vae_core.files import atomic_write
from vae_core.history import History
from vae_core.model import VAE
from vae_core.runs import (CheckpointError, RunInfo, Scan, digest, first_line, newest_first, summary_config,
                           write_summary)
from vae_core.sizes import checkpoint_bytes
from vae_core.train import TrainState, make_optimizer

FORMAT = "vae_core.checkpoint/1"


def save_state(state: TrainState, path: str | Path) -> None:
    """Write `state` to `path` atomically: a reader sees the old file or the new one, never half; then the
    run.json beside it that names it, whatever the file is called (moved into place, it is listed at once)."""
    payload = {
        "format": FORMAT,
        "config": state.config.to_dict(),
        "epoch": state.epoch,
        "history": state.history.to_dict(),
        "model": {k: v.detach().cpu() for k, v in state.vae.state_dict().items()},
        "optimizer": _to_cpu(state.optimizer.state_dict()),
        "rng": {k: v.cpu() for k, v in state.rng.items()},
    }
    if state.threads is not None:
        payload["threads"] = state.threads
    atomic_write(Path(path), lambda f: torch.save(payload, f))
    write_summary(Path(path), state.config, state.epoch, state.history)


def read_snapshot(path: str | Path) -> tuple[bytes, str]:
    """The checkpoint's bytes and their SHA-256, read in one go.

    A training run replaces the file while others read it; loading from these
    bytes (`load_state(path, data)`) and keying caches by this digest ties
    everything derived to one version of the file, whatever is on disk later.
    A file that cannot be a checkpoint, or is far larger than one of its
    config, is refused before its bytes are read (CheckpointError).
    """
    try:
        with open(path, "rb") as f:
            _check_unread(Path(path), f)
            f.seek(0)
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: train the run first") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    return data, digest(data)


def index_run(path: Path) -> RunInfo:
    """The run whose checkpoint at `path` no run.json names, from the checkpoint itself (CheckpointError if it
    cannot be read); its run.json is written, so that the next listing needs no torch."""
    before = path.stat()
    data, sha256 = read_snapshot(path)
    state = load_state(path, data)
    now = path.stat()
    if (now.st_ino, now.st_mtime_ns, now.st_size) == (before.st_ino, before.st_mtime_ns, len(data)):
        write_summary(path, state.config, state.epoch, state.history, sha256, now)  # names exactly the bytes read
    h = state.history
    return RunInfo(path.parent.name, path, state.epoch, state.config.epochs, h.test_loss[-1] if h.test_loss else None,
                   before.st_mtime, state.config, h.train_loss[-1] if h.train_loss else None, sha256)


def index_runs(scan: Scan) -> Scan:
    """`scan` with each checkpoint it could not list from a run.json loaded (index_run) and listed, or
    reported unreadable with why."""
    listed, unreadable = list(scan.runs), dict(scan.unreadable)
    for path in scan.unindexed:
        try:
            listed.append(index_run(path))
        except FileNotFoundError:  # removed since the scan: no run
            continue
        except Exception as exc:  # whatever one checkpoint holds, the other runs are still listed
            unreadable[path.parent.name] = first_line(exc)
    return Scan(newest_first(listed), dict(sorted(unreadable.items())))


def load_state(path: str | Path, data: bytes | None = None) -> TrainState:
    """Rebuild the run saved at `path` (or the bytes `data` read from it), on the CPU, validating every part."""
    path = Path(path)
    raw = _read(path, data)
    config = _config(path, raw)
    with torch.device("meta"):  # shapes and dtypes only: nothing the config asks for is allocated yet
        expected = VAE(config).state_dict()
    problems = _weight_problems(expected, _renamed(raw["model"]))
    if problems:
        raise CheckpointError(f"checkpoint {path} does not fit the model its config describes: "
                              f"{'; '.join(problems)}")
    vae = VAE(config)  # as large as the weights the file holds, which are in memory already
    vae.load_state_dict(_renamed(raw["model"]))
    optimizer = make_optimizer(vae, config)
    try:
        optimizer.load_state_dict(raw["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} has an optimizer state that does not fit the model: "
                              f"{first_line(exc)}") from exc
    history = _history(path, raw["history"], raw["epoch"], config)
    threads = raw.get("threads")  # saved since runs choose their thread count; None before
    if not (threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1)):
        raise CheckpointError(f"checkpoint {path} has an invalid thread count {threads!r}")
    return TrainState(config, vae, optimizer, history, raw["epoch"], dict(raw["rng"]), threads)


def _check_unread(path: Path, f) -> None:
    """Refuse the open checkpoint `f` if it cannot be one, or is far larger than a checkpoint of its config.

    Only the archive's directory and its pickled record (config, history,
    tensor shapes) are read: the tensors load on the meta device, with no data.
    A file that is no archive at all (a checkpoint padded to 1 GiB) is
    measured against the config its run.json names.
    """
    size = os.fstat(f.fileno()).st_size
    try:
        config, whose = _config(path, _read(path, f, map_location="meta")), "its config"
    except CheckpointError:
        config, whose = summary_config(path), "the config in its run.json"
        if config is None or size <= checkpoint_bytes(config)[1]:
            raise
    most = checkpoint_bytes(config)[1]
    if size > most:
        raise CheckpointError(f"checkpoint {path} is {size / 2**20:,.1f} MB, far more than the {most / 2**20:,.1f} "
                              f"MB at most that a checkpoint of {whose} (hidden {','.join(map(str, config.hidden))}, "
                              f"z_dim {config.z_dim}) holds: refused unread. Delete it, or retrain the run.")


def _config(path: Path, raw: dict[str, Any]) -> Config:
    try:
        return Config.from_dict(raw["config"])
    except (ValueError, TypeError) as exc:  # ConfigError; a run saved under older bounds (z_dim 1) lands here too
        raise CheckpointError(f"checkpoint {path} cannot be shown or resumed: it has an invalid config: {exc}") from exc


def _read(path: Path, source: bytes | io.BufferedIOBase | None = None, map_location: str = "cpu") -> dict[str, Any]:
    """The checkpoint's record, validated, from `path` or its bytes or an open file on it; on the meta
    device (`map_location`), tensors have shapes and dtypes but no data is read."""
    if source is None and not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train the run first "
                              f"(python -m vae_core train --run {path.parent.name})")
    source = path if source is None else io.BytesIO(source) if isinstance(source, bytes) else source
    if not zipfile.is_zipfile(source):
        raise CheckpointError(f"checkpoint {path} is truncated or not a checkpoint file (no torch zip archive "
                              f"in it); nothing was loaded. Delete it, or retrain the run.")
    _check_expansion(path, source)
    try:
        raw = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"checkpoint {path} holds pickled Python objects{what}, not only tensors and "
                              f"plain data: refused for safety, nothing in it was run") from exc
    except Exception as exc:  # RuntimeError, EOFError, struct.error...: torch.load has many ways to fail
        raise CheckpointError(f"checkpoint {path} is truncated or not a checkpoint file: "
                              f"{first_line(exc)}. Delete it, or retrain the run.") from exc
    expected = {"format", "config", "epoch", "history", "model", "optimizer", "rng"}
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} file")
    missing = expected - set(raw)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(sorted(missing))}")
    if not isinstance(raw["epoch"], int) or raw["epoch"] < 0:
        raise CheckpointError(f"checkpoint {path} has an invalid epoch {raw['epoch']!r}")
    rng = raw["rng"]
    if not (isinstance(rng, dict) and {"torch", "shuffle"} <= set(rng)
            and all(torch.is_tensor(v) and v.dtype == torch.uint8 for v in rng.values())):
        raise CheckpointError(f"checkpoint {path} has an invalid RNG state")
    return raw


# torch.save stores tensors uncompressed, so a real checkpoint expands to about its own size;
# a compressed archive that expands far beyond (1 GiB from 8 MB) is refused before it is read.
_MAX_EXPANSION = 2.0
_EXPANSION_SLACK = 1 << 20  # bytes: headers and small records


def _check_expansion(path: Path, source: Path | io.IOBase) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            expanded = sum(item.file_size for item in archive.infolist())
        stored = source.stat().st_size if isinstance(source, Path) else source.seek(0, io.SEEK_END)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"checkpoint {path} is truncated or not a checkpoint file: {first_line(exc)}") from exc
    finally:
        if not isinstance(source, Path):
            source.seek(0)
    if expanded > _MAX_EXPANSION * stored + _EXPANSION_SLACK:
        raise CheckpointError(f"checkpoint {path} would expand to {expanded / 2**20:,.0f} MB from "
                              f"{stored / 2**20:,.1f} MB on disk, far more than a checkpoint holds: refused "
                              f"unread")


# Weights of runs saved while the network had one hidden layer, under its names of today.
_OLD_NAMES = {f"{part}.hidden.{kind}": f"{part}.hidden.0.{kind}"
              for part in ("encoder", "decoder") for kind in ("weight", "bias")}


def _renamed(weights: Any) -> Any:
    if isinstance(weights, dict) and any(old in weights for old in _OLD_NAMES):
        return {_OLD_NAMES.get(k, k): v for k, v in weights.items()}
    return weights


def _weight_problems(expected: dict[str, torch.Tensor], weights: Any) -> list[str]:
    if not isinstance(weights, dict):
        return ["the weights are not a name -> tensor mapping"]
    problems = [f"missing {k}" for k in expected if k not in weights]
    problems += [f"unexpected {k}" for k in weights if k not in expected]
    for k, want in expected.items():
        got = weights.get(k)
        if got is None:
            continue
        if not torch.is_tensor(got):
            problems.append(f"{k} is a {type(got).__name__}, expected a tensor of shape {tuple(want.shape)}")
        elif got.shape != want.shape:
            problems.append(f"{k} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        elif got.dtype != want.dtype:
            problems.append(f"{k} has dtype {got.dtype}, expected {want.dtype}")
        elif not torch.isfinite(got).all():
            problems.append(f"{k}: weights are not finite (NaN or infinite values)")
    return problems


def _history(path: Path, raw: Any, epoch: int, config: Config) -> History:
    try:
        history = History.from_dict(raw)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid history: {exc}") from exc
    if not (len(history.train_loss) == len(history.epoch_seconds) == epoch <= config.epochs
            and len(history.test_epochs) == len(history.test_loss)):
        raise CheckpointError(f"checkpoint {path} has a history of {len(history.train_loss)} epochs "
                              f"but claims {epoch} completed epochs")
    split = (history.split_epochs, history.train_reconstruction, history.train_kl, history.test_reconstruction,
             history.test_kl)
    if len({len(values) for values in split}) != 1:
        raise CheckpointError(f"checkpoint {path} has an invalid history: the ELBO's parts are recorded for "
                              f"{len(history.split_epochs)} epochs but have {[len(v) for v in split[1:]]} values")
    return history


def _to_cpu(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value
