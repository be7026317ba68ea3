"""The fork server the app starts its processes from: one single-threaded process that has imported torch
and the engine once, so that a child starts in a fraction of a second instead of the 2 to 4 s of a new
interpreter's imports.

    from vae_core import forkserver
    pid = forkserver.detach(["train", "--run", "demo"], log=folder / "train.log", cwd=project, env=os.environ)

Two kinds of children come from it: vae_core.background's computations (a
child of the server's, killed when it is no longer wanted), and training runs,
detached here: `python -m vae_core ...` in a session of its own that outlives
the server, its output in a log file. A detached process is forked twice (the
middle process exits at once), so it is nobody's child to wait for: init reaps
it. Why not fork the server itself: it runs every session's page in a thread,
and a fork of a threaded process can deadlock. This module imports no torch
(vae_core.TORCH_FREE): the server imports none by starting a run.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

# What the fork server imports once, so that its children need not: torch, the estimators, T-SNE, training.
PRELOAD = ("vae_core.analysis", "vae_core.objectives", "vae_core.latent", "vae_core.commands")
# How long a detach waits for the middle process to say the run's pid (it forks and answers at once).
ANSWER_S = 60.0


@functools.cache
def context() -> multiprocessing.context.BaseContext:
    """The fork server's context, its imports named (the server itself starts at the first child)."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(list(PRELOAD))
    return forkserver


def detach(argv: Sequence[str], *, log: Path, cwd: Path, env: Mapping[str, str]) -> int:
    """Start `python -m vae_core *argv` forked from the fork server, in a session of its own, in `cwd`, with
    `env` as its environment and its output appended to `log`; returns its pid without waiting for it.
    OSError if the log cannot be opened or the process cannot be made."""
    receive, send = context().Pipe(duplex=False)
    middle = context().Process(target=_fork_run, args=(send, list(argv), str(log), str(cwd), dict(env)),
                               name="vae-detach")  # not a daemon: scikit-learn runs one thread in those
    middle.start()
    send.close()  # the middle process holds the only sending end: one that dies reads as EOFError here
    try:
        if not receive.poll(ANSWER_S):
            raise OSError(f"the fork server did not start the process within {ANSWER_S:g} s")
        kind, value = receive.recv()
    except EOFError:
        raise OSError(f"the fork server's process ended without starting the run (exit code "
                      f"{middle.exitcode})") from None
    finally:
        receive.close()
        middle.join(timeout=ANSWER_S)
    if kind == "error":
        raise OSError(value)
    return value


def _fork_run(send, argv: list[str], log: str, cwd: str, env: dict[str, str]) -> None:
    """The middle process: open the log, fork the run (which says its pid), exit."""
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        pid = os.fork()
    except OSError as exc:
        send.send(("error", f"cannot start the training process: {exc}"))
        return
    if pid:
        os.close(fd)
        send.close()  # the run says its pid itself, once it leads a session of its own
        return
    os.setsid()  # its own session: no terminal's Ctrl-C or hang-up reaches it, from the moment its pid is known
    send.send(("pid", os.getpid()))
    send.close()
    _run(argv, fd, cwd, env)


def _run(argv: list[str], fd: int, cwd: str, env: dict[str, str]) -> None:
    """The detached process's whole life: what `python -m vae_core *argv` would do. It ends as the middle process
    would have (multiprocessing's exit: finalizers run, a semaphore made by tqdm is released, the streams flushed)
    with the command's exit code; an exception's traceback goes to the log with exit code 1."""
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [sys.executable, "-m", "vae_core", *argv]
    sys.stdout.reconfigure(line_buffering=True)  # the log reads as the run goes, as PYTHONUNBUFFERED would
    sys.stderr.reconfigure(line_buffering=True)
    from vae_core import cli

    sys.exit(cli.main(argv))
