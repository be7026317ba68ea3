"""How long a background computation takes to start: a child forked from the preloaded fork server
against one spawned afresh (the former way), side by side in one run.

    .venv/bin/python -m bench.background [--rounds 5]

Each round runs a trivial function (it returns at once) in a child process and
times the call; the fork server's first round includes starting the server.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time

from vae_core import background, forkserver


def nothing(progress=None) -> int:
    return 1


def _timed(rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert background.run(nothing) == 1
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    forked = _timed(rounds)
    forkserver.context = lambda: multiprocessing.get_context("spawn")  # the former way, for comparison
    spawned = _timed(rounds)
    print(f"fork server: first {forked[0]:.2f} s (starts the server), then median {statistics.median(forked[1:]):.3f} s")
    print(f"spawn:       median {statistics.median(spawned):.2f} s")
    print(f"a child starts {statistics.median(spawned) / statistics.median(forked[1:]):.0f}x faster from the fork server")


if __name__ == "__main__":
    main()
