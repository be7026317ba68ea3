"""Run folders: names, the run index (run.json) and the arrays cached per checkpoint version, without torch.

    from vae_core import folders
    folder = folders.run_dir("checkpoints", "demo")      # checkpoints/demo, name validated
    runs, unreadable = folders.scan_runs("checkpoints")  # RunInfo per run from its run.json, newest first
    folders.load_cached(info.path, "tsne-p30-s0", info.digest)   # an array of this exact checkpoint, or None

The app lists runs, draws its sidebar and opens Home from these files alone:
nothing here imports torch (2 s to import here), which vae_core.checkpoint
loads for the weights themselves.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.config import Config, ConfigError
from vae_core.files import SaveError, atomic_write

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_FILE = "checkpoint.pt"
# Beside each checkpoint: its config, epochs and last losses, so runs are listed without loading
# weights and optimizer state; trusted only while it names the checkpoint's exact bytes.
RUN_FILE = "run.json"
RUN_FORMAT = "vae_core.run/1"
CACHE_FOLDER = "cache"
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used; the message names the file and why."""


class RunNameError(ValueError):
    """A run name that could escape its folder or is otherwise not allowed."""


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: Path  # the checkpoint file
    epoch: int  # epochs completed
    epochs: int  # epochs asked for
    test_loss: float | None  # last test loss per image
    modified: float  # mtime, seconds since the epoch
    config: Config
    train_loss: float | None  # last epoch's train loss per image (beta-weighted when beta != 1)
    digest: str  # SHA-256 of the checkpoint these figures describe: the key of its caches


def validate_run_name(name: str) -> str:
    """`name` itself when it is a safe folder name, else RunNameError saying what is allowed."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name) or ".." in name:
        raise RunNameError(f"run name {name!r} is not allowed: use 1 to 64 letters, digits, '-', '_' or '.', "
                           f"starting with a letter or digit, with no '..' and no path separators")
    return name


def run_dir(root: str | Path, name: str) -> Path:
    """The folder of run `name` under `root` (not created); RunNameError if a file holds that name."""
    folder = Path(root) / validate_run_name(name)
    if folder.exists() and not folder.is_dir():
        raise RunNameError(f"run name {name!r} is taken by a file in {Path(root).name}/: choose another name")
    return folder


def checkpoint_path(root: str | Path, name: str) -> Path:
    """The checkpoint file of run `name` under `root`."""
    return run_dir(root, name) / CHECKPOINT_FILE


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, to key caches by checkpoint content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_summary(path: Path, config: Config, epoch: int, train_loss: float | None,
                  test_loss: float | None) -> None:
    """run.json for the checkpoint just saved at `path`, naming its size, mtime and SHA-256."""
    stat = path.stat()
    summary = {"format": RUN_FORMAT, "checkpoint": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                                    "sha256": file_digest(path)},
               "config": config.to_dict(), "epoch": epoch, "train_loss": train_loss, "test_loss": test_loss}
    try:
        atomic_write(path.with_name(RUN_FILE), lambda f: f.write(json.dumps(summary, indent=1).encode()))
    except SaveError:  # the checkpoint is saved; a stale run.json no longer matches it and is not used
        pass


def read_summary(path: Path) -> RunInfo | None:
    """The run as its run.json describes it, if that names exactly the checkpoint at `path`; else None."""
    try:
        raw = json.loads(path.with_name(RUN_FILE).read_text())
        stat, named = path.stat(), raw["checkpoint"]
        if raw["format"] != RUN_FORMAT or named["size"] != stat.st_size or not isinstance(named["sha256"], str):
            return None
        # A fresh clone or a copy gives the same bytes a new mtime: the hash decides then.
        if named["mtime_ns"] != stat.st_mtime_ns and named["sha256"] != file_digest(path):
            return None
        config, epoch, test_loss = Config.from_dict(raw["config"]), raw["epoch"], raw["test_loss"]
        train_loss = raw.get("train_loss")
        if not (isinstance(epoch, int) and 0 <= epoch <= config.epochs
                and all(v is None or isinstance(v, (int, float)) for v in (test_loss, train_loss))):
            return None
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        return None
    return RunInfo(path.parent.name, path, epoch, config.epochs, test_loss, stat.st_mtime, config, train_loss,
                   named["sha256"])


def list_runs(root: str | Path = DEFAULT_ROOT) -> list[RunInfo]:
    """Readable runs under `root`, newest first; unreadable ones are left out (see scan_runs)."""
    return scan_runs(root)[0]


def scan_runs(root: str | Path = DEFAULT_ROOT) -> tuple[list[RunInfo], dict[str, str]]:
    """Readable runs under `root`, newest first, and each unreadable run's name with why.

    A folder without a checkpoint is no run (yet) and is in neither list. No
    file in any folder can stop the scan: whatever one run's checkpoint holds,
    the others are still listed.
    """
    runs, unreadable = [], {}
    for folder in sorted(Path(root).glob("*/")):
        path = folder / CHECKPOINT_FILE
        try:
            if not path.is_file():
                continue
            validate_run_name(folder.name)
            info = read_summary(path) or _from_checkpoint(path)
        except Exception as exc:  # whatever one file holds, the other runs are still listed
            unreadable[folder.name] = first_line(exc)
            continue
        runs.append(info)
    return sorted(runs, key=lambda r: r.modified, reverse=True), unreadable


def _from_checkpoint(path: Path) -> RunInfo:
    """The run as its checkpoint says, when no run.json names it (a run saved before run.json existed)."""
    from vae_core.checkpoint import load_state, read_snapshot  # torch: only for such runs

    data, digest = read_snapshot(path)
    state = load_state(path, data)
    h = state.history
    return RunInfo(path.parent.name, path, state.epoch, state.config.epochs,
                   h.test_loss[-1] if h.test_loss else None, path.stat().st_mtime, state.config,
                   h.train_loss[-1] if h.train_loss else None, digest)


def cache_file(path: str | Path, name: str, digest: str, suffix: str = ".npy") -> Path:
    """Where an array derived from the checkpoint at `path` (with content `digest`) is kept."""
    return Path(path).parent / CACHE_FOLDER / f"{name}-{digest[:16]}{suffix}"


def cached_names(path: str | Path, digest: str) -> list[str]:
    """Names of the arrays cached for this checkpoint content, sorted."""
    suffix = f"-{digest[:16]}.npy"
    folder = Path(path).parent / CACHE_FOLDER
    return sorted(f.name[:-len(suffix)] for f in folder.glob(f"*{suffix}")) if folder.is_dir() else []


def load_cached(path: str | Path, name: str, digest: str) -> np.ndarray | None:
    """The cached array `name` of this checkpoint content, or None (a damaged one is deleted)."""
    file = cache_file(path, name, digest)
    try:
        return np.load(file, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        file.unlink(missing_ok=True)  # recomputed, never trusted
        return None


def store_cached(path: str | Path, name: str, digest: str, value: np.ndarray) -> None:
    """Keep `value` as the cached array `name` of this checkpoint content, written atomically."""
    atomic_write(cache_file(path, name, digest), lambda f: np.save(f, np.asarray(value), allow_pickle=False))


def load_cached_set(path: str | Path, name: str, digest: str) -> dict[str, np.ndarray] | None:
    """The arrays cached together under `name` for this checkpoint content, or None (a damaged file is deleted)."""
    file = cache_file(path, name, digest, ".npz")
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        file.unlink(missing_ok=True)
        return None


def store_cached_set(path: str | Path, name: str, digest: str, arrays: dict[str, Any]) -> None:
    """Keep `arrays` together as `name` for this checkpoint content, written atomically."""
    atomic_write(cache_file(path, name, digest, ".npz"),
                 lambda f: np.savez_compressed(f, **{key: np.asarray(value) for key, value in arrays.items()}))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
