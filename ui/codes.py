"""What the latent-space views share: the test codes of a checkpoint, its map, and the A/B pair.

    from ui.codes import codes, map_points, endpoint, use_as, pair_buttons
    c = codes(model)                    # latent.Codes of the 10,000 test images (loc, scale)
    xy, method = map_points(model)      # the Latent map's points: T-SNE if computed, else PCA
    use_as("a", 42)                     # a button's callback: test digit 42 becomes A
    image, z_loc, z_scale, label = endpoint(model, "a")

A and B live in the session, so the map, Draw and Interpolate hand them to each other.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from ui.figures import grid
from ui.runs import Model, cached_array, latent_means, mnist_test, store_array
from ui.settings import DRAWN, TEST
from ui.views import link
from vae_core import analysis, latent
from vae_core.config import MNIST_SIDE

DRAWING = "drawing"  # session key: the last drawing, (28, 28) float32 as MNIST was made


@st.cache_resource(max_entries=4, show_spinner="Encoding the 10,000 test digits…")
def _codes(digest: str, _model: Model) -> latent.Codes:
    return latent.encode(_model.vae, mnist_test()[0])


def codes(model: Model) -> latent.Codes:
    """z_loc and z_scale of the 10,000 test images under this checkpoint version."""
    return _codes(model.digest, model)


def map_points(model: Model) -> tuple[np.ndarray, str]:
    """The 2-D map the Latent map view shows for this version (its perplexity and seed), and its method."""
    if model.vae.config.z_dim == 2:
        return latent.prior_quantiles(codes(model).loc), "z_loc"
    name = analysis.tsne_name(st.session_state.map_perplexity, st.session_state.map_seed)  # ui.settings seeds them
    xy = cached_array(model, name)
    return (xy, "T-SNE") if xy is not None else (analysis.pca_2d(latent_means(model)), "PCA")


def test_elbos(model: Model) -> np.ndarray:
    """Each test image's ELBO (nats, the mean of 16 one-sample estimates), from the disk cache when there."""
    value = cached_array(model, analysis.TEST_ELBOS_NAME)
    if value is None:
        with st.spinner("Estimating the ELBO of the 10,000 test digits, once for this checkpoint…"):
            value = analysis.elbo_of_all(model.vae, mnist_test()[0], draws=analysis.TEST_ELBO_DRAWS, seed=0)
        store_array(model, analysis.TEST_ELBOS_NAME, value)
    return value


def use_as(end: str, index: int | None) -> None:
    """Callback: test digit `index` (None: the drawing) becomes end "a" or "b" of the pair."""
    st.session_state[f"pair_{end}_from"] = TEST if index is not None else DRAWN
    if index is not None:
        st.session_state[f"pair_{end}"] = int(index)


def pair_buttons(where, index: int | None, key: str) -> None:
    """Use as A, Use as B (test digit `index`, or the drawing if None) and a link to Interpolate, in `where`."""
    buttons = where.columns(2)
    buttons[0].button("Use as A", icon=":material/looks_one:", on_click=use_as, args=("a", index), key=f"{key}_as_a")
    buttons[1].button("Use as B", icon=":material/looks_two:", on_click=use_as, args=("b", index), key=f"{key}_as_b")
    link("interpolate", "Interpolate between A and B", where)


def neighbour_row(idx: np.ndarray, dist: np.ndarray) -> None:
    """Test digits in a row, each captioned with its index, digit and distance."""
    images, labels = mnist_test()
    for column, i, d in zip(st.columns(len(idx)), idx, dist):
        column.image(grid(images[i].reshape(1, MNIST_SIDE, MNIST_SIDE).numpy(), scale=3), width="stretch",
                     caption=f"#{i} · a {labels[i]} · {d:.2f}")


def endpoint(model: Model, end: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
    """End "a" or "b": its image (28, 28), its z_loc and z_scale (z_dim,) and a label; None if it is
    a drawing and there is none."""
    if st.session_state.get(f"pair_{end}_from") == DRAWN:
        image = st.session_state.get(DRAWING)
        if image is None:
            return None
        loc, scale = (t[0].detach().numpy() for t in model.vae.encoder(torch.from_numpy(image).reshape(1, -1)))
        return image, loc, scale, "your drawing"
    index = int(st.session_state[f"pair_{end}"])
    images, labels = mnist_test()
    c = codes(model)
    return (images[index].reshape(MNIST_SIDE, MNIST_SIDE).numpy(), c.loc[index], c.scale[index],
            f"test #{index} (a {int(labels[index])})")
