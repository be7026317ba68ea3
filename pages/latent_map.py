"""Latent map: T-SNE of the 10,000 test-set z_loc, coloured by digit; click a point to see its digit."""

import streamlit as st

from ui import latent_panels as panels
from ui.codes import codes
from ui.runs import mnist_test, require_model
from ui.views import open_page


def settings(z_dim: int) -> tuple[int, int]:
    """T-SNE's perplexity and seed from the sidebar; two-dimensional codes are drawn as they are, without them."""
    if z_dim == 2:
        return st.session_state.map_perplexity, st.session_state.map_seed
    with st.sidebar:
        perplexity = st.slider("T-SNE perplexity", 5, 100, key="map_perplexity", persist_state="session",
                               help="Roughly how many neighbours each point keeps close.")
        seed = st.number_input("T-SNE seed", min_value=0, max_value=2**31 - 1, step=1, key="map_seed",
                               persist_state="session")
    return perplexity, int(seed)


def how_to_read(z_dim: int) -> None:
    """What the map's distances mean, for 2-d codes or for a projection."""
    if z_dim == 2:
        st.caption("This run's codes have two dimensions: the map draws each test digit's z_loc as it is, each "
                   "coordinate as its quantile under the prior N(0, 1), so that the decoded grid beside it covers "
                   "the same square (Kingma & Welling 2013, Fig. 4).")
    else:
        st.caption("How to read a T-SNE map: it keeps each code's near neighbours near, and nothing else. "
                   "The size of a cluster and the gaps between clusters carry no meaning, and another perplexity "
                   "(or seed) draws another picture. PCA keeps distances along its two axes, but squeezes "
                   f"{z_dim} dimensions into two.")


def main() -> None:
    """Title, T-SNE settings, the map, then what is selected or picked on it."""
    st.title("Latent map")
    model = require_model()
    z_dim = model.vae.config.z_dim
    perplexity, seed = settings(z_dim)
    c = codes(model)  # once per run: every panel gets these
    labels = mnist_test()[1].numpy()
    panels.draw_map(model, c, labels, perplexity, seed)
    panels.show_selection(labels)
    panels.show_pick(model, c, labels)
    how_to_read(z_dim)


open_page(__file__)
main()
