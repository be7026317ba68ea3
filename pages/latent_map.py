"""Latent map: T-SNE of the 10,000 test-set z_loc, coloured by digit."""

import numpy as np
import streamlit as st

from ui.figures import export_config, grid, latent_figure
from ui.runs import cached_array, latent_means, mnist_test, require_model, store_array, open_page
from vae_core import analysis

open_page("pages/latent_map.py")

st.title("Latent map")
info, vae = require_model()
test_images, test_labels = mnist_test()
labels = test_labels.numpy()

with st.sidebar:
    perplexity = st.slider("T-SNE perplexity", 5, 100, 30, key="map_perplexity",
                           help="Roughly how many neighbours each point keeps close.")
    seed = st.number_input("T-SNE seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="map_seed")

means = latent_means(info, vae)
elbo = f" · test ELBO {-info.test_loss:.2f}" if info.test_loss is not None else ""
title = f"the test-set z_loc by digit · run {info.name} · epoch {info.epoch}{elbo}"
cache_name = analysis.tsne_name(perplexity, int(seed))
cancelled = st.session_state.setdefault("map_cancelled", set())
chart = st.empty()
controls = st.container()


def show(xy: np.ndarray, method: str, key: str) -> None:
    fig = latent_figure(xy, labels, f"{method} of {title}", method)
    event = chart.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points",
                               config=export_config(f"latent-map-{info.name}-epoch{info.epoch}-{method.lower()}"))
    points = event.selection.points if event and event.selection else []
    if points:
        picked(points[0])


def picked(point: dict) -> None:
    index = int(point["customdata"])
    x = test_images[index:index + 1]
    rec = analysis.reconstructions(vae, x, k=1, seed=0)
    side = vae.config.image_height, vae.config.image_width
    images = np.concatenate([x.reshape(1, *side).numpy(), rec.draws[0].numpy(), rec.at_loc.numpy()])
    st.image(grid(images, nrow=3, scale=4, padding=4),
             caption=f"test #{index} · digit {labels[index]}: the image, a reconstruction, the decoder mean at z_loc")


key = (info.name, cache_name)
xy = cached_array(info, cache_name)
if xy is not None:
    show(xy, "T-SNE", "map_tsne")
    st.caption("Click a point to see its test image and reconstructions. "
               "The camera icon in the chart's toolbar saves a PNG at twice the screen resolution.")
elif key in cancelled:
    show(analysis.pca_2d(means), "PCA", "map_pca")
    controls.warning("T-SNE was cancelled: this is the PCA projection of the same codes.")
    if controls.button("Compute T-SNE", key="map_compute", icon=":material/play_arrow:"):
        cancelled.discard(key)
        st.rerun()
else:
    show(analysis.pca_2d(means), "PCA", "map_pca")
    controls.info("Showing the PCA projection (instant) while the T-SNE map is computed, "
                  "once per checkpoint and setting.")
    if controls.button("Cancel T-SNE", key="map_cancel", icon=":material/stop:"):
        cancelled.add(key)
        st.rerun()
    bar = controls.progress(0.0, text="T-SNE: finding neighbours…")
    xy = analysis.tsne_2d(means, seed=int(seed), perplexity=float(perplexity),
                          progress=lambda f: bar.progress(f, text=f"T-SNE: {f:.0%}"))
    store_array(info, cache_name, xy)
    st.rerun()
