"""Long computations (a T-SNE map, a log p(x) estimate) on a fixed pool of background workers.

    from ui import tasks
    task = tasks.tsne_task(model, means, perplexity=30, seed=0)   # queued, or the same request already there
    task.watch()                       # from the page's polling fragment: someone still wants it
    task.state, task.ahead, task.progress, task.done, task.error
    task.cancel()                      # task.cancelling until the worker has stopped

A computation takes seconds to minutes. Run inside a script run, it would be
thrown away by any rerun (a click, a page switch). Here it runs in a worker
thread of the server, outside every script run, and is shared by all sessions
that ask for the same result; the workers touch no Streamlit API. The result is
stored in the run's disk cache under the digest of the checkpoint version it
was computed from, never under whatever file is on disk when it ends.

The work is bounded, so that a class sharing one server keeps its pages: the
pool has VAE_TASK_WORKERS threads (default: the cores less one, at least one)
and further requests wait in a queue, each knowing its place. A request that no
page has watched for VAE_TASK_ABANDON seconds (default 60) is cancelled and
dropped: its asker closed the tab or went elsewhere. Each computation runs in a
child process at a lower CPU priority than the threads that draw pages (see
vae_core.background); the worker thread only waits on it, relays its progress
and kills it when the task should stop.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import streamlit as st
import torch

from ui.runs import Model, store_array
from vae_core import analysis, background, objectives

LOG = logging.getLogger("vae_app")
# How often a page redraws a task's progress (and tells the pool it still watches it). Each redraw is a
# fragment run on the server for every watching tab, beside the work itself: once a second is half the
# runs of twice a second, and still well inside VAE_TASK_ABANDON.
FOLLOW_SECONDS = 1.0
QUEUED, RUNNING, DONE, FAILED, CANCELLED, ABANDONED = "queued", "running", "done", "failed", "cancelled", "abandoned"


def workers_wanted() -> int:
    """Pool size: $VAE_TASK_WORKERS, else the cores less one (one left for the pages), at least one."""
    value = os.environ.get("VAE_TASK_WORKERS")
    return max(1, int(value) if value else (os.cpu_count() or 1) - 1)


def abandon_seconds() -> float:
    """Seconds a task may go unwatched before it is cancelled: $VAE_TASK_ABANDON, default 60."""
    return float(os.environ.get("VAE_TASK_ABANDON", "60"))


@dataclass(eq=False)
class Task:
    key: tuple[str, str]  # (checkpoint digest, cache name)
    work: Callable[[Task], None] = field(repr=False)  # computes and stores; checks task.should_stop()
    pool: Pool = field(repr=False)
    state: str = QUEUED  # QUEUED -> RUNNING -> DONE, FAILED, CANCELLED or ABANDONED
    progress: float = 0.0  # fraction done, 0 to 1
    result: np.ndarray | None = None
    error: str | None = None
    cancelled: bool = False  # asked to stop by a user
    watched: float = field(default_factory=time.monotonic)  # time.monotonic() of the last watch
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        """True once the result is stored, or the computation failed, was cancelled or abandoned."""
        return self.finished.is_set()

    @property
    def cancelling(self) -> bool:
        """Cancel was pressed and the worker has not stopped yet."""
        return self.cancelled and not self.done

    @property
    def abandoned(self) -> bool:
        """No page has watched it for the pool's abandon time."""
        return time.monotonic() - self.watched > self.pool.abandon

    @property
    def ahead(self) -> int | None:
        """Queued tasks that start before this one (0: next), or None once it runs or ended."""
        return self.pool.ahead(self)

    def watch(self) -> None:
        """Someone still wants this result (pages call it from their polling fragment)."""
        self.watched = time.monotonic()

    def cancel(self) -> None:
        """Stop: at once if queued, else at the computation's next progress report."""
        self.pool.cancel(self)

    def should_stop(self) -> bool:
        """What the computation polls: cancelled, or nobody watches any more."""
        return self.cancelled or self.abandoned or self.pool.closed

    def report(self, fraction: float) -> None:
        """The computation's progress callback."""
        self.progress = fraction


class Pool:
    """`workers` threads running queued tasks in order; one task per key while it is queued or running."""

    def __init__(self, workers: int, abandon: float):
        self.workers, self.abandon, self.closed = workers, abandon, False
        self._lock = threading.Condition()
        self._queue: collections.deque[Task] = collections.deque()
        self._tasks: dict[tuple[str, str], Task] = {}  # queued and running, by key
        self._running: set[Task] = set()
        self._threads = [threading.Thread(target=self._work, name=f"vae-task-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, key: tuple[str, str], work: Callable[[Task], None]) -> Task:
        """The task for `key`: the one queued or running (not being cancelled), else `work` queued now."""
        with self._lock:
            self._sweep()
            task = self._tasks.get(key)
            if task is None or task.cancelled or task.abandoned:
                task = self._tasks[key] = Task(key, work, self)
                self._queue.append(task)
                self._lock.notify()
            task.watch()
            return task

    def tasks(self) -> list[Task]:
        """The tasks queued or running now, oldest first."""
        with self._lock:
            return list(self._tasks.values())

    def running(self) -> int:
        """How many tasks run now, cancelling ones included."""
        with self._lock:
            return len(self._running)

    def ahead(self, task: Task) -> int | None:
        """Queued tasks before `task`, or None when it is not queued."""
        with self._lock:
            self._sweep()
            return self._queue.index(task) if task in self._queue else None

    def cancel(self, task: Task) -> None:
        """Mark `task` cancelled; a queued one ends now, a running one at its next check."""
        with self._lock:
            task.cancelled = True
            if task in self._queue:
                self._queue.remove(task)
                self._end(task, CANCELLED)

    def shutdown(self, wait: bool = True) -> None:
        """Cancel everything and stop the workers (tests, and a cleared cache); `wait` joins them."""
        with self._lock:
            self.closed = True
            for task in list(self._queue):
                self._end(task, CANCELLED)
            self._queue.clear()
            for task in self._running:
                task.cancelled = True
            self._lock.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _sweep(self) -> None:
        # Lock held. Queued tasks nobody watches end here, without ever taking a worker.
        for task in [t for t in self._queue if t.abandoned]:
            self._queue.remove(task)
            self._end(task, ABANDONED)

    def _end(self, task: Task, state: str) -> None:
        # Lock held.
        task.state = state
        if self._tasks.get(task.key) is task:
            del self._tasks[task.key]
        self._running.discard(task)
        task.finished.set()
        if state != DONE:
            LOG.info("Task %s %s %s", task.key[1], task.key[0][:8], state)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self.closed:
                    self._lock.wait()
                if self.closed:
                    return
                self._sweep()
                if not self._queue:
                    continue
                task = self._queue.popleft()
                task.state = RUNNING
                self._running.add(task)
            state = DONE
            try:
                task.work(task)
            except objectives.Cancelled:
                state = CANCELLED if task.cancelled or self.closed else ABANDONED
            except Exception as exc:  # shown on the page; the worker must go on with the queue
                task.error = f"{type(exc).__name__}: {exc}"
                state = FAILED
                LOG.exception("Task %s failed", task.key[1])
            with self._lock:
                self._end(task, state)


@st.cache_resource(on_release=lambda pool: pool.shutdown(wait=False))
def pool() -> Pool:
    """The server's pool of background workers (one per server process)."""
    return Pool(workers_wanted(), abandon_seconds())


def find(model: Model, name: str) -> Task | None:
    """The task queued or running for `name` on this checkpoint version, without starting one."""
    return next((t for t in pool().tasks() if t.key == (model.digest, name)), None)


def start(model: Model, name: str, compute: Callable[[Task], np.ndarray]) -> Task:
    """The task that stores `compute(task)` under `name` for this checkpoint version, queued now unless the
    same is queued or running already; `compute` reports through task.report and polls task.should_stop."""
    def work(task: Task) -> None:
        result = compute(task)
        store_array(model, name, result)
        task.result = result

    return pool().submit((model.digest, name), work)


def in_child(func: Callable, *args, **kwargs) -> Callable[[Task], np.ndarray]:
    """A task's computation: func(*args, **kwargs) in a child process at a low priority (vae_core.background
    says why not in the worker thread itself), killed when the task should stop."""
    return lambda task: background.run(func, args, kwargs, progress=task.report, should_stop=task.should_stop)


def tsne_task(model: Model, means: np.ndarray, perplexity: float, seed: int) -> Task:
    """The T-SNE map of `means` (the z_loc of `model`)."""
    return start(model, analysis.tsne_name(perplexity, seed),
                 in_child(analysis.tsne_2d, means, seed=seed, perplexity=perplexity))


def iwae_task(model: Model, images: torch.Tensor, k: int, seed: int) -> Task:
    """The importance-weighted bound on log p(x) of each of `images` under `model`, with `k` samples."""
    return start(model, objectives.iwae_name(k, images.shape[0], seed),
                 in_child(objectives.iwae_bound, model.vae, images, k=k, seed=seed))


@st.cache_resource(show_spinner=False)
def chunk_seconds(digest: str, _model: Model, _images: torch.Tensor) -> float:
    """Seconds one chunk of the bound (IWAE_CHUNK samples for each of IWAE_BATCH images) takes on this
    server, timed once per checkpoint version: the better of two runs, after a run of 8 samples of 8 images
    that warms torch up (its allocator, its threads) for a hundredth of a chunk's work."""
    images = _images[:objectives.IWAE_BATCH]
    objectives.iwae_bound(_model.vae, images[:8], k=8, seed=0)
    times = []
    for _ in range(2):
        begin = time.perf_counter()
        objectives.iwae_bound(_model.vae, images, k=objectives.IWAE_CHUNK, seed=0)
        times.append(time.perf_counter() - begin)
    return min(times)


def iwae_seconds(model: Model, images: torch.Tensor, k: int) -> tuple[float, float]:
    """(estimated seconds of the bound on `images` with `k` samples, seconds of one timed chunk): the
    bound's cost grows as images x samples, so it is that many chunks at the timed rate."""
    chunk = chunk_seconds(model.digest, model, images)
    return images.shape[0] * k / (objectives.IWAE_BATCH * objectives.IWAE_CHUNK) * chunk, chunk
