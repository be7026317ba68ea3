"""Reconstructions: each test digit beside k stochastic reconstructions and the one at z_loc."""

import re

import numpy as np
import streamlit as st

from ui.figures import grid
from ui.runs import mnist_test, require_model, open_page
from vae_core.analysis import elbo_per_image, reconstructions

open_page("pages/reconstructions.py")

st.title("Reconstructions")
model = require_model()
vae = model.vae
test_images, test_labels = mnist_test()
n_test = test_images.shape[0]

with st.sidebar:
    how = st.radio("Test images", ["Random", "By digit", "By index"], key="rec_how", horizontal=True)
    count = st.slider("How many", 1, 16, 6, key="rec_count")
    k = st.slider("Reconstructions per image (z draws)", 1, 8, 3, key="rec_k")
    seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="rec_seed")
    if how == "By digit":
        digit = st.selectbox("Digit", list(range(10)), key="rec_digit")
    elif how == "By index":
        text = st.text_input(f"Indices (0 to {n_test - 1}, comma separated)", "0, 1, 2", key="rec_indices")

rng = np.random.default_rng(int(seed))
if how == "Random":
    indices = rng.choice(n_test, size=count, replace=False)
elif how == "By digit":
    pool = np.flatnonzero(test_labels.numpy() == digit)
    indices = rng.choice(pool, size=count, replace=False)
else:
    try:
        indices = np.array([int(part) for part in re.split(r"[,\s]+", text.strip()) if part], dtype=int)
    except ValueError:
        st.error(f"Indices must be whole numbers separated by commas or spaces, like `0, 7, 42`; got `{text}`.")
        st.stop()
    bad = indices[(indices < 0) | (indices >= n_test)]
    if len(indices) == 0 or len(bad):
        st.error(f"Each index must be between 0 and {n_test - 1}" + (f"; these are not: {', '.join(map(str, bad))}." if len(bad) else "."))
        st.stop()

x = test_images[indices]
rec = reconstructions(vae, x, k=int(k), seed=int(seed))
elbo = elbo_per_image(vae, x, seed=int(seed))
side = vae.config.image_height, vae.config.image_width

st.caption(f"Left: the test image. Then {k} reconstructions, each the decoder's mean at its own draw "
           f"z ~ q(z | x): `reconstruct_img` is stochastic. Right: the decoder's mean at z = z_loc. "
           f"Run {model.name}, epoch {model.epoch}.")
for row, index in enumerate(indices):
    images = np.concatenate([x[row].reshape(1, *side).numpy(), rec.draws[row].numpy(), rec.at_loc[row][None].numpy()])
    label = int(test_labels[index])
    st.image(grid(images, nrow=len(images), scale=3, padding=4),
             caption=f"test #{index} · digit {label} · ELBO {elbo[row].item():.1f} nats")
