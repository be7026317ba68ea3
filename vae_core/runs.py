"""A run folder: its file names, its index (run.json), what its training process writes, its lock. No torch.

    from vae_core import runs
    folder = runs.run_dir("checkpoints", "demo")       # checkpoints/demo, the name checked
    scan = runs.scan_runs("checkpoints")               # RunInfo per run from its run.json, newest first
    scan.unindexed                                     # checkpoints no run.json names: vae_core.checkpoint.index_runs
    runs.read_status(folder), runs.read_history(folder), runs.read_preview(folder)
    with runs.run_lock(folder): ...                    # one training process per run (RunBusyError)
    runs.request_stop(folder, pid)                     # from anywhere: the run stops after its current step

The files of a run folder, each replaced atomically so that a reader never sees half of one:
  checkpoint.pt   config, history, weights, optimizer (vae_core.checkpoint writes and reads it)
  run.json        its config, epochs and last losses, naming its size, mtime and SHA-256: trusted only
                  while it names the exact bytes
  status.json     state (starting, running, finished, stopped, failed), pid, progress, speed, ETA,
                  message, config; `epoch` counts the epochs completed
  history.json    History.to_dict() after every epoch
  preview.npz     16 prior samples and 8 test digits with reconstructions, after every epoch
  stop.json       a stop request for the process with that pid; it waits until that process sees it
  .lock           held (flock) while the training process lives: a crashed run is told apart
  train.log       the app's training process's output; checkpoint.replaced.pt: an overwritten
                  run's checkpoint, until the new run saves an epoch
  cache/          arrays derived from one checkpoint version (vae_core.run_cache)
  timeline/       epoch-NNNN.npz: the codes of a fixed subset of test digits and KL per dimension at each
                  test epoch (vae_core.timeline)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vae_core import npz
from vae_core.config import Config
from vae_core.files import atomic_write, remove_temp_files, save_error
from vae_core.history import History
from vae_core.sizes import plausible

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILE = "run.json"
RUN_FORMAT = "vae_core.run/1"
STATUS_FILE = "status.json"
HISTORY_FILE = "history.json"
PREVIEW_FILE = "preview.npz"
LOCK_FILE = ".lock"
STOP_FILE = "stop.json"
LOG_FILE = "train.log"
REPLACED_FILE = "checkpoint.replaced.pt"
CACHE_FOLDER = "cache"
TIMELINE_FOLDER = "timeline"  # one frame per test epoch (vae_core.timeline)
# Written by processes that do not hold the run's lock: the app's first status and stop request, and the
# run.json the app writes for a checkpoint saved without one.
SHARED_FILES = (STATUS_FILE, STOP_FILE, RUN_FILE)
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PREVIEW_SAMPLES = 16
PREVIEW_DIGITS = 8
PREVIEW_SEED = 0
_IMAGE = (Config().image_height, Config().image_width)  # MNIST's size: the only one a Config allows
PREVIEW_ARRAYS = {"samples": ((PREVIEW_SAMPLES, *_IMAGE), np.floating),
                  "originals": ((PREVIEW_DIGITS, *_IMAGE), np.floating),
                  "reconstructions": ((PREVIEW_DIGITS, *_IMAGE), np.floating),
                  "epochs_done": ((), np.integer),
                  "epoch": ((), np.integer)}  # written before epochs were counted as completed
# Those arrays in float64 take about 200 KB: a preview file or archive larger than this is no preview.
PREVIEW_MAX_BYTES = 1 << 20
# Where a finished (or stopped) run's message says it has no latent map: "… was not kept (why); make it …".
MAP_MISSING = "the latent map was not"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used; the message names the file and why."""


class RunNameError(ValueError):
    """A run name that could escape its folder or is otherwise not allowed."""


class RunBusyError(RuntimeError):
    """Another process is already training this run."""


BUSY = "run {run!r} is already being trained by another process"  # RunBusyError's words, and the start rule's

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


@dataclass(frozen=True)
class Scan:
    runs: list[RunInfo]  # described by their run.json, newest first
    unreadable: dict[str, str]  # run name: why it cannot be listed
    unindexed: list[Path] = field(default_factory=list)  # checkpoints no run.json names (saved without one)


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


def digest(source: bytes | str | Path) -> str:
    """SHA-256 of `source`'s bytes, or of the file at that path: the key of every cache of a checkpoint."""
    h = hashlib.sha256()
    if isinstance(source, bytes):
        h.update(source)
        return h.hexdigest()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# ---------------------------------------------------------------- run.json: the index runs are listed from


def write_summary(path: Path, config: Config, epoch: int, history: History, sha256: str | None = None,
                  stat: os.stat_result | None = None) -> None:
    """run.json beside the checkpoint at `path`, naming its size, mtime and SHA-256 (of the file now, unless
    the caller read it and gives both `sha256` and `stat`); a run.json that cannot be written is left out."""
    stat = stat or path.stat()
    summary = {"format": RUN_FORMAT, "checkpoint": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                                                    "sha256": sha256 or digest(path)},
               "config": config.to_dict(), "epoch": epoch,
               "train_loss": history.train_loss[-1] if history.train_loss else None,
               "test_loss": history.test_loss[-1] if history.test_loss else None}
    try:
        write_json(path.with_name(RUN_FILE), summary)
    except OSError:  # a full disk, or a writer without the lock racing a cleanup: a stale run.json is not used
        pass


def read_summary(path: Path) -> RunInfo | None:
    """The run as its run.json describes it, if that names exactly the checkpoint at `path` and says
    nothing a checkpoint of its config could not hold; else None (the checkpoint itself must be read)."""
    try:
        raw = json.loads(path.with_name(RUN_FILE).read_text())
        stat, named = path.stat(), raw["checkpoint"]
        if raw["format"] != RUN_FORMAT or named["size"] != stat.st_size or not isinstance(named["sha256"], str):
            return None
        # A fresh clone or a copy gives the same bytes a new mtime: the hash decides then.
        if named["mtime_ns"] != stat.st_mtime_ns and named["sha256"] != digest(path):
            return None
        config, epoch, test_loss = Config.from_dict(raw["config"]), raw["epoch"], raw["test_loss"]
        train_loss = raw.get("train_loss")
        if not plausible(config, epoch, (test_loss, train_loss), path, stat.st_size):
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
    """The runs under `root` that their run.json describes, newest first (see scan_runs)."""
    return scan_runs(root).runs


def scan_runs(root: str | Path = DEFAULT_ROOT) -> Scan:
    """Every run under `root`, from run.json files alone: those they describe, those that cannot be read (with
    why), and checkpoints none names (only loading lists them). A folder without a checkpoint is no run (yet);
    no file in any folder can stop the scan."""
    listed, unreadable, unindexed = [], {}, []
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
            info = read_summary(path)
        except Exception as exc:  # whatever one file holds, the other runs are still listed
            unreadable[folder.name] = first_line(exc)
            continue
        if info is None:
            unindexed.append(path)
        else:
            listed.append(info)
    return Scan(newest_first(listed), unreadable, unindexed)


def newest_first(infos: list[RunInfo]) -> list[RunInfo]:
    """`infos` sorted by their checkpoint's mtime, newest first: the order runs are listed in."""
    return sorted(infos, key=lambda r: r.modified, reverse=True)


# ---------------------------------------------------------------- what the training process writes, and its lock


def write_json(path: Path, value: Any) -> None:
    """JSON file replaced atomically."""
    atomic_write(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when absent or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_status(folder: Path) -> dict[str, Any] | None:
    """The run's last written status, or None (also when the file is damaged)."""
    status = read_json(folder / STATUS_FILE)
    return status if isinstance(status, dict) else None


def read_history(folder: Path) -> dict[str, list] | None:
    """The run's History (as plain lists) written after its last epoch, or None (also when it is damaged)."""
    try:
        return History.from_dict(read_json(folder / HISTORY_FILE)).to_dict()
    except ValueError:
        return None


def read_preview(folder: Path) -> dict[str, np.ndarray] | None:
    """The run's latest preview arrays (samples, originals, reconstructions, epochs_done), or None. A damaged
    preview is no preview: not a zip, cut short, arrays of another shape or dtype (strings, 20,000 samples),
    or an archive that would expand past PREVIEW_MAX_BYTES, checked before it is read."""
    try:
        preview = npz.load_set(folder / PREVIEW_FILE, PREVIEW_ARRAYS, PREVIEW_MAX_BYTES, exact=False)
    except Exception:  # missing, not a zip, cut short, other arrays: whatever a damaged file raises
        return None
    if not ({"samples", "originals", "reconstructions"} <= preview.keys()
            and len(preview.keys() & {"epochs_done", "epoch"}) == 1):
        return None
    if "epoch" in preview:  # written before epochs were counted as completed: the index of the last one
        preview["epochs_done"] = preview.pop("epoch") + 1
    return preview


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold the run's lock for the block, or raise RunBusyError at once (SaveError: the folder is read-only)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        error = save_error(folder, exc)  # "cannot write <folder>: the folder is read-only or not writable"
        if error is exc:
            raise
        raise error from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(BUSY.format(run=folder.name)) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_locked(folder: Path) -> bool:
    """True while a training process holds the run's lock."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_left_behind(folder: Path) -> list[Path]:
    """Temp files of saves killed midway, in the run folder, its cache and its timeline; call it holding the
    run's lock. Processes without the lock write SHARED_FILES and cached arrays: their temp files count once a
    minute old. Only the training process writes timeline frames."""
    return (remove_temp_files(folder, shared=SHARED_FILES) + remove_temp_files(folder / CACHE_FOLDER, shared=("*",))
            + remove_temp_files(folder / TIMELINE_FOLDER))


def request_stop(folder: Path, pid: int) -> None:
    """Ask the training process `pid` of this run to stop after its current step, whatever it is doing now."""
    write_json(folder / STOP_FILE, {"pid": pid, "requested": time.time()})


def clear_stop(folder: Path) -> None:
    """Forget any stop request (a new process is about to start, or the last one ended)."""
    (folder / STOP_FILE).unlink(missing_ok=True)


def stop_requested(folder: Path, pid: int) -> bool:
    """True when a stop was requested for process `pid` (requests for other processes are stale)."""
    if not (folder / STOP_FILE).exists():  # the common case, checked every step: one stat
        return False
    request = read_json(folder / STOP_FILE)
    return isinstance(request, dict) and request.get("pid") == pid


class StopRequest:
    """The trainer's stop flag: a request in the run folder, or SIGINT/SIGTERM, once seen, stays seen."""

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        self.folder = folder
        self.pid = os.getpid() if pid is None else pid
        self.requested = False

    def request(self, *_) -> None:
        """Signal handler: stop after the current step."""
        self.requested = True

    def __call__(self) -> bool:
        self.requested = self.requested or stop_requested(self.folder, self.pid)
        return self.requested
