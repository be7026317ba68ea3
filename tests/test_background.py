"""A long computation in a child process: lower priority, progress relayed, killed on a stop, errors in words."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from vae_core import background
from vae_core.objectives import Cancelled


def priority_and_steps(steps: int, progress) -> tuple[int, int]:
    """The child's nice value, after reporting `steps` fractions (module level: the child imports it by name)."""
    for step in range(1, steps + 1):
        progress(step / steps)
    return os.getpriority(os.PRIO_PROCESS, 0), os.getpid()


def forever(progress) -> None:
    while True:
        progress(0.5)
        time.sleep(0.05)


def fails(progress) -> None:
    raise ValueError("perplexity too large for 10 points")


def dies(progress) -> None:
    os._exit(9)  # as the kernel's OOM killer would leave it: no answer at all


def test_the_child_runs_at_a_lower_priority_in_another_process_and_its_progress_arrives():
    seen = []
    nice, pid = background.run(priority_and_steps, (4,), progress=seen.append)
    assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + background.NICE)
    assert pid != os.getpid()
    assert seen == [0.25, 0.5, 0.75, 1.0]


def test_a_stop_kills_the_child_and_raises_cancelled():
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    with pytest.raises(Cancelled):
        background.run(forever, should_stop=stop.is_set)


def test_the_childs_error_comes_back_with_its_message():
    with pytest.raises(RuntimeError, match="ValueError: perplexity too large for 10 points"):
        background.run(fails)


def test_a_child_that_dies_without_answering_is_reported():
    with pytest.raises(background.ChildDied, match="exit code 9"):
        background.run(dies)


def test_a_tsne_map_made_in_the_child_equals_the_one_made_here():
    from vae_core import analysis

    points = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    here = analysis.tsne_2d(points, early_exaggeration_iter=10, n_iter=10, perplexity=10)
    there = background.run(analysis.tsne_2d, (points,), {"early_exaggeration_iter": 10, "n_iter": 10, "perplexity": 10})
    np.testing.assert_array_equal(here, there)
