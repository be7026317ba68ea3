"""Evaluate: how likely the test digits are, the ELBO beside an importance-weighted estimate of log p(x)."""

import streamlit as st

from ui.codes import test_elbos
from ui.runs import cached_array, estimates, mnist_test, require_model
from ui.tasks import forget, iwae_task
from ui.views import open_page
from vae_core import analysis
from vae_core.likelihoods import note
from vae_core.objectives import iwae_name

open_page(__file__)

K_CHOICES = (1, 10, 100, 1000, 5000)  # Burda et al. 2015 report log p(x) with 5,000 samples
GO = "eval_go"  # session key: the (checkpoint, K, N, seed) whose estimate the user started
NOTE = "eval_note"  # session key: what became of the last estimate, if it did not finish

st.title("Evaluate")
model = require_model()
test_images, _ = mnist_test()

with st.sidebar:
    n = st.number_input("Test images", 100, len(test_images), step=100, key="eval_images", persist_state="session",
                        help="The first N of the 10,000 test digits.")
    k = st.select_slider("Samples per image (K)", K_CHOICES, key="eval_k", persist_state="session",
                         help="Importance samples from the guide for each image: more give a tighter bound, and "
                              "cost proportionally more.")
    seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="eval_seed", persist_state="session")
n, k, seed = int(n), int(k), int(seed)

st.caption(f"Run {model.name}, epoch {model.epoch}, checkpoint {model.version}. The ELBO is a lower bound on "
           "log p(x); the importance-weighted bound (Burda et al. 2015) averages K weights p(x, z) / q(z | x), "
           "z ~ q(z | x), inside the log, and rises towards log p(x) as K grows.")
st.info(note(model.vae.config.likelihood), icon=":material/info:")


def follow(task) -> None:
    """The estimate's progress and a Cancel button, redrawn twice a second; a full rerun shows the result."""
    if task.done:
        forget(task)
        st.rerun()
    st.progress(task.progress, text=f"Importance-weighted bound, K = {k:,}, {n:,} images: {task.progress:.0%}")
    st.button("Cancel", key="eval_cancel", icon=":material/stop:", on_click=cancel, args=(task,))


def cancel(task) -> None:
    """The Cancel button's callback (it runs before the page, whatever run it arrives in)."""
    task.cancel()
    st.session_state.pop(GO, None)
    st.session_state[NOTE] = "The estimate was cancelled: nothing was kept."


wanted = (model.digest, k, n, seed)


def start() -> None:
    """The start button: this estimate is wanted; a note on the last one is over."""
    st.session_state[GO] = wanted
    st.session_state.pop(NOTE, None)


bounds = cached_array(model, iwae_name(k, n, seed))
elbo = float(test_elbos(model)[:n].mean())
if bounds is None:
    st.metric("ELBO", f"{elbo:.2f} nats", help=f"Per image, averaged over the images; each image's ELBO is the "
                                               f"mean of {analysis.TEST_ELBO_DRAWS} one-sample estimates.")
    task = iwae_task(model, test_images[:n], k, seed) if st.session_state.get(GO) == wanted else None
    if task is not None and task.error:
        st.session_state.pop(GO, None)
        st.session_state[NOTE] = f"The estimate failed: {task.error}"
        forget(task)
        task = None
    if task is None:
        if NOTE in st.session_state:  # until the next start
            st.warning(st.session_state[NOTE], icon=":material/warning:")
        st.button(f"Estimate log p(x) with K = {k:,} on {n:,} images", type="primary", icon=":material/play_arrow:",
                  key="eval_start", on_click=start)
        st.caption("It runs on the server in the background: switching pages does not stop it.")
    else:
        st.fragment(follow, run_every=0.5)(task)
else:
    log_px = float(bounds.mean())
    cols = st.columns(3)
    cols[0].metric("ELBO", f"{elbo:.2f} nats")
    cols[1].metric(f"log p(x) ≥ (K = {k:,})", f"{log_px:.2f} nats")
    cols[2].metric("Gap", f"{log_px - elbo:.2f} nats", help="How much the ELBO falls short of the tighter bound: "
                                                            "the guide's q(z | x) is not the true posterior.")
    st.caption(f"Averages over the first {n:,} test digits, seed {seed}. Per image, the bound is "
               f"{bounds.min():.1f} at worst and {bounds.max():.1f} at best.")

kept = [e for e in estimates(model) if (e.k, e.images, e.seed) != (k, n, seed)]
if kept:
    st.subheader("Kept for this checkpoint")
    st.dataframe([{"K": e.k, "test images": e.images, "seed": e.seed, "log p(x) ≥": round(e.log_px, 2),
                   "ELBO": round(float(test_elbos(model)[:e.images].mean()), 2)} for e in kept],
                 hide_index=True, key="eval_kept")
    st.caption("Set K, the test images and the seed in the sidebar to show one of these again.")
