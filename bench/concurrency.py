"""The views' computations by 8 threads at once on two shipped runs: calls, exceptions, results unlike the serial ones.

    .venv/bin/python -m bench.concurrency                          # 5 trials of tests/test_concurrency.py's stress
    .venv/bin/python -m bench.concurrency --estimator pyro-trace   # the same, the ELBO by Pyro's trace as before

The second line swaps the plain-torch one_sample_elbos for Pyro's trace-based
estimator the views used before (tests/test_objectives.pyro_trace_elbos), to
show what the design guards against: traces of two threads interleave on
Pyro's process-wide effect stack, and seeded draws share torch's global RNG.
"""

from __future__ import annotations

import argparse
import time

from tests.test_concurrency import RUNS, THREADS, stress, view_calls
from tests.test_objectives import pyro_trace_elbos
from vae_core import objectives
from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path
from vae_core.data import load_mnist


def main() -> None:
    """Run the stress `--trials` times and print one line per trial, then the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="times each thread runs every call")
    parser.add_argument("--estimator", choices=("torch", "pyro-trace"), default="torch")
    args = parser.parse_args()
    if args.estimator == "pyro-trace":
        objectives.one_sample_elbos = pyro_trace_elbos  # what elbo_estimate and elbo_of_all call
    runs = {name: ckpt.load_state(checkpoint_path(DEFAULT_ROOT, name)).vae.eval() for name in RUNS}
    calls = view_calls(runs, load_mnist().test_images)
    totals = [0, 0, 0, 0]  # calls, exceptions, mismatches, failed trials
    for trial in range(args.trials):
        start = time.perf_counter()
        counts = stress(calls, THREADS, args.rounds)
        kinds = sorted({e.split(": ")[2] for e in counts.exceptions})  # "run: call: Type: message"
        print(f"trial {trial + 1}: {counts.calls} calls, {len(counts.exceptions)} exceptions {kinds}, "
              f"{len(counts.mismatches)} mismatches {sorted(set(counts.mismatches))}, "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        totals = [a + b for a, b in zip(totals, (counts.calls, len(counts.exceptions), len(counts.mismatches),
                                                  bool(counts.exceptions or counts.mismatches)))]
    print(f"{args.estimator}: {totals[0]} calls by {THREADS} threads on {', '.join(RUNS)}: {totals[1]} exceptions, "
          f"{totals[2]} mismatches; {totals[3]} of {args.trials} trials failed")


if __name__ == "__main__":
    main()
