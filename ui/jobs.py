"""Training jobs: a `python -m vae_core train` process per run, watched through its files.

    from ui.jobs import check_start, start, stop, job
    check_start(root, "demo", config)                   # StartRefused says why a run may not start now
    start(root, "demo", Config(epochs=2, limit=2000))   # returns at once
    stop(root, "demo")                                  # honoured at any moment, even while starting
    job(root, "demo").state       # starting, running, stopping, finished, stopped, failed, lost, saved, none

The process is forked from vae_core.forkserver, which has imported torch: it
starts in a fraction of a second. It runs in its own session, so it outlives
reruns, page switches, closed tabs and the server itself, and it is nobody's
child (init reaps it), so it leaves no zombie when it ends. Its output goes to
train.log in the run folder; status.json, history.json and preview.npz are
written by vae_core.monitor (vae_core.runs names and reads them). One process per run, and $VAE_MAX_JOBS runs per
server: the run's lock, or its "starting" status with a live process, decides.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vae_core import forkserver, runs
from vae_core import start as start_rule
from vae_core.start import StartRefused, alive, training  # noqa: F401  (the app's names for them)
from vae_core.config import RESUMABLE_OVERRIDES, Config, train_flags

# Runs shipped with the repository: the app never replaces them or trains them further.
SHIPPED_RUNS = ("tutorial", "latent-2d", "burda-binarized", "warmup")
# Training runs this server lets train at once, and the memory one may take ($VAE_MAX_JOBS,
# $VAE_MEMORY_GIB): anyone who can open the app can start runs.
MAX_JOBS = int(os.environ.get("VAE_MAX_JOBS", "1"))
MEMORY_GIB = float(os.environ.get("VAE_MEMORY_GIB", "2"))
PROJECT = Path(__file__).resolve().parent.parent
# How long a just-launched process may take to write its first status.
START_GRACE_S = 60.0
# The most of a failure's message (and the log's last lines) a page shows; the rest stays in train.log.
MESSAGE_CHARS = 1000
MESSAGE_LINES = 12


@dataclass(frozen=True)
class Job:
    state: str  # none, saved, starting, running, stopping, finished, stopped, failed, lost
    status: dict[str, Any]  # `epoch` is the number of epochs completed, `epochs` the target
    history: dict[str, list] | None
    message: str

    @property
    def active(self) -> bool:
        """True while the process is starting, training or stopping."""
        return self.state in ("starting", "running", "stopping")

    @property
    def epochs_done(self) -> int:
        """Epochs completed so far."""
        return int(self.status.get("epoch") or 0)

    @property
    def target(self) -> int:
        """The number of epochs the run trains to."""
        return int(self.status.get("epochs") or 0)

    @property
    def complete(self) -> bool:
        """True once the epochs asked for are done (a finished run, or one killed after its last epoch)."""
        return 0 < self.target <= self.epochs_done


def command(root: Path, run: str, config: Config, resume: bool, threads: int | None = None) -> list[str]:
    """The arguments of `python -m vae_core` that train `run` with `config` (or resume it up to config.epochs)."""
    args = ["train", "--run", run, "--checkpoints", str(root)]
    if threads is not None:
        args += ["--threads", str(threads)]
    # A resumed run keeps its config but for the fields a Resume may change.
    args += train_flags(config, RESUMABLE_OVERRIDES if resume else None)
    return args + (["--resume"] if resume else [])


def policy() -> start_rule.Policy:
    """The app's limits on the start rule, read at each start (tests change them)."""
    return start_rule.Policy(app=True, shipped=SHIPPED_RUNS, max_jobs=MAX_JOBS, memory_gib=MEMORY_GIB)


def check_start(root: Path, run: str, config: Config, resume: bool = False, overwrite: bool = False,
                confirmed: bool = True) -> None:
    """StartRefused, saying why, unless `run` may start now from the app (vae_core.start, under the app's policy)."""
    start_rule.check(root, run, config, resume=resume, overwrite=overwrite, policy=policy(), confirmed=confirmed)


def start(root: Path, run: str, config: Config, resume: bool = False, overwrite: bool = False,
          confirmed: bool = True) -> None:
    """Launch the training process and return; StartRefused (check_start) if it may not start,
    OSError if its folder cannot be written. `confirmed` False: replacing a run takes a second request."""
    check_start(root, run, config, resume=resume, overwrite=overwrite, confirmed=confirmed)
    folder = runs.run_dir(root, run)
    folder.mkdir(parents=True, exist_ok=True)
    runs.clear_stop(folder)  # a request left by an earlier process must not stop this one
    args = command(root, run, config, resume) + (["--overwrite"] if overwrite else [])
    # Replaces the last run's final status, so the page shows this start at once: a resumed run with the
    # epochs its checkpoint holds (the process says so itself only once PyTorch and the data have loaded).
    # Written before the process exists, so a full disk or a read-only folder (SaveError) starts nothing.
    saved = _summary(folder / runs.CHECKPOINT_FILE) if resume else None
    status = {"state": "starting", "pid": None, "started": time.time(), "epoch": saved[0] if saved else 0,
              "epochs": config.epochs, "config": config.to_dict(), "message": ""}
    runs.write_json(folder / runs.STATUS_FILE, status)
    (folder / runs.LOG_FILE).write_bytes(b"")  # this start's log alone; an unwritable one stops it here
    pid = forkserver.detach(args, log=folder / runs.LOG_FILE, cwd=PROJECT, env=os.environ)
    # The process writes its own status once the data have loaded (a few tenths of a second): only a status
    # still as written above gets the pid, so that a run quicker than this line never reads "starting" again.
    written = runs.read_status(folder) or {}
    if (written.get("state"), written.get("pid"), written.get("started")) == ("starting", None, status["started"]):
        runs.write_json(folder / runs.STATUS_FILE, {**status, "pid": pid})


def stop(root: Path, run: str) -> bool:
    """Ask the run's process to stop after its current step; False if it was not running.

    The request is a file the process checks before every step, so it holds
    whether the process is still importing, loading data, testing or saving.
    """
    current = job(root, run)
    pid = current.status.get("pid")
    if not current.active or not isinstance(pid, int):
        return False
    runs.request_stop(runs.run_dir(root, run), pid)
    return True


# What each status field may hold; a field of another type (a damaged file) is dropped.
_STATUS_TYPES = {"state": str, "pid": int, "started": (int, float), "epoch": int, "epochs": int, "batch": int,
                 "batches": int, "images_per_s": (int, float), "eta_s": (int, float), "message": str,
                 "config": dict, "loss": (int, float), "updated": (int, float), "ended": (int, float),
                 "map": (int, float)}


def _clean(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items()
            if k in _STATUS_TYPES and isinstance(v, _STATUS_TYPES[k]) and not isinstance(v, bool)}


def job(root: Path, run: str) -> Job:
    """What the run's process is doing, or how and why it ended."""
    folder = runs.run_dir(root, run)
    status = _clean(runs.read_status(folder) or {})
    history = runs.read_history(folder)
    if not status and (folder / runs.CHECKPOINT_FILE).exists():
        return _saved(folder)
    state = status.get("state", "none")
    message = status.get("message", "")
    locked = runs.is_locked(folder)
    if state == "starting" and not locked and not alive(status.get("pid")):
        if time.time() - status.get("started", 0) > 1.0:
            state, message = "failed", _log_tail(folder) or "the training process exited before it started"
    elif state == "starting" and time.time() - status.get("started", 0) > START_GRACE_S and not locked:
        state, message = "failed", _log_tail(folder) or "the training process did not start"
    elif state == "running" and not locked:
        state = "lost"  # its words depend on what the checkpoint holds, read below
    elif state == "failed":
        message = f"{message}\n\n{_log_tail(folder)}".strip()
    if state in ("starting", "running") and runs.stop_requested(folder, status.get("pid")):
        state = "stopping"
    saved = None
    if state not in ("starting", "running", "stopping"):
        # A process killed between saving its checkpoint and writing its status leaves
        # the status an epoch behind: once it has ended, the checkpoint says what is kept.
        saved = _summary(folder / runs.CHECKPOINT_FILE)
        if saved is not None:
            status = {**status, "epoch": saved[0], "epochs": status.get("epochs", saved[1])}
            history = saved[2]
    if state == "lost":
        message = _lost(folder, status, saved is not None)
    return Job(state, status, history, _shown(message, folder))


def _lost(folder: Path, status: dict[str, Any], saved: bool) -> str:
    """What a process that ended without a word (SIGKILL, out of memory) left, by what its checkpoint holds."""
    why = "the training process ended without saying why (killed, or out of memory)"
    done, target = int(status.get("epoch") or 0), int(status.get("epochs") or 0)
    if not saved:
        again = " Resume starts it again with the same settings." if isinstance(status.get("config"), dict) else ""
        return f"{why} before its first epoch finished, so nothing was saved.{again}\n\n{_log_tail(folder)}".strip()
    if 0 < target <= done:  # in the latent map made after the last epoch, or just before its final status
        return (f"training finished: epoch {done} of {target} is saved. The process ended (killed, or out of "
                f"memory) after it, while it made the latent map for the views, so the map was not made: "
                f"the Latent map view computes it when opened, or run `python -m vae_core embed {folder.name}`.")
    return (f"{why}; the checkpoint of epoch {done} is kept: Resume continues from it.\n\n"
            f"{_log_tail(folder)}").strip()


def _shown(message: str, folder: Path) -> str:
    """The message cut to what a page can show: a runaway one (a 10 MB exception text) stays whole in the trainer's
    output, train.log (status.json for a run the CLI trained without the app)."""
    cut = "\n".join(message.splitlines()[:MESSAGE_LINES])[:MESSAGE_CHARS]
    if cut == message:
        return message
    kept = folder / (runs.LOG_FILE if (folder / runs.LOG_FILE).exists() else runs.STATUS_FILE)
    return f"{cut} … [cut: {len(message):,} characters in all; the whole text is in the run's {kept.name}, {kept}]"


def _saved(folder: Path) -> Job:
    """A run saved without the CLI's files (say, copied in): its checkpoint tells its story."""
    path = folder / runs.CHECKPOINT_FILE
    try:
        epoch, epochs, history = _summary_of(str(path), *file_identity(path))
    except (runs.CheckpointError, OSError) as exc:
        return Job("failed", {}, None, str(exc))
    return Job("saved", {"epoch": epoch, "epochs": epochs}, history, f"saved at epoch {epoch}")


def _summary(path: Path) -> tuple[int, int, dict[str, list]] | None:
    """Epochs done, epochs asked for and history of the checkpoint at `path`, or None."""
    try:
        return _summary_of(str(path), *file_identity(path))
    except (runs.CheckpointError, OSError):
        return None


def file_identity(path: Path) -> tuple[int, int, int]:
    """The file's inode, modification time and size: a file replaced or rewritten has another (OSError if none)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=32)
def _summary_of(path: str, inode: int, mtime_ns: int, size: int) -> tuple[int, int, dict[str, list]]:
    """Read once per file version (an atomic save gives a new inode)."""
    from vae_core.checkpoint import load_state  # torch: only for a run that has ended

    state = load_state(path)
    return state.epoch, state.config.epochs, state.history.to_dict()


def _log_tail(folder: Path, lines: int = 6, window: int = 64 * 1024) -> str:
    try:
        with open(folder / runs.LOG_FILE, "rb") as log:  # its last `window` bytes: a log may be megabytes long
            log.seek(max(log.seek(0, os.SEEK_END) - window, 0))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    # tqdm redraws with carriage returns; keep the last state of each line.
    kept = [line.split("\r")[-1] for line in text.splitlines() if line.split("\r")[-1].strip()]
    return "\n".join(kept[-lines:])
