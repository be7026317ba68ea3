"""Evaluate: how likely the test digits are, the ELBO beside an importance-weighted estimate of log p(x)."""

import os

import streamlit as st

from ui import tasks
from ui.codes import test_elbos
from ui.runs import cached_array, estimates, mnist_test, require_model, say_unkept, store_array
from ui.views import fragment, open_page
from vae_core import analysis
from vae_core.likelihoods import note
from vae_core.objectives import IWAE_BATCH, IWAE_CHUNK, iwae_name

open_page(__file__)

K_MAX = 5000  # Burda et al. 2015 report log p(x) with 5,000 samples: the most this view offers
# Estimates expected to take longer than this (seconds) ask for confirmation first.
CONFIRM_SECONDS = float(os.environ.get("VAE_CONFIRM_SECONDS", "120"))
GO = "eval_go"  # session key: the (checkpoint, K, N, seed) whose estimate the user started
TASK = "eval_task"  # session key: that estimate's background task, to tell how it ended
CONFIRM = "eval_confirm"  # session key: the (checkpoint, K, N, seed) whose long estimate awaits a yes
NOTE = "eval_note"  # session key: what became of the last estimate, if it did not finish
UNKEPT = "eval_unkept"  # session key: ((checkpoint, K, N, seed), bounds, why) of the last estimate not kept on disk

st.title("Evaluate")
model = require_model()
test_images, _ = mnist_test()

with st.sidebar:
    n = st.number_input("Test images", 100, len(test_images), step=100, key="eval_images", persist_state="session",
                        help="The first N of the 10,000 test digits.")
    k = st.number_input("Samples per image (K)", 1, K_MAX, step=1, key="eval_k", persist_state="session",
                        help="Importance samples from the guide for each image, 1 to 5,000: more give a tighter "
                             "bound, and cost proportionally more.")
    seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="eval_seed", persist_state="session")
n, k, seed = int(n), int(k), int(seed)

st.caption(f"Run {model.name}, epoch {model.epoch}, checkpoint {model.version}. The ELBO is a lower bound on "
           "log p(x); the importance-weighted bound (Burda et al. 2015) averages K weights p(x, z) / q(z | x), "
           "z ~ q(z | x), inside the log, and rises towards log p(x) as K grows.")
st.info(note(model.vae.config.likelihood), icon=":material/info:")

wanted = (model.digest, k, n, seed)
workers, abandon = tasks.pool().workers, tasks.pool().abandon
ENDINGS = {  # what the page says of an estimate that ended without a result
    tasks.CANCELLED: "The estimate was cancelled: nothing was kept.",
    tasks.ABANDONED: f"The estimate stopped: no page watched it for {abandon:g} s (its tab was closed or showed "
                     "another page), so nothing was kept. Start it again and keep this page open while it runs.",
}


def duration(seconds: float) -> str:
    """A rough duration in words: '40 s', '12 min', '1.5 h'."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def follow(task) -> None:
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
        st.progress(0.0, text=f"Queued: {place} · the server runs {workers} estimate(s) or map(s) at a time")
    else:
        st.progress(task.progress, text=f"Importance-weighted bound, K = {k:,}, {n:,} images: {task.progress:.0%}")
    st.button("Cancel", key="eval_cancel", icon=":material/stop:", on_click=task.cancel)


def start() -> None:
    """This estimate is wanted now; a note on the last one, or a question, is over."""
    st.session_state[GO] = wanted
    for key in (TASK, NOTE, CONFIRM):
        st.session_state.pop(key, None)


def ask(seconds: float) -> None:
    """The Estimate button: start at once, or first ask when it would take long."""
    if seconds > CONFIRM_SECONDS:
        st.session_state[CONFIRM] = wanted
    else:
        start()


name = iwae_name(k, n, seed)
bounds, unkept = cached_array(model, name, (n,)), None
if bounds is None and st.session_state.get(UNKEPT, (None,))[0] == wanted:
    _, bounds, unkept = st.session_state[UNKEPT]
elbo = float(test_elbos(model)[:n].mean())
elbo_label = f"ELBO of the first {n:,} test images"
if bounds is None:
    st.metric(elbo_label, f"{elbo:.2f} nats", help=f"Per image, averaged over the images; each image's ELBO is "
                                                   f"the mean of {analysis.TEST_ELBO_DRAWS} one-sample estimates.")
    task = None
    if st.session_state.get(GO) == wanted:
        task = st.session_state.get(TASK) or tasks.iwae_task(model, test_images[:n], k, seed)
        st.session_state[TASK] = task
        if task.done:  # it ended without storing bounds for this page: say why, offer a new start
            if task.state == tasks.DONE:  # stored after this run read the cache, or not kept (a full disk)
                why = store_array(model, name, task.result) if cached_array(model, name, (n,)) is None else None
                if why:  # tried once more here, to learn why: this session keeps the bounds instead
                    st.session_state[UNKEPT] = (wanted, task.result, why)
                st.rerun()
            st.session_state[NOTE] = ENDINGS.get(task.state, f"The estimate failed: {task.error}")
            for key in (GO, TASK):
                st.session_state.pop(key, None)
            task = None
    if task is not None:
        fragment(follow, run_every=tasks.FOLLOW_SECONDS)(task)
    else:
        if NOTE in st.session_state:  # until the next start
            st.warning(st.session_state[NOTE], icon=":material/warning:")
        seconds, chunk = tasks.iwae_seconds(model, test_images[:n], k)
        chunks = n * k / (IWAE_BATCH * IWAE_CHUNK)
        basis = (f"{chunks:,.0f}" if chunks >= 10 else f"{chunks:.2g}") + (
                 f" chunks of {IWAE_CHUNK} samples × {IWAE_BATCH} images; "
                 f"one took {chunk * 1000:.0f} ms on this server (timed once for this checkpoint)")
        if st.session_state.get(CONFIRM) == wanted:
            st.warning(f"This estimate would take about {duration(seconds)}, longer while other work runs "
                       f"({basis}). Start it?", icon=":material/schedule:")
            yes, no = st.columns(2)
            yes.button(f"Start anyway (about {duration(seconds)})", type="primary", icon=":material/play_arrow:",
                       key="eval_confirm_yes", on_click=start)
            no.button("Not now", key="eval_confirm_no", on_click=lambda: st.session_state.pop(CONFIRM, None))
        else:
            st.button(f"Estimate log p(x) with K = {k:,} on {n:,} images", type="primary",
                      icon=":material/play_arrow:", key="eval_start", on_click=ask, args=(seconds,))
        st.caption(f"About {duration(seconds)} ({basis}). It runs on the server in the background, on one of its "
                   f"{workers} worker(s), after the work queued before it; keep this page open while it runs: an "
                   f"estimate no page watches for {abandon:g} s is stopped.")
else:
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

kept = [e for e in estimates(model) if (e.k, e.images, e.seed) != (k, n, seed)]
if kept:
    st.subheader("Kept for this checkpoint")
    st.dataframe([{"K": e.k, "test images": e.images, "seed": e.seed, "log p(x) ≥": round(e.log_px, 2),
                   "ELBO": round(float(test_elbos(model)[:e.images].mean()), 2)} for e in kept],
                 hide_index=True, key="eval_kept")
    st.caption("Set K, the test images and the seed in the sidebar to show one of these again.")
