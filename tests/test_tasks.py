"""The background pool of ui.tasks in plain Python: bounded, queued in order, shared, cancelled, abandoned.

The workload here stands in for a T-SNE map or an estimate: it runs until the
test releases it, and polls task.should_stop() only while `listening` is set,
as the real ones poll only between iterations or chunks (T-SNE's neighbour
search, in native code, does not poll at all).
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from ui import tasks
from vae_core import objectives


class Workload:
    """A computation the test controls: started, released, and listening for a stop or not."""

    def __init__(self, listening: bool = True):
        self.started, self.release, self.listening = threading.Event(), threading.Event(), threading.Event()
        if listening:
            self.listening.set()

    def __call__(self, task: tasks.Task) -> None:
        self.started.set()
        while not self.release.wait(0.005):
            if self.listening.is_set() and task.should_stop():
                raise objectives.Cancelled()


def wait_until(condition, polls: int = 4000) -> None:
    """Poll without a wall-clock limit, just a bounded number of polls."""
    for _ in range(polls):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("the condition never held")


@pytest.fixture
def make_pool():
    made = []

    def make(workers: int = 1, abandon: float = 60.0) -> tasks.Pool:
        made.append(tasks.Pool(workers, abandon))
        return made[-1]

    yield make
    for pool in made:
        pool.shutdown()


def test_the_pool_runs_no_more_tasks_at_once_than_it_has_workers(make_pool):
    pool = make_pool(workers=2)
    loads = [Workload() for _ in range(5)]
    queued = [pool.submit(("digest", f"job{i}"), load) for i, load in enumerate(loads)]
    wait_until(lambda: loads[0].started.is_set() and loads[1].started.is_set())
    assert pool.running() == 2
    assert [t.state for t in queued] == [tasks.RUNNING] * 2 + [tasks.QUEUED] * 3
    assert not any(load.started.is_set() for load in loads[2:])
    loads[0].release.set()
    wait_until(lambda: loads[2].started.is_set())
    assert pool.running() == 2 and not loads[3].started.is_set()


def test_a_queued_task_knows_how_many_start_before_it(make_pool):
    pool = make_pool(workers=1)
    first = Workload()
    running = pool.submit(("digest", "a"), first)
    wait_until(first.started.is_set)
    second, third = pool.submit(("digest", "b"), Workload()), pool.submit(("digest", "c"), Workload())
    assert (running.ahead, second.ahead, third.ahead) == (None, 0, 1)
    first.release.set()
    wait_until(lambda: second.state == tasks.RUNNING)
    assert third.ahead == 0


def test_identical_requests_share_one_task(make_pool):
    pool = make_pool(workers=1)
    load = Workload()
    task = pool.submit(("digest", "tsne-p30"), load)
    assert pool.submit(("digest", "tsne-p30"), Workload()) is task
    assert pool.submit(("other digest", "tsne-p30"), Workload()) is not task
    assert len(pool.tasks()) == 2


def test_a_running_task_nobody_watches_is_cancelled_and_dropped(make_pool):
    pool = make_pool(workers=1, abandon=0.2)
    load = Workload()
    task = pool.submit(("digest", "a"), load)
    wait_until(lambda: task.done)
    assert task.state == tasks.ABANDONED and load.started.is_set() and not task.cancelled
    assert pool.tasks() == [] and pool.running() == 0


def test_a_task_watched_from_a_page_is_not_abandoned(make_pool):
    pool = make_pool(workers=1, abandon=0.5)
    load = Workload()
    task = pool.submit(("digest", "a"), load)
    for _ in range(40):  # a polling fragment for twice the abandon time: a watch every 0.05 s
        task.watch()
        time.sleep(0.05)
    assert task.state == tasks.RUNNING
    load.release.set()
    wait_until(lambda: task.done)
    assert task.state == tasks.DONE


def test_a_queued_task_nobody_watches_is_dropped_without_running(make_pool):
    pool = make_pool(workers=1, abandon=0.2)
    busy = Workload(listening=False)
    pool.submit(("digest", "busy"), busy)
    waiting_load = Workload()
    waiting = pool.submit(("digest", "waiting"), waiting_load)
    wait_until(lambda: waiting.abandoned)
    busy.release.set()
    wait_until(lambda: waiting.done)
    assert waiting.state == tasks.ABANDONED and not waiting_load.started.is_set()


def test_cancel_of_a_running_task_is_cancelling_until_its_worker_stops(make_pool):
    pool = make_pool(workers=1)
    load = Workload(listening=False)  # in a phase that does not poll, like T-SNE's neighbour search
    task = pool.submit(("digest", "a"), load)
    wait_until(load.started.is_set)
    task.cancel()
    assert task.cancelling and not task.done
    load.listening.set()
    wait_until(lambda: task.done)
    assert task.state == tasks.CANCELLED and not task.cancelling


def test_cancel_of_a_queued_task_ends_it_at_once(make_pool):
    pool = make_pool(workers=1)
    pool.submit(("digest", "busy"), Workload())
    load = Workload()
    task = pool.submit(("digest", "waiting"), load)
    task.cancel()
    assert task.done and task.state == tasks.CANCELLED and task.ahead is None
    assert [t.key[1] for t in pool.tasks()] == ["busy"] and not load.started.is_set()


def test_a_request_made_again_while_its_cancel_is_under_way_starts_afresh(make_pool):
    pool = make_pool(workers=1)
    load = Workload(listening=False)
    task = pool.submit(("digest", "a"), load)
    wait_until(load.started.is_set)
    task.cancel()
    again = pool.submit(("digest", "a"), Workload())
    assert again is not task and again.state == tasks.QUEUED and task.cancelling
    load.listening.set()
    wait_until(lambda: again.state == tasks.RUNNING)
    assert task.state == tasks.CANCELLED and pool.tasks() == [again]


def test_a_failed_task_says_why_and_the_worker_goes_on_with_the_queue(make_pool):
    pool = make_pool(workers=1)

    def fail(task):
        raise ValueError("perplexity too large for 10 points")

    failed = pool.submit(("digest", "bad"), fail)
    after = pool.submit(("digest", "good"), lambda task: None)
    wait_until(lambda: after.done)
    assert failed.state == tasks.FAILED and failed.error == "ValueError: perplexity too large for 10 points"
    assert after.state == tasks.DONE


def test_the_pool_size_is_the_cores_less_one_unless_vae_task_workers_says(monkeypatch):
    monkeypatch.delenv("VAE_TASK_WORKERS", raising=False)
    assert tasks.workers_wanted() == max(1, (os.cpu_count() or 1) - 1)
    monkeypatch.setenv("VAE_TASK_WORKERS", "3")
    assert tasks.workers_wanted() == 3


def test_shutdown_stops_the_running_task_and_ends_every_worker():
    pool = tasks.Pool(2, 60.0)
    load = Workload()
    task = pool.submit(("digest", "a"), load)
    wait_until(load.started.is_set)
    pool.shutdown()
    assert task.state == tasks.CANCELLED
    assert not any(t.name.startswith("vae-task-") and t.is_alive() for t in threading.enumerate())
