"""`python -m vae_core ...` run in the test's own process: the same main(), its exit code and output,
without the 2-4 s a fresh interpreter spends importing torch.

    ran = cli("train", "--run", "t", "--epochs", "1", checkpoints=tmp_path)
    assert ran.returncode == 0, ran.stderr

The tests of what only a process shows (a kill, a signal, a stop request sent to a pid, the start before
torch loads) start a real one.
"""

from __future__ import annotations

import contextlib
import io
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ran:
    """What a finished CLI process would give: its exit code and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    """vae_core.cli.main(args) with its output captured; the signal handlers and the thread count it sets are
    put back after."""
    import torch

    from vae_core import cli

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exited:  # argparse's exit, as the process would end
                code = exited.code if isinstance(exited.code, int) else int(exited.code is not None)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        torch.set_num_threads(threads)
    return Ran(code, out.getvalue(), err.getvalue())


def cli(*args: str, checkpoints: Path) -> Ran:
    """run_cli over the checkpoints folder `checkpoints`."""
    return run_cli(*args, "--checkpoints", str(checkpoints))


def until(done, polls: int = 2400) -> bool:
    """Poll done() every 0.05 s until it holds (True) or `polls` polls have passed (False): an event, not a time."""
    for _ in range(polls):
        if done():
            return True
        time.sleep(0.05)
    return False
