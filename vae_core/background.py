"""One long computation in a child process at a low CPU priority, with progress, cancellation and its result.

    from vae_core import background
    xy = background.run(analysis.tsne_2d, (means,), {"perplexity": 30.0},
                        progress=print, should_stop=lambda: False)       # raises Cancelled when stopped

Why a process and not a thread of the server: the server draws every
session's pages in threads of one process, under one interpreter lock. A
thread at a lower priority that holds that lock while other processes keep
the cores busy (a training run, another server) is rarely scheduled, and every
page waits behind it: seen here, a third session got no page for minutes. A
child process has its own lock, so lowering its priority (NICE) only ever
slows the child. It is forked from multiprocessing's fork server (a fork of
the threaded server itself can deadlock; the fork server is a fresh, single
threaded process), which has imported torch and the estimators once (vae_core.forkserver):
a child starts in milliseconds instead of the 2 to 4 s of a spawned
interpreter's imports (`python -m bench.background`), and takes, for the app's
computations, a few hundred MB while it runs. A cancelled child is killed: it writes
nothing, the parent stores the result.

`func` is called as func(*args, **kwargs, progress=..., should_stop=...) and
must be importable by name (a module-level function); its arguments and result
are pickled across the pipe.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from vae_core import forkserver
from vae_core.objectives import Cancelled

# The child's nice value (Linux: 0 normal, 19 lowest). At 10 a busy page thread at nice 0 gets about nine
# times the CPU of the child when both want a core, and idle cores still go to the child.
NICE = 10
POLL_SECONDS = 0.1  # how often the parent checks for a stop while it waits for the child


class ChildDied(RuntimeError):
    """The child process ended without an answer (killed, or out of memory)."""


def run(func: Callable, args: tuple = (), kwargs: dict | None = None, *,
        progress: Callable[[float], None] = lambda fraction: None,
        should_stop: Callable[[], bool] = lambda: False) -> Any:
    """func(*args, **kwargs) in a child process at NICE; its progress reports are relayed to `progress`, and
    when `should_stop()` turns true the child is killed and Cancelled raised. Its exceptions are re-raised
    here as RuntimeError with the child's message (Cancelled as Cancelled)."""
    context = forkserver.context()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, func, args, kwargs or {}), daemon=True,
                            name=f"vae-{getattr(func, '__name__', 'task')}")
    child.start()
    send.close()  # the child holds the only sending end: a dead child reads as EOFError here
    try:
        while True:
            if should_stop():
                raise Cancelled("stopped by its caller")
            if not receive.poll(POLL_SECONDS):
                continue
            try:
                kind, value = receive.recv()
            except EOFError:
                child.join(timeout=5)
                raise ChildDied(f"the background process ended without a result (exit code {child.exitcode}); "
                                "the server may be short of memory") from None
            if kind == "progress":
                progress(value)
            elif kind == "done":
                return value
            elif kind == "cancelled":
                raise Cancelled(value)
            else:
                raise RuntimeError(value)
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        receive.close()


def _child(send, func: Callable, args: tuple, kwargs: dict) -> None:
    """The child's whole life: lower its priority, compute, send the answer."""
    try:
        os.nice(NICE)
    except (AttributeError, OSError):  # not allowed here: run at the normal priority
        pass
    try:
        result = func(*args, **kwargs, progress=lambda fraction: send.send(("progress", fraction)))
        send.send(("done", result))
    except Cancelled as exc:
        send.send(("cancelled", str(exc)))
    except BaseException as exc:  # the parent shows it: the child must answer before it exits
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
