"""Latent map: T-SNE of the 10,000 test-set z_loc, coloured by digit; click a point to see its digit."""

import numpy as np
import streamlit as st

from ui.figures import export_config, grid, latent_figure
from ui.maps import forget, tsne_task
from ui.runs import cached_array, latent_means, mnist_test, require_model
from ui.views import open_page
from vae_core import analysis

open_page(__file__)

PICKED = "map_picked"  # session key: the test index of the clicked point; it outlives reruns and maps
CANCELLED = "map_cancelled"  # session key: (digest, map name) pairs whose T-SNE the user cancelled

st.title("Latent map")
model = require_model()
test_images, test_labels = mnist_test()
labels = test_labels.numpy()

with st.sidebar:
    perplexity = st.slider("T-SNE perplexity", 5, 100, key="map_perplexity", persist_state="session",
                           help="Roughly how many neighbours each point keeps close.")
    seed = st.number_input("T-SNE seed", min_value=0, max_value=2**31 - 1, step=1, key="map_seed", persist_state="session")


def remember_pick(chart_key: str) -> None:
    """Selection callback: keep the clicked point's test index for the session."""
    points = st.session_state[chart_key].selection.points
    if points:
        st.session_state[PICKED] = int(points[0]["customdata"])


def show_map(xy: np.ndarray, method: str) -> None:
    """The map, the picked point ringed over the faded others."""
    picked = st.session_state.get(PICKED)
    fig = latent_figure(xy, labels, f"{method} · run {model.name} · epoch {model.epoch}", picked=picked)
    key = f"map_{method.lower()}"
    st.plotly_chart(fig, key=key, on_select=lambda: remember_pick(key), selection_mode="points",
                    config=export_config(f"latent-map-{model.name}-epoch{model.epoch}-{method.lower()}"))
    st.caption(f"{method} of the 10,000 test images' z_loc ({model.vae.config.z_dim} dimensions), "
               f"checkpoint {model.version} (run {model.name} after epoch {model.epoch}). "
               "Click a point to see its digit. The camera icon saves a PNG.")


def show_pick(index: int) -> None:
    """The picked test digit, one reconstruction and the decoder mean at its z_loc."""
    rec = analysis.reconstructions(model.vae, test_images[index:index + 1], k=1, seed=0)
    side = model.vae.config.image_height, model.vae.config.image_width
    images = np.concatenate([test_images[index].reshape(1, *side).numpy(), rec.draws[0].numpy(),
                             rec.at_loc.numpy()])
    st.image(grid(images, nrow=3, scale=4, padding=4),
             caption=f"test #{index} · digit {labels[index]}: the image, a reconstruction, the decoder mean at z_loc")


def follow(task) -> None:
    """T-SNE's progress and a Cancel button, redrawn twice a second; a full rerun draws the map."""
    if task.done:
        forget(task)
        st.rerun()
    done = f"{task.progress:.0%}" if task.progress else "finding each code's neighbours"
    st.progress(task.progress, text=f"T-SNE of the same codes: {done} · the PCA projection shows meanwhile")
    if st.button("Cancel T-SNE", key="map_cancel", icon=":material/stop:"):
        task.cancel()
        st.session_state.setdefault(CANCELLED, set()).add(task.key)
        st.rerun()


means = latent_means(model)
name = analysis.tsne_name(perplexity, int(seed))
xy = cached_array(model, name)
if xy is not None:
    show_map(xy, "T-SNE")
else:
    show_map(analysis.pca_2d(means), "PCA")
    if (model.digest, name) in st.session_state.get(CANCELLED, set()):
        st.warning("T-SNE was cancelled: this is the PCA projection of the same codes.")
        if st.button("Compute T-SNE", key="map_compute", icon=":material/play_arrow:"):
            st.session_state[CANCELLED].discard((model.digest, name))
            st.rerun()
    else:
        task = tsne_task(model, means, perplexity=float(perplexity), seed=int(seed))
        if task.error:
            st.error(f"T-SNE failed: {task.error}", icon=":material/error:")
        else:
            st.fragment(follow, run_every=0.5)(task)

if PICKED in st.session_state:
    show_pick(st.session_state[PICKED])
st.caption("How to read a T-SNE map: it keeps each code's near neighbours near, and nothing else. "
           "The size of a cluster and the gaps between clusters carry no meaning, and another perplexity "
           "(or seed) draws another picture. PCA keeps distances along its two axes, but squeezes "
           f"{model.vae.config.z_dim} dimensions into two.")
