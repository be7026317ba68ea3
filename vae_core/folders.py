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

from vae_core import npz
from vae_core.config import Config
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


# Nats per image a listed loss may take: the untrained tutorial model starts near 543, no likelihood here
# scores an image much above 784 x ln(255 / sqrt(2 pi)) = 3,600 nats (the Gaussian's scale is at least
# 1/255), and even a beta of 1,000 on a poor code stays well inside; a run.json beyond names no real run.
_LOSS_RANGE = (-1e5, 1e7)
# Bytes a checkpoint holds beyond its float32 weights and Adam's two moments: the pickled config and
# history (about 1 MB at 10,000 epochs), RNG states and the archive's records.
_CHECKPOINT_SLACK = 16 << 20
# The pickled record holds each epoch's train loss and seconds: 2 bytes each at the least (a small int;
# a float takes 9), so its size bounds the epochs a checkpoint can have run.
_RECORD_BYTES_PER_EPOCH = 4


def parameter_count(config: Config) -> int:
    """Weights and biases of the VAE `config` describes, counted without building it (torch-free)."""
    x, z, sizes = config.x_dim, config.z_dim, list(config.hidden)

    def stack(widths: list[int]) -> int:  # Linear layers from widths[0] through widths[-1]
        return sum(a * b + b for a, b in zip(widths, widths[1:]))

    gaussian_scales = x if config.likelihood == "gaussian" else 0  # one learned scale per pixel
    return (stack([x, *sizes]) + 2 * (sizes[-1] * z + z)  # encoder, and its z_loc and z_scale heads
            + stack([z, *reversed(sizes), x]) + gaussian_scales)  # decoder


def checkpoint_bytes(config: Config) -> tuple[int, int]:
    """The fewest and most bytes a checkpoint of `config` takes: its float32 weights alone (saved before a
    first step) up to the weights and Adam's two moments, plus the slack its history and records need."""
    n = parameter_count(config)
    return 4 * n, 3 * 4 * n + _CHECKPOINT_SLACK


def _record_bytes(path: Path) -> int:
    """Size of the checkpoint's pickled record (config, history, epoch), from its zip directory alone."""
    with zipfile.ZipFile(path) as archive:  # reads the directory at the file's end, not the tensors
        return next(item.file_size for item in archive.infolist() if item.filename.endswith("/data.pkl"))


def _plausible(config: Config, epoch: Any, losses: tuple[Any, ...], path: Path, size: int) -> bool:
    """Whether what a run.json says could be true of the checkpoint at `path`, of `size` bytes: else the
    checkpoint itself is read (a run.json can name the file's size, mtime and hash and still lie)."""
    least, most = checkpoint_bytes(config)
    return (isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= config.epochs
            and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and _LOSS_RANGE[0] <= v <= _LOSS_RANGE[1]) for v in losses)  # NaN fails
            and least <= size <= most and _record_bytes(path) >= _RECORD_BYTES_PER_EPOCH * epoch)


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
    """The run as its run.json describes it, if that names exactly the checkpoint at `path` and says
    nothing a checkpoint of its config could not hold; else None (the checkpoint itself is read then)."""
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
        if not _plausible(config, epoch, (test_loss, train_loss), path, stat.st_size):
            return None
    except Exception:  # whatever run.json holds (nested 100,000 deep: RecursionError), the checkpoint decides
        return None
    return RunInfo(path.parent.name, path, epoch, config.epochs, test_loss, stat.st_mtime, config, train_loss,
                   named["sha256"])


def summary_config(path: Path) -> Config | None:
    """The config the run.json beside `path` names, whichever checkpoint it describes; None if it has none."""
    try:
        return Config.from_dict(json.loads(path.with_name(RUN_FILE).read_text())["config"])
    except Exception:  # as read_summary: nothing run.json holds may raise
        return None


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
                if path.exists():  # a folder (or a pipe) by that name: reading it would fail, or block
                    kind = "a folder" if path.is_dir() else "a pipe or device"
                    unreadable[folder.name] = (f"{CHECKPOINT_FILE} is {kind}, not a file: {path}. Remove it, "
                                               f"or move a checkpoint file there")
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


def load_cached(path: str | Path, name: str, digest: str, shape: tuple[int | None, ...] | None = None,
                dtype: type = np.floating, limit: int = npz.MAX_ARRAY_BYTES) -> np.ndarray | None:
    """The cached array `name` of this checkpoint content if it has `shape` (None axes: any length) and
    `dtype`, else None. A file that is damaged or not that array is deleted, unread beyond its header."""
    file = cache_file(path, name, digest)
    try:
        return npz.load_array(file, (shape, dtype), limit)
    except (FileNotFoundError, NotADirectoryError):  # not computed yet, or cache/ is a file
        return None
    except Exception:  # whatever a damaged file raises (ValueError, OSError, EOFError...): recomputed
        _discard(file)
        return None


def _discard(file: Path) -> None:
    """Delete a cached file that is not to be trusted; one that cannot be deleted is refused again next time."""
    try:
        file.unlink(missing_ok=True)
    except OSError:
        pass


def store_cached(path: str | Path, name: str, digest: str, value: np.ndarray) -> None:
    """Keep `value` as the cached array `name` of this checkpoint content, written atomically; SaveError
    says why it could not be."""
    _store(cache_file(path, name, digest), lambda f: np.save(f, np.asarray(value), allow_pickle=False))


def _store(file: Path, write) -> None:
    """atomic_write(file, write), where a file standing in for the cache folder is a SaveError too."""
    try:
        atomic_write(file, write)
    except (FileExistsError, NotADirectoryError) as exc:  # mkdir of cache/ where a file by that name stands
        raise SaveError(exc.errno, f"cannot write {file}: {file.parent} is a file, not a folder; "
                                   f"move it away") from exc


def load_cached_set(path: str | Path, name: str, digest: str, expected: dict[str, npz.Expected] | None = None,
                    limit: int = npz.MAX_ARRAY_BYTES) -> dict[str, np.ndarray] | None:
    """The arrays cached together under `name` for this checkpoint content if they are the `expected` ones
    (see npz.npz_fits), else None. A file that is damaged or holds other arrays is deleted, never decompressed."""
    file = cache_file(path, name, digest, ".npz")
    try:
        return npz.load_set(file, expected, limit)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception:  # whatever a damaged archive raises (BadZipFile, zlib.error, EOFError...): recomputed
        _discard(file)
        return None


def store_cached_set(path: str | Path, name: str, digest: str, arrays: dict[str, Any]) -> None:
    """Keep `arrays` together as `name` for this checkpoint content, written atomically; SaveError says why
    it could not be."""
    _store(cache_file(path, name, digest, ".npz"),
           lambda f: np.savez_compressed(f, **{key: np.asarray(value) for key, value in arrays.items()}))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
