"""Long computations (a T-SNE map, a log p(x) estimate) in the background, one per checkpoint version and setting.

    from ui.tasks import tsne_task, iwae_task
    task = tsne_task(model, means, perplexity=30, seed=0)   # starts it, or finds it running
    task.progress, task.done, task.result, task.error
    task.cancel()

A computation takes seconds to minutes. Run inside a script run, it would be
thrown away by any rerun (a click, a page switch). Here it runs in a thread
of the server, outside every script run, and is shared by all sessions that
ask for the same result; the thread touches no Streamlit API. The result is
stored in the run's disk cache under the digest of the checkpoint version it
was computed from, never under whatever file is on disk when it ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import streamlit as st
import torch

from ui.runs import Model, store_array
from vae_core import analysis, objectives


@dataclass
class Task:
    key: tuple[str, str]  # (checkpoint digest, cache name)
    progress: float = 0.0  # fraction done, 0 to 1
    result: np.ndarray | None = None
    error: str | None = None
    cancelled: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        """True once the result is stored, or the computation failed or was cancelled."""
        return self.finished.is_set()

    def cancel(self) -> None:
        """Stop at the computation's next progress report."""
        self.cancelled = True

    def report(self, fraction: float) -> None:
        self.progress = fraction


@st.cache_resource
def _tasks() -> tuple[dict[tuple[str, str], Task], threading.Lock]:
    """The server's running and finished tasks (one registry per server process)."""
    return {}, threading.Lock()


def start(model: Model, name: str, compute: Callable[[Task], np.ndarray]) -> Task:
    """The task that stores `compute(task)` under `name` for this checkpoint version, started now unless it
    is running already; `compute` reports through task.report and stops when task.cancelled is set."""
    key = (model.digest, name)
    tasks, lock = _tasks()
    with lock:
        task = tasks.get(key)
        if task is None or task.cancelled or task.error:
            task = tasks[key] = Task(key)
            threading.Thread(target=_run, args=(task, model, compute), name=f"{name}-{model.version}",
                             daemon=True).start()
    return task


def tsne_task(model: Model, means: np.ndarray, perplexity: float, seed: int) -> Task:
    """The T-SNE map of `means` (the z_loc of `model`)."""
    return start(model, analysis.tsne_name(perplexity, seed), lambda task: analysis.tsne_2d(
        means, seed=seed, perplexity=perplexity, progress=task.report, should_stop=lambda: task.cancelled))


def iwae_task(model: Model, images: torch.Tensor, k: int, seed: int) -> Task:
    """The importance-weighted bound on log p(x) of each of `images` under `model`, with `k` samples."""
    return start(model, objectives.iwae_name(k, images.shape[0], seed), lambda task: objectives.iwae_bound(
        model.vae, images, k=k, seed=seed, progress=task.report, should_stop=lambda: task.cancelled))


def forget(task: Task) -> None:
    """Drop a finished task (its result is on disk now)."""
    tasks, lock = _tasks()
    with lock:
        if tasks.get(task.key) is task:
            del tasks[task.key]


def _run(task: Task, model: Model, compute: Callable[[Task], np.ndarray]) -> None:
    try:
        result = compute(task)
        store_array(model, task.key[1], result)
        task.result = result
    except objectives.Cancelled:
        task.cancelled = True
    except Exception as exc:  # shown on the page; the thread must not die silently
        task.error = f"{type(exc).__name__}: {exc}"
    finally:
        task.finished.set()
