"""The training epoch under each likelihood, against the tutorial's Bernoulli, side by side.

    .venv/bin/python -m bench.likelihoods                  # 100 steps of each, 3 rounds (about 1 min on 2 cores)
    .venv/bin/python -m bench.likelihoods --batches 235    # whole epochs

Each likelihood trains the tutorial's network on the same preloaded images with
vae_core.train.fit (no test pass). The rounds interleave the likelihoods, so a
busy moment on the machine hits them alike; the fastest round of each counts.
The last line prints each one's time over the Bernoulli's (goal: at most 1.2x).
"""

from __future__ import annotations

import argparse

import pyro
import torch

from bench.epoch import engine_epoch
from vae_core.config import Config
from vae_core.data import load_mnist
from vae_core.likelihoods import LIKELIHOODS, Bernoulli

GOAL = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="steps timed per run (235 is a whole epoch)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the fastest of each counts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mnist = load_mnist()
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, {args.threads} thread(s), "
          f"{args.batches} steps of batch 256, best of {args.rounds} interleaved rounds")
    best = {name: float("inf") for name in LIKELIHOODS}
    for _ in range(args.rounds):
        for name in LIKELIHOODS:
            best[name] = min(best[name], engine_epoch(Config(epochs=1, likelihood=name), mnist, args.batches))
    for name in LIKELIHOODS:
        print(f"{name:22s} {best[name]:7.2f} s   {best[name] / args.batches * 1000:6.1f} ms per step")
    ratios = {name: best[name] / best[Bernoulli.name] for name in LIKELIHOODS if name != Bernoulli.name}
    print("ratios to bernoulli: " + ", ".join(f"{n} {r:.2f}x" for n, r in ratios.items())
          + f" (goal <= {GOAL}x): " + ("met" if max(ratios.values()) <= GOAL else "NOT met"))


if __name__ == "__main__":
    main()
