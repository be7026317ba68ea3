"""T-SNE maps computed in the background, one per checkpoint version and setting.

    from ui.maps import tsne_task
    task = tsne_task(model, means, perplexity=30, seed=0)   # starts it, or finds it running
    task.progress, task.done, task.result, task.error
    task.cancel()

A map takes seconds to a minute. Computed inside a script run, it would be
thrown away by any rerun (a click on the preview map, a page switch). Here
it runs in a thread of the server, outside every script run, and is shared
by all sessions that ask for the same map; the thread touches no Streamlit
API. The result is stored in the run's disk cache under the digest of the
checkpoint version the latent means came from, never under whatever file is
on disk when it ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from ui.runs import Model, store_array
from vae_core import analysis


@dataclass
class Task:
    key: tuple[str, str]  # (checkpoint digest, cache name)
    progress: float = 0.0  # fraction done, 0 to 1
    result: np.ndarray | None = None  # (n, 2) once done
    error: str | None = None
    cancelled: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        """True once the map is stored, or the computation failed or was cancelled."""
        return self.finished.is_set()

    def cancel(self) -> None:
        """Stop at the next progress report (every 10 T-SNE iterations)."""
        self.cancelled = True


@st.cache_resource
def _tasks() -> tuple[dict[tuple[str, str], Task], threading.Lock]:
    """The server's running and finished tasks (one registry per server process)."""
    return {}, threading.Lock()


def tsne_task(model: Model, means: np.ndarray, perplexity: float, seed: int) -> Task:
    """The T-SNE of `means` (the z_loc of `model`), started now unless it is running already."""
    key = (model.digest, analysis.tsne_name(perplexity, seed))
    tasks, lock = _tasks()
    with lock:
        task = tasks.get(key)
        if task is None or task.cancelled or task.error:
            task = tasks[key] = Task(key)
            threading.Thread(target=_compute, args=(task, model, means, perplexity, seed),
                             name=f"tsne-{model.version}", daemon=True).start()
    return task


def forget(task: Task) -> None:
    """Drop a finished task (its map is on disk now)."""
    tasks, lock = _tasks()
    with lock:
        if tasks.get(task.key) is task:
            del tasks[task.key]


def _compute(task: Task, model: Model, means: np.ndarray, perplexity: float, seed: int) -> None:
    try:
        xy = analysis.tsne_2d(means, seed=seed, perplexity=perplexity,
                              progress=lambda f: setattr(task, "progress", f),
                              should_stop=lambda: task.cancelled)
        store_array(model, task.key[1], xy)
        task.result = xy
    except analysis.Cancelled:
        task.cancelled = True
    except Exception as exc:  # shown on the page; the thread must not die silently
        task.error = f"{type(exc).__name__}: {exc}"
    finally:
        task.finished.set()
