"""The engine under concurrency: the views' computations by 8 threads at once on two runs equal them run alone.

The server runs each session's script in a thread of its own and long estimates in
others, all in one process; `python -m bench.concurrency` runs this stress longer and
can swap in Pyro's trace-based estimator to show what it guards against.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
import torch

from vae_core import analysis, latent, objectives
from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path

THREADS = 8
ROUNDS = 2  # each thread runs every call this many times, in its own shuffled order
# Two shipped checkpoints of different configs: the tutorial's (Bernoulli on grey pixels, z_dim 50, one
# layer of 400) and Burda et al.'s (binarized, so likelihood.prepare draws from the RNG too; two tanh layers).
RUNS = ("tutorial", "burda-binarized")
DIGITS = [3, 42, 999, 2024, 7777, 9999]  # test indices, as a user picks them on Reconstructions


def _largest_difference(got: list[np.ndarray], serial: list[np.ndarray]) -> str:
    """The largest relative difference between two lists of arrays of the same shapes, in words: a failure
    says whether a result was another call's (far apart) or rounded apart in its last bits."""
    try:
        return f"{max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30))) for a, b in zip(got, serial)):.2g}"
    except (TypeError, ValueError):
        return "(shapes or types differ)"


@dataclass(frozen=True)
class Counts:
    calls: int
    exceptions: list[str]  # "call: ExceptionType: message" of each call that raised
    mismatches: list[str]  # names of calls whose result differed from the serial one


def view_calls(runs: dict[str, Any], test_images: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """The views' computations on each run, by name: each returns arrays that must not depend on what runs beside it."""
    ink = test_images[DIGITS[0]].reshape(28, 28).numpy()  # a real digit as Draw's "drawing"
    drawn = torch.from_numpy(latent.mnist_style(ink)).reshape(1, -1)
    picked = test_images[DIGITS]
    calls = {}
    for name, vae in runs.items():
        means = latent.encode(vae, test_images[:100]).loc
        calls |= {
            f"{name}: drawn digit's ELBO, 64 draws":
                lambda vae=vae: objectives.elbo_estimate(vae, drawn, ids=[0], seed=0, draws=64),
            f"{name}: reconstructions": lambda vae=vae: analysis.reconstructions(vae, picked, k=3, seed=0, ids=DIGITS),
            f"{name}: codes": lambda vae=vae: latent.encode(vae, test_images[:1000]),
            f"{name}: IWAE chunk": lambda vae=vae: objectives.iwae_bound(vae, test_images[:10], k=100, seed=0),
            f"{name}: T-SNE map": lambda means=means: analysis.tsne_2d(means, early_exaggeration_iter=5, n_iter=5,
                                                                          perplexity=10),
            f"{name}: ELBO parts": lambda vae=vae: objectives.elbo_parts(vae, test_images[:200].reshape(200, -1),
                                                                        seed=0),
            f"{name}: test ELBOs": lambda vae=vae: objectives.elbo_of_all(vae, test_images[:200], draws=2, seed=0),
            f"{name}: prior samples": lambda vae=vae: analysis.prior_samples(vae, 16, seed=0),
        }
    return calls


def arrays(result: Any) -> list[np.ndarray]:
    """A call's result as plain arrays: tensors, arrays and the dataclasses holding them."""
    if isinstance(result, (tuple, list)):
        return [a for part in result for a in arrays(part)]
    if hasattr(result, "__dataclass_fields__"):
        return arrays([getattr(result, f) for f in result.__dataclass_fields__])
    return [result.numpy() if torch.is_tensor(result) else np.asarray(result)]


# Results equal to within float32's last bits. Two runs in about ten saw an IWAE chunk 1 float32 ulp
# (5.9e-8 relative) from its serial value when other threads multiplied at once: the product library may
# block a matrix product differently then. What this guards against (interleaved Pyro traces, seeded draws
# from a shared RNG, another call's result) is orders of magnitude larger: `python -m bench.concurrency
# --estimator pyro-trace` shows it.
RTOL = 1e-6


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """True if `a` is `b` (shape, dtype, and each value to within RTOL, NaN at the same places)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if not np.issubdtype(a.dtype, np.floating):
        return np.array_equal(a, b)
    return bool(np.allclose(a, b, rtol=RTOL, atol=0.0, equal_nan=True))


def stress(calls: dict[str, Callable[[], Any]], threads: int = THREADS, rounds: int = ROUNDS) -> Counts:
    """Every call run alone, then all of them by `threads` threads at once: counts of calls, exceptions, mismatches."""
    serial = {name: arrays(call()) for name, call in calls.items()}
    start = threading.Barrier(threads)
    lock = threading.Lock()
    exceptions: list[str] = []
    mismatches: list[str] = []

    def worker(index: int) -> None:
        order = [name for _ in range(rounds) for name in calls]
        random.Random(index).shuffle(order)  # each thread its own mix, so different calls overlap
        start.wait()
        for name in order:
            try:
                got = arrays(calls[name]())
            except Exception as exc:  # a neighbour's failure is what this counts
                with lock:
                    exceptions.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            if len(got) != len(serial[name]) or not all(same(a, b) for a, b in zip(got, serial[name])):
                with lock:
                    mismatches.append(f"{name}: largest relative difference {_largest_difference(got, serial[name])}")

    pool = [threading.Thread(target=worker, args=(i,), name=f"stress-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return Counts(threads * rounds * len(calls), exceptions, mismatches)


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    return {name: ckpt.load_state(checkpoint_path(DEFAULT_ROOT, name)).vae.eval() for name in RUNS}


def test_eight_threads_on_two_runs_get_the_serial_results_and_never_raise(runs, mnist):
    counts = stress(view_calls(runs, mnist.test_images))
    print(f"{counts.calls} calls by {THREADS} threads: {len(counts.exceptions)} exceptions, "
          f"{len(counts.mismatches)} results unlike the serial ones")
    assert counts.exceptions == [] and counts.mismatches == []
