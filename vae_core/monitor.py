"""What a training process writes into its run folder for others to watch.

    from vae_core.monitor import RunMonitor, read_status, read_history, run_lock
    with run_lock(folder):                          # one training process per run
        monitor = RunMonitor(folder, state, test_images)  # the CLI's callbacks call its on_batch, on_epoch_end
    read_status(folder)   # {"state": "running", "epoch": 3, "images_per_s": ..., "eta_s": ...}
    request_stop(folder, pid)                       # from anywhere: the run stops after its current step

Files, each replaced atomically so a reader never sees half of one:
  status.json   state (running, finished, stopped, failed), pid, progress, speed, ETA, message,
                config; `epoch` counts the epochs completed
  history.json  train and test loss per image by epoch, after every epoch
  preview.npz   16 prior samples (fixed seed) and 8 test digits with reconstructions, after every epoch
  stop.json     a stop request for the process with that pid; it waits in the folder until the
                process sees it, so a stop sent while the process still starts is never lost
The lock file is held (flock) for the life of the training process, so a
crashed or killed run is told apart from a running one. The app reads these
files on every page, so this module imports torch only where the trainer
draws its previews.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from vae_core.config import Config
from vae_core.files import atomic_write, remove_temp_files, save_error
from vae_core.folders import CACHE_FOLDER
from vae_core import npz

if TYPE_CHECKING:
    import torch

    from vae_core.train import TrainState

STATUS_FILE = "status.json"
HISTORY_FILE = "history.json"
PREVIEW_FILE = "preview.npz"
LOCK_FILE = ".lock"
STOP_FILE = "stop.json"
# Written by the app too, which does not hold the run's lock: the first status, the stop request.
SHARED_FILES = (STATUS_FILE, STOP_FILE)
PREVIEW_SAMPLES = 16
PREVIEW_DIGITS = 8
PREVIEW_SEED = 0
# What a preview holds: images of MNIST's size (the only one a Config allows) and a count.
_IMAGE = (Config().image_height, Config().image_width)
PREVIEW_ARRAYS = {"samples": ((PREVIEW_SAMPLES, *_IMAGE), np.floating),
                  "originals": ((PREVIEW_DIGITS, *_IMAGE), np.floating),
                  "reconstructions": ((PREVIEW_DIGITS, *_IMAGE), np.floating),
                  "epochs_done": ((), np.integer),
                  "epoch": ((), np.integer)}  # written before epochs were counted as completed
# Those arrays in float64 take about 200 KB: a preview file or archive larger than this is no preview.
PREVIEW_MAX_BYTES = 1 << 20
# Where a finished (or stopped) run's message says it has no latent map: "… was not kept (why); make it …".
MAP_MISSING = "the latent map was not"


class RunBusyError(RuntimeError):
    """Another process is already training this run."""


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
            raise RunBusyError(f"run {folder.name!r} is already being trained by another process") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def remove_left_behind(folder: Path) -> list[Path]:
    """Temp files of saves killed midway, in the run folder and its cache; call it holding the run's lock.

    The app writes status.json, stop.json and every cached array without the lock, so their temp
    files count as left behind only once a minute old.
    """
    return remove_temp_files(folder, shared=SHARED_FILES) + remove_temp_files(folder / CACHE_FOLDER, shared=("*",))


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
    """The run's history as written after its last epoch, or None (also when the file is damaged)."""
    history = read_json(folder / HISTORY_FILE)
    numbers = ("train_loss", "test_epochs", "test_loss", "epoch_seconds", "split_epochs", "train_reconstruction",
               "train_kl", "test_reconstruction", "test_kl")
    if not (isinstance(history, dict) and all(
            isinstance(history.get(k, []), list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         for v in history.get(k, [])) for k in numbers)):
        return None
    return history


def read_preview(folder: Path) -> dict[str, np.ndarray] | None:
    """The run's latest preview arrays (samples, originals, reconstructions, epochs_done), or None.

    A damaged preview is no preview: not a zip, cut short, arrays of another shape or dtype (strings,
    20,000 samples), or an archive that would expand past PREVIEW_MAX_BYTES, checked before it is read.
    """
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


class RunMonitor:
    """Writes status, history and previews into `folder` as training goes (the trainer's callbacks call it)."""

    def __init__(self, folder: Path, state: TrainState, preview_images: torch.Tensor,
                 every_s: float = 0.5) -> None:
        self.folder = folder
        self.epochs = state.config.epochs
        self.preview_images = preview_images[:PREVIEW_DIGITS]
        self.every_s = every_s
        self.started = time.time()
        self.last_write = 0.0
        self.images_done = 0  # this session, for the speed
        self.epoch_images = 0
        self.status: dict[str, Any] = {"state": "running", "pid": os.getpid(), "started": self.started,
                                       "epoch": state.epoch, "epochs": self.epochs, "batch": 0, "batches": 0,
                                       "config": state.config.to_dict(),
                                       "images_per_s": None, "eta_s": None, "message": ""}
        self._write_status()
        write_json(folder / HISTORY_FILE, state.history.to_dict())
        self._write_preview(state)

    def on_batch(self, epoch: int, batch: int, n_batches: int, images: int, loss: float) -> None:
        self.epoch_images = images
        now = time.time()
        if now - self.last_write < self.every_s:
            return
        seen = self.images_done + images
        speed = seen / max(now - self.started, 1e-9)
        n_train = images * n_batches / (batch + 1)  # close enough before the last batch
        left = (self.epochs - epoch) * n_train - images
        self.status.update(epoch=epoch, batch=batch + 1, batches=n_batches, images_per_s=speed,
                           eta_s=left / speed if speed > 0 else None, loss=loss)
        self._write_status()

    def on_epoch_end(self, state: TrainState) -> None:
        self.images_done += self.epoch_images
        write_json(self.folder / HISTORY_FILE, state.history.to_dict())
        self._write_preview(state)  # 16 samples and 8 reconstructions: cheap beside an epoch
        self.status.update(epoch=state.epoch, batch=0)
        self._write_status()

    def mapping(self, fraction: float) -> None:
        """Progress of the latent map computed after the last epoch, 0 to 1, for the Train page."""
        if time.time() - self.last_write >= self.every_s or fraction >= 1.0:
            self.status.update(map=fraction, eta_s=None)
            self._write_status()

    def finish(self, state: str, message: str = "") -> None:
        """Record how the run ended: finished, stopped or failed, with why."""
        self.status.pop("map", None)
        self.status.update(state=state, message=message, eta_s=None, ended=time.time())
        self._write_status()

    def _write_status(self) -> None:
        self.last_write = time.time()
        self.status["updated"] = self.last_write
        write_json(self.folder / STATUS_FILE, self.status)

    def _write_preview(self, state: TrainState) -> None:
        from vae_core.analysis import prior_samples, reconstructions  # torch: only in the training process

        vae = state.vae
        was_training = vae.training
        vae.eval()
        rec = reconstructions(vae, self.preview_images, k=1, seed=PREVIEW_SEED)
        arrays = {"samples": prior_samples(vae, PREVIEW_SAMPLES, seed=PREVIEW_SEED).numpy(),
                  "originals": self.preview_images.reshape(rec.at_loc.shape).cpu().numpy(),
                  "reconstructions": rec.draws[:, 0].numpy(),
                  "epochs_done": np.array(state.epoch)}
        vae.train(was_training)
        atomic_write(self.folder / PREVIEW_FILE, lambda f: np.savez(f, **arrays))
