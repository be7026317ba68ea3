"""Background work seen from the pages: queued places, Cancelling…, abandonment, and Evaluate's settings.

Where a test needs a computation that neither ends nor stops on its own (to see
"Cancelling…" or a queue), it puts a Workload (tests/test_tasks.py) into the
server's pool under the key the page asks for: identical requests share one
task, so the page follows that one. Everywhere else the real estimate runs.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import LATENT_MAP, RUN, SAMPLES, TSNE_CACHE, button, finish, messages, view
from tests.test_tasks import Workload, wait_until
from ui import tasks
from vae_core import runs
from vae_core.objectives import iwae_name

EVALUATE = "pages/evaluate.py"


def digest(root) -> str:
    return runs.digest(root / RUN / "checkpoint.pt")


def widget(at, kind: str, key: str):
    return next(w for w in at.get(kind) if w.key == key)


def progress_text(at) -> str:
    (bar,) = at.progress
    return bar.text


def occupy(root, *names: str, listening: bool = True) -> list[tuple[tasks.Task, Workload]]:
    """Workloads queued in the server's pool under this run's `names`, in order."""
    loads = [Workload(listening) for _ in names]
    return [(tasks.pool().submit((digest(root), name), load), load) for name, load in zip(names, loads)]


# ---------------------------------------------------------------- Cancel answered at once


def asked_for_the_largest_estimate() -> AppTest:
    """Evaluate, with its Estimate button pressed for all 10,000 images at K = 5,000."""
    at = view(EVALUATE)
    widget(at, "number_input", "eval_images").set_value(10_000)
    widget(at, "number_input", "eval_k").set_value(5000)
    at.run()
    button(at, "Estimate log p(x) with K = 5,000 on 10,000 images").click()
    return at.run()


def test_evaluate_shows_cancelling_at_once_until_the_worker_stops(root):
    ((task, load),) = occupy(root, iwae_name(100, 1000, 0), listening=False)  # the page's default estimate
    at = view(EVALUATE)
    button(at, "Estimate log p(x) with K = 100 on 1,000 images").click()
    at.run()
    assert progress_text(at).startswith("Importance-weighted bound, K = 100, 1,000 images")
    button(at, "Cancel").click()
    at.run()
    assert progress_text(at) == "Cancelling…" and not [b for b in at.button if b.label == "Cancel"]
    load.listening.set()  # the worker reaches its next check
    finish(task)
    at.run()
    assert messages(at.warning) == ["The estimate was cancelled: nothing was kept."]
    assert button(at, "Estimate log p(x) with K = 100 on 1,000 images")


def test_latent_map_shows_cancelling_at_once_until_tsne_stops(root):
    ((task, load),) = occupy(root, TSNE_CACHE, listening=False)  # in T-SNE's neighbour search, say
    at = view(LATENT_MAP)
    button(at, "Cancel T-SNE").click()
    at.run()
    assert progress_text(at).startswith("Cancelling T-SNE…") and not at.warning
    load.listening.set()
    finish(task)
    at.run()
    assert "T-SNE was cancelled" in at.warning[0].value and button(at, "Compute T-SNE")


# ---------------------------------------------------------------- a queue with places


@pytest.fixture
def one_worker(monkeypatch):
    monkeypatch.setenv("VAE_TASK_WORKERS", "1")  # read when the test's pool is made


def test_a_queued_map_shows_how_many_start_before_it(root, one_worker):
    occupy(root, "busy", "waiting")
    at = view(LATENT_MAP)
    assert progress_text(at).startswith("T-SNE queued: 1 ahead · the server runs 1 map(s) or estimate(s) at a time")


def test_a_queued_estimate_shows_how_many_start_before_it(root, one_worker):
    occupy(root, "busy")
    at = view(EVALUATE)
    button(at, "Estimate log p(x) with K = 100 on 1,000 images").click()
    at.run()
    assert progress_text(at) == "Queued: next to start · the server runs 1 estimate(s) or map(s) at a time"


# ---------------------------------------------------------------- abandoned work


def test_an_estimate_no_page_watches_is_stopped_and_the_page_says_so_on_return(root, monkeypatch):
    monkeypatch.setenv("VAE_TASK_ABANDON", "0.5")
    monkeypatch.setenv("VAE_CONFIRM_SECONDS", "1e9")  # the largest estimate, asked for without a question
    at = asked_for_the_largest_estimate()
    (task,) = tasks.pool().tasks()
    at.switch_page(SAMPLES).run()  # the Evaluate tab now shows another page: nobody polls the estimate
    wait_until(lambda: task.done)  # unwatched, on purpose
    assert task.state == tasks.ABANDONED and tasks.pool().running() == 0
    at.switch_page(EVALUATE).run()
    assert messages(at.warning)[0].startswith("The estimate stopped: no page watched it for 0.5 s")


# ---------------------------------------------------------------- Evaluate's settings


def test_evaluate_takes_any_k_from_1_to_5000_and_estimates_with_it(root):
    at = view(EVALUATE)
    k = widget(at, "number_input", "eval_k")
    assert (k.min, k.max) == (1, 5000)
    widget(at, "number_input", "eval_images").set_value(100)
    k.set_value(250)
    at.run()
    button(at, "Estimate log p(x) with K = 250 on 100 images").click()
    at.run()
    (task,) = tasks.pool().tasks()
    finish(task)
    at.run()
    assert [m.label for m in at.metric][1] == "log p(x) ≥ (K = 250, same images)"


def test_evaluate_names_the_images_in_the_elbo_headline_before_any_estimate(root):
    at = view(EVALUATE)
    widget(at, "number_input", "eval_images").set_value(500)
    at.run()
    assert [m.label for m in at.metric] == ["ELBO of the first 500 test images"]


def test_a_long_estimate_asks_first_with_its_estimated_time(root, monkeypatch):
    monkeypatch.setenv("VAE_CONFIRM_SECONDS", "1")  # this machine's rate decides the time, the test the limit
    at = asked_for_the_largest_estimate()
    assert not tasks.pool().tasks()  # nothing started yet
    (question,) = messages(at.warning)
    assert question.startswith("This estimate would take about ") and question.endswith("Start it?")
    assert "5,000 chunks of 100 samples × 100 images; one took " in question and " ms on this server" in question
    button(at, "Not now").click()
    at.run()
    assert not at.warning and not tasks.pool().tasks()
    button(at, "Estimate log p(x) with K = 5,000 on 10,000 images").click()
    at.run()
    next(b for b in at.button if b.label.startswith("Start anyway (about ")).click()
    at.run()
    assert [t.key[1] for t in tasks.pool().tasks()] == [iwae_name(5000, 10_000, 0)]
