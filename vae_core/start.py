"""Whether a training run may start now, and if not why, in the user's words: the one rule that the
command line, the app's job runner and the Train page all call.

    from vae_core.start import Policy, StartRefused, check
    check(root, "demo", {"epochs": 5}, resume=True)      # the CLI: StartRefused unless it may start
    check(root, "demo", config, policy=Policy(app=True, shipped=("tutorial",), max_jobs=1, memory_gib=2.0))

The command line may replace any run (`--overwrite`); the app adds its own
limits through a Policy: runs shipped with it, how many runs train at once,
the memory one may take, and its words (the sidebar, the form's Overwrite)
instead of the flags'. Nothing here imports torch: the CLI answers at once,
and the Train page before torch has loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vae_core import memory, runs
from vae_core.config import FIELDS, RESUMABLE_OVERRIDES, Config
from vae_core.errors import UsageError


class StartRefused(UsageError):
    """Why a run may not start now, in the user's words; `reason` names the check (the CLI exits with 2)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    """What a caller adds to the rule. The command line adds nothing: it may replace any run."""

    app: bool = False  # the app's words (the sidebar, the form's Overwrite), else the command line's (its flags)
    shipped: tuple[str, ...] = ()  # runs never replaced or trained further
    max_jobs: int | None = None  # runs that may train at once under the root ($VAE_MAX_JOBS in the app)
    memory_gib: float | None = None  # the most a run's estimated peak memory may be ($VAE_MEMORY_GIB in the app)


# Each refusal in the command line's words and in the app's; the app-only ones (its limits) have the app's alone.
_WORDS = {
    "contradict": ("--resume and --overwrite contradict each other; pass one",
                   "Resume and Overwrite contradict each other: choose one."),
    "busy": (runs.BUSY,
             "Run {run} is training already: pick it in the sidebar to watch it."),
    "missing": ("cannot resume run {run!r}: {path} does not exist; drop --resume to start it",
                "Run {run} has no checkpoint to resume: start it anew from the form."),
    "clash": ("a resumed run keeps its config; these differ: {clashes}",
              "A resumed run keeps its settings; these differ: {clashes}."),
    "done": ("run {run!r} has already trained {epoch} of {epochs} epochs; pass a larger --epochs to continue it",
             "Run {run} has trained {epoch} of {epochs} epochs already: train it on to a later epoch."),
    "jobs": "Run {other} is training, and this server trains {max_jobs} run(s) at a time (VAE_MAX_JOBS): stop it "
            "first, or wait until it ends.",
    "memory": "This model would take about {need:.1f} GiB to train (PyTorch and the data, the weights and Adam's "
              "state, a batch's activations), more than the {budget:g} GiB this server allows (VAE_MEMORY_GIB): "
              "lower the batch size, the hidden units or the latent dimensions.",
    "shipped": "Run {run} is shipped with the app and is never replaced or trained further from here: choose "
               "another name.",
    "exists": ("run {run!r} already exists ({path}); pass --resume to continue it, --overwrite to start it anew, "
               "or choose another --run name",
               "A run named {run} exists already: pick it in the sidebar to resume it, tick Overwrite to start it "
               "anew, or choose another name."),
    "confirm": "Run {run} exists: press Start again to replace it. Its checkpoint is kept until the new run has "
               "saved its first epoch.",
}


def _refused(reason: str, policy: Policy, **facts: Any) -> StartRefused:
    words = _WORDS[reason]
    if isinstance(words, tuple):
        words = words[policy.app]
    return StartRefused(reason, words.format(**facts))


def run_folder(root: str | Path, run: str, policy: Policy = Policy()) -> Path:
    """The run's folder (not created); StartRefused ("name") if the name is not allowed or a file holds it."""
    try:
        return runs.run_dir(root, run)
    except runs.RunNameError as exc:
        message = str(exc)  # "run name '../x' is not allowed: ..."
        raise StartRefused("name", message[:1].upper() + message[1:] if policy.app else message) from None


def alive(pid: Any) -> bool:
    """True while process `pid` runs (a finished child of this process is reaped on the way)."""
    if not isinstance(pid, int) or pid <= 1:  # 0, -1 and 1 name a group, every process or init
        return False
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own finished child
        return waited == 0
    except ChildProcessError:  # not our child: a detached run (vae_core.forkserver), or another server's
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True for a process that has ended but that its parent has not reaped (a container's init may never).
    Every thread must have ended: a killed process's first thread turns zombie while the others (torch's) still
    hold its files, and the run's lock with them."""
    try:
        return all((task / "stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
                   for task in Path(f"/proc/{pid}/task").iterdir())
    except (OSError, IndexError):
        return False


def busy(folder: Path) -> bool:
    """True while the run's process trains (it holds the lock) or is still starting (alive, no lock yet).
    A starting status that names this very process (the app's launch of this CLI) is not another's."""
    if runs.is_locked(folder):
        return True
    status = runs.read_status(folder) or {}
    pid = status.get("pid")
    return status.get("state") == "starting" and pid != os.getpid() and alive(pid)


def training(root: str | Path) -> list[str]:
    """The runs under `root` whose training process is alive, starting or training."""
    return sorted(folder.name for folder in Path(root).glob("*/") if busy(folder))


def check(root: str | Path, run: str, config: Config | Mapping[str, Any], *, resume: bool = False,
          overwrite: bool = False, policy: Policy = Policy(), confirmed: bool = True,
          saved: tuple[Config, int] | None = None, locked: bool = False) -> Config | None:
    """StartRefused, saying why, unless `run` may start now; else the Config it will train with (None for a
    resumed run whose checkpoint this could not read without torch: the trainer checks it again once loaded).

    `config`: a Config, or the fields the command line's flags set (a resumed run keeps the rest).
    `confirmed`: False asks for a second, confirmed request before a run is replaced (the Train page).
    `saved`: the run's checkpointed config and epochs done, if the caller has loaded it; else its run.json.
    `locked`: the caller holds the run's lock (the trainer, checking again): the run is its own.
    """
    folder = run_folder(root, run, policy)
    path = folder / runs.CHECKPOINT_FILE
    changes = dict(config) if isinstance(config, Mapping) else {name: getattr(config, name) for name in FIELDS}
    if resume and overwrite:
        raise _refused("contradict", policy)
    if not locked and busy(folder):  # a second process, queued behind the lock, could outlive a Stop of the first
        raise _refused("busy", policy, run=run)
    others = [name for name in training(root) if name != run] if policy.max_jobs is not None else []
    if others and len(others) >= policy.max_jobs:
        raise _refused("jobs", policy, other=others[0], max_jobs=policy.max_jobs)
    exists = path.exists()
    if run in policy.shipped and (resume or exists):
        raise _refused("shipped", policy, run=run)
    target = _resumed(run, path, changes, saved, policy) if resume else Config(**changes)
    if policy.memory_gib is not None and target is not None:
        need = memory.training_bytes(target) / 2**30
        if need > policy.memory_gib:
            raise _refused("memory", policy, need=need, budget=policy.memory_gib)
    if exists and not resume and not overwrite:
        raise _refused("exists", policy, run=run, path=path)
    if exists and overwrite and not confirmed:  # last: never ask for a press that another check would refuse
        raise _refused("confirm", policy, run=run)
    return target


def _resumed(run: str, path: Path, changes: dict[str, Any], saved: tuple[Config, int] | None,
             policy: Policy) -> Config | None:
    """The config a resumed run trains with: its own, but for the fields a Resume may change."""
    if not path.exists():
        raise _refused("missing", policy, run=run, path=path)
    if saved is None:
        info = runs.read_summary(path)  # None unless run.json names this very checkpoint
        saved = (info.config, info.epoch) if info else None
    if saved is None:
        return None
    stored, epoch = saved
    clashes = [f"{k}={v!r} (the run has {getattr(stored, k)!r})" for k, v in changes.items()
               if k not in RESUMABLE_OVERRIDES and _normal(v) != getattr(stored, k)]
    if clashes:
        raise _refused("clash", policy, clashes=", ".join(clashes))
    target = Config.from_dict({**stored.to_dict(), **{k: v for k, v in changes.items() if k in RESUMABLE_OVERRIDES}})
    if epoch >= target.epochs:
        raise _refused("done", policy, run=run, epoch=epoch, epochs=target.epochs)
    return target


def _normal(value: Any) -> Any:
    """A field's value as a Config holds it: JSON and to_dict() give lists where the Config has tuples."""
    return tuple(value) if isinstance(value, list) else value
