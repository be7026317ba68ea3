"""Evaluate: how likely the test digits are, the ELBO beside an importance-weighted estimate of log p(x)."""

import streamlit as st

from ui import evaluate_view
from ui.runs import mnist_test, require_model
from ui.views import open_page
from vae_core.likelihoods import LIKELIHOODS


def controls(images: int) -> tuple[int, int, int]:
    """The sidebar's test images N (of `images`), samples per image K and seed."""
    with st.sidebar:
        n = st.number_input("Test images", 100, images, step=100, key="eval_images", persist_state="session",
                            help="The first N of the 10,000 test digits.")
        k = st.number_input("Samples per image (K)", 1, evaluate_view.K_MAX, step=1, key="eval_k",
                            persist_state="session",
                            help="Importance samples from the guide for each image, 1 to 5,000: more give a tighter "
                                 "bound, and cost proportionally more.")
        seed = st.number_input("Seed", 0, 2**31 - 1, step=1, key="eval_seed", persist_state="session")
    return int(n), int(k), int(seed)


def main() -> None:
    """Title, the picked run's model, the controls, then the estimate and those kept."""
    st.title("Evaluate")
    model = require_model()
    test_images, _ = mnist_test()
    n, k, seed = controls(len(test_images))
    st.caption(f"Run {model.name}, epoch {model.epoch}, checkpoint {model.version}. The ELBO is a lower bound on "
               "log p(x); the importance-weighted bound (Burda et al. 2015) averages K weights p(x, z) / q(z | x), "
               "z ~ q(z | x), inside the log, and rises towards log p(x) as K grows.")
    st.info(LIKELIHOODS[model.vae.config.likelihood].describe(), icon=":material/info:")
    evaluate_view.estimate(model, test_images, n, k, seed)
    evaluate_view.kept(model, n, k, seed)


open_page(__file__)
main()
