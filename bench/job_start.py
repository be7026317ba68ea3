"""How long the app's Start takes to become a training run: a process forked from the preloaded fork server
(vae_core.forkserver) against a new interpreter (`python -m vae_core train`, the former way), side by side in
one run.

    .venv/bin/python -m bench.job_start [--rounds 5]

Each round starts a 1-epoch run on 256 digits through ui.jobs.start and times
it until the process has written its first status ("running": PyTorch and the
data are loaded, the first batch is next), then until it has finished. The
fork server's first round includes starting the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ui import jobs
from vae_core import forkserver, runs
from vae_core.config import Config


def _popen(argv, *, log: Path, cwd: Path, env) -> int:
    """The former way: a new interpreter per run, its own session."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vae_core", *argv], cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**env, "PYTHONUNBUFFERED": "1"})
    _popen.children.append(proc)
    return proc.pid


_popen.children = []


def _round(root: Path, run: str) -> tuple[float, float]:
    """Seconds from Start to the run's first own status, and to its end."""
    start = time.perf_counter()
    jobs.start(root, run, Config(epochs=1, limit=256, batch_size=128))
    running = None
    while True:
        status = runs.read_status(root / run) or {}
        if running is None and status.get("state") in ("running", "finished"):
            running = time.perf_counter() - start
        if status.get("state") == "finished":
            return running, time.perf_counter() - start
        time.sleep(0.01)


def _rounds(rounds: int, label: str) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        return [_round(Path(folder), f"{label}{i}") for i in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    os.environ["VAE_NO_MAP"] = "1"  # the start, not the map after training
    forked = _rounds(rounds, "forked")
    forkserver.detach = _popen
    spawned = _rounds(rounds, "spawned")
    for proc in _popen.children:
        proc.wait()
    first = lambda times: statistics.median(t[0] for t in times)  # noqa: E731
    whole = lambda times: statistics.median(t[1] for t in times)  # noqa: E731
    print(f"fork server: first round {forked[0][0]:.2f} s to its first status (starts the server); then median "
          f"{first(forked[1:]):.2f} s to its first status, {whole(forked[1:]):.2f} s to its end")
    print(f"new interpreter: median {first(spawned):.2f} s to its first status, {whole(spawned):.2f} s to its end")
    print(f"a run starts training {first(spawned) / first(forked[1:]):.1f}x sooner from the fork server")


if __name__ == "__main__":
    main()
