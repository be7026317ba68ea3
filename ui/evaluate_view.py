"""The Evaluate page's panels: the ELBO beside an importance-weighted bound on log p(x), estimated in the
background (asked first when long, followed while queued or running), and the estimates kept per checkpoint.

    from ui import evaluate_view
    evaluate_view.estimate(model, test_images, n=1000, k=50, seed=0)   # kept, under way, or offered
    evaluate_view.kept(model, n=1000, k=50, seed=0)                     # the other estimates of this checkpoint
"""

from __future__ import annotations

import os

import streamlit as st

from ui import tasks
from ui.codes import test_elbos
from ui.runs import Model, cached_array, estimates, say_unkept, store_array
from ui.views import fragment
from vae_core import objectives
from vae_core.objectives import IWAE_BATCH, IWAE_CHUNK, iwae_name

K_MAX = 5000  # Burda et al. 2015 report log p(x) with 5,000 samples: the most this view offers
GO = "eval_go"  # session key: the (checkpoint, K, N, seed) whose estimate the user started
TASK = "eval_task"  # session key: that estimate's background task, to tell how it ended
CONFIRM = "eval_confirm"  # session key: the (checkpoint, K, N, seed) whose long estimate awaits a yes
NOTE = "eval_note"  # session key: what became of the last estimate, if it did not finish
UNKEPT = "eval_unkept"  # session key: ((checkpoint, K, N, seed), bounds, why) of the last estimate not kept on disk


def confirm_seconds() -> float:
    """Estimates expected to take longer than this (seconds) ask for confirmation first ($VAE_CONFIRM_SECONDS)."""
    return float(os.environ.get("VAE_CONFIRM_SECONDS", "120"))


def duration(seconds: float) -> str:
    """A rough duration in words: '40 s', '12 min', '1.5 h'."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _ending(task) -> str:
    """What the page says of an estimate that ended without a result."""
    if task.state == tasks.CANCELLED:
        return "The estimate was cancelled: nothing was kept."
    if task.state == tasks.ABANDONED:
        return (f"The estimate stopped: no page watched it for {tasks.pool().abandon:g} s (its tab was closed or "
                "showed another page), so nothing was kept. Start it again and keep this page open while it runs.")
    return f"The estimate failed: {task.error}"


def follow(task, k: int, n: int) -> None:
    """The estimate's place in the queue or its progress, and Cancel, redrawn every tasks.FOLLOW_SECONDS; a full rerun
    shows how it ended. Each redraw tells the pool this page still watches the estimate."""
    if task.done:
        st.rerun()
    task.watch()
    if task.cancelling:  # the worker stops at its next chunk
        st.progress(task.progress, text="Cancelling…")
        return
    ahead = task.ahead
    if ahead is not None:
        place = f"{ahead} ahead" if ahead else "next to start"
        st.progress(0.0, text=f"Queued: {place} · the server runs {tasks.pool().workers} estimate(s) or map(s) at "
                              f"a time")
    else:
        st.progress(task.progress, text=f"Importance-weighted bound, K = {k:,}, {n:,} images: {task.progress:.0%}")
    st.button("Cancel", key="eval_cancel", icon=":material/stop:", on_click=task.cancel)


def start(wanted: tuple) -> None:
    """This estimate is wanted now; a note on the last one, or a question, is over."""
    st.session_state[GO] = wanted
    for key in (TASK, NOTE, CONFIRM):
        st.session_state.pop(key, None)


def ask(wanted: tuple, seconds: float) -> None:
    """The Estimate button: start at once, or first ask when it would take long."""
    if seconds > confirm_seconds():
        st.session_state[CONFIRM] = wanted
    else:
        start(wanted)


def _task(model: Model, images, wanted: tuple, name: str, k: int, seed: int):
    """The estimate under way for `wanted`, if the user started it; None once it ended (and why is noted)."""
    if st.session_state.get(GO) != wanted:
        return None
    task = st.session_state.get(TASK) or tasks.iwae_task(model, images, k, seed)
    st.session_state[TASK] = task
    if not task.done:
        return task
    if task.state == tasks.DONE:  # stored after this run read the cache, or not kept (a full disk)
        n = images.shape[0]
        why = store_array(model, name, task.result) if cached_array(model, name, (n,)) is None else None
        if why:  # tried once more here, to learn why: this session keeps the bounds instead
            st.session_state[UNKEPT] = (wanted, task.result, why)
        st.rerun()
    st.session_state[NOTE] = _ending(task)  # it ended without storing bounds for this page: offer a new start
    for key in (GO, TASK):
        st.session_state.pop(key, None)
    return None


def _offer(model: Model, images, wanted: tuple, k: int) -> None:
    """The Estimate button with its cost, or the question before a long one."""
    if NOTE in st.session_state:  # until the next start
        st.warning(st.session_state[NOTE], icon=":material/warning:")
    n = images.shape[0]
    seconds, chunk = tasks.iwae_seconds(model, images, k)
    chunks = n * k / (IWAE_BATCH * IWAE_CHUNK)
    basis = (f"{chunks:,.0f}" if chunks >= 10 else f"{chunks:.2g}") + (
             f" chunks of {IWAE_CHUNK} samples × {IWAE_BATCH} images; "
             f"one took {chunk * 1000:.0f} ms on this server (timed once for this checkpoint)")
    if st.session_state.get(CONFIRM) == wanted:
        st.warning(f"This estimate would take about {duration(seconds)}, longer while other work runs "
                   f"({basis}). Start it?", icon=":material/schedule:")
        yes, no = st.columns(2)
        yes.button(f"Start anyway (about {duration(seconds)})", type="primary", icon=":material/play_arrow:",
                   key="eval_confirm_yes", on_click=start, args=(wanted,))
        no.button("Not now", key="eval_confirm_no", on_click=lambda: st.session_state.pop(CONFIRM, None))
    else:
        st.button(f"Estimate log p(x) with K = {k:,} on {n:,} images", type="primary",
                  icon=":material/play_arrow:", key="eval_start", on_click=ask, args=(wanted, seconds))
    pool = tasks.pool()
    st.caption(f"About {duration(seconds)} ({basis}). It runs on the server in the background, on one of its "
               f"{pool.workers} worker(s), after the work queued before it; keep this page open while it runs: an "
               f"estimate no page watches for {pool.abandon:g} s is stopped.")


def _result(bounds, unkept: str | None, elbo: float, elbo_label: str, n: int, k: int, seed: int) -> None:
    """The ELBO, the bound and their gap."""
    for key in (GO, TASK):
        st.session_state.pop(key, None)
    log_px = float(bounds.mean())
    cols = st.columns(3)
    cols[0].metric(elbo_label, f"{elbo:.2f} nats")
    cols[1].metric(f"log p(x) ≥ (K = {k:,}, same images)", f"{log_px:.2f} nats")
    cols[2].metric("Gap", f"{log_px - elbo:.2f} nats", help="How much the ELBO falls short of the tighter bound: "
                                                            "the guide's q(z | x) is not the true posterior.")
    st.caption(f"Averages over the first {n:,} test digits, seed {seed}. Per image, the bound is "
               f"{bounds.min():.1f} at worst and {bounds.max():.1f} at best.")
    say_unkept("this estimate", unkept, "This session keeps it; another must estimate it again.")


def estimate(model: Model, test_images, n: int, k: int, seed: int) -> None:
    """The ELBO of the first `n` test digits and the bound with `k` samples: kept, under way, or offered."""
    wanted, name = (model.digest, k, n, seed), iwae_name(k, n, seed)
    bounds, unkept = cached_array(model, name, (n,)), None
    if bounds is None and st.session_state.get(UNKEPT, (None,))[0] == wanted:
        _, bounds, unkept = st.session_state[UNKEPT]
    elbo = float(test_elbos(model)[:n].mean())
    elbo_label = f"ELBO of the first {n:,} test images"
    if bounds is not None:
        _result(bounds, unkept, elbo, elbo_label, n, k, seed)
        return
    st.metric(elbo_label, f"{elbo:.2f} nats", help=f"Per image, averaged over the images; each image's ELBO is "
                                                   f"the mean of {objectives.TEST_ELBO_DRAWS} one-sample estimates.")
    task = _task(model, test_images[:n], wanted, name, k, seed)
    if task is not None:
        fragment(follow, run_every=tasks.FOLLOW_SECONDS)(task, k, n)
    else:
        _offer(model, test_images[:n], wanted, k)


def kept(model: Model, n: int, k: int, seed: int) -> None:
    """The other estimates kept for this checkpoint, with the ELBO of the same images."""
    others = [e for e in estimates(model) if (e.k, e.images, e.seed) != (k, n, seed)]
    if not others:
        return
    st.subheader("Kept for this checkpoint")
    st.dataframe([{"K": e.k, "test images": e.images, "seed": e.seed, "log p(x) ≥": round(e.log_px, 2),
                   "ELBO": round(float(test_elbos(model)[:e.images].mean()), 2)} for e in others],
                 hide_index=True, key="eval_kept")
    st.caption("Set K, the test images and the seed in the sidebar to show one of these again.")
