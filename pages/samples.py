"""Samples: decoder means at codes drawn from the prior."""

import streamlit as st

from ui.figures import grid, png_bytes
from ui.runs import require_model
from ui.views import open_page
from vae_core.analysis import prior_samples


def controls() -> tuple[int, int]:
    """The sidebar: how many images, and the seed (New samples moves it on by one)."""
    with st.sidebar:
        n = st.slider("Images", min_value=16, max_value=400, step=1, key="samples_n", persist_state="session")
        seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="samples_seed",
                               persist_state="session")
        st.button("New samples", icon=":material/casino:", key="samples_new", width="stretch",
                  on_click=lambda: st.session_state.update(samples_seed=st.session_state.samples_seed + 1))
    return n, seed


def main() -> None:
    """Title, controls, the grid of samples and its download."""
    st.title("Samples from the prior")
    model = require_model()
    n, seed = controls()
    st.caption(f"z ~ Normal(0, I) in {model.vae.config.z_dim} dimensions, then the decoder's pixel means. "
               f"Run {model.name}, epoch {model.epoch}, seed {seed}.")
    image = grid(prior_samples(model.vae, n, seed=seed).numpy(), scale=3 if n <= 100 else 2)
    st.image(image, caption=f"{n} samples", width="content")
    st.download_button("Download PNG", png_bytes(image),
                       file_name=f"samples-{model.name}-epoch{model.epoch}-seed{seed}.png",
                       mime="image/png", icon=":material/download:", key="samples_download")


open_page(__file__)
main()
