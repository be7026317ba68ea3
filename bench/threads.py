"""Engine steps per second with 1 and 2 torch threads, on a quiet machine and beside a busy core.

    .venv/bin/python -m bench.threads            # 80 steps per setting

The app trains in a process of its own while the Streamlit server (and the
user's browser) share the same cores, so the default thread count of
`python -m vae_core train` is chosen by the "busy" rows. Last line: ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp

import torch

from bench.epoch import engine_epoch
from vae_core.config import Config
from vae_core.data import load_mnist


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def timed(threads: int, busy: bool, cfg: Config, mnist, steps: int) -> float:
    torch.set_num_threads(threads)
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,)) if busy else None
    if spinner:
        spinner.start()
    try:
        return engine_epoch(cfg, mnist, steps) / steps
    finally:
        if spinner:
            stop.set()
            spinner.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    cfg, mnist = Config(epochs=1), load_mnist()
    results = {}
    for busy in (False, True):
        for threads in (1, 2):
            results[threads, busy] = timed(threads, busy, cfg, mnist, args.steps)
            print(f"{threads} thread(s), {'busy' if busy else 'quiet'} machine: {1000 * results[threads, busy]:6.1f} ms/step")
    print(f"ratios (1 thread / 2 threads): quiet {results[1, False] / results[2, False]:.2f}x, "
          f"busy {results[1, True] / results[2, True]:.2f}x (above 1: 2 threads win)")


if __name__ == "__main__":
    main()
