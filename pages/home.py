"""Home: what the VAE is here, and where to look."""

import streamlit as st

from ui.runs import open_page

open_page("pages/home.py")

st.title("See a VAE learn")
st.markdown(
    """
A **variational autoencoder** learns to draw MNIST digits from 50 numbers, as in
Pyro's [Variational Autoencoders tutorial](https://pyro.ai/examples/vae.html):

- **model** p(x, z): a code z is drawn from the prior Normal(0, I) in 50 dimensions, and the
  **decoder** (50 → 400 softplus → 784 sigmoid) turns it into a grey value per pixel, the mean
  of a Bernoulli that explains the image;
- **guide** q(z | x): the **encoder** (784 → 400 softplus → `z_loc`, `exp(·)` → `z_scale`)
  guesses, for an image, where its code lies;
- **ELBO**: training maximises E_q[log p(x, z) − log q(z | x)], a lower bound on log p(x),
  with stochastic variational inference (`Trace_ELBO`, Adam). Higher is better; the tutorial
  reaches about −101 nats per image after 100 epochs.
"""
)

st.subheader("Explore")
st.page_link("pages/train.py", label="**Train** a run and watch the ELBO rise and the digits sharpen", icon=":material/model_training:")
st.page_link("pages/samples.py", label="**Samples**: draw digits from the prior", icon=":material/casino:")
st.page_link("pages/reconstructions.py", label="**Reconstructions**: encode a test digit, decode it again", icon=":material/compare:")
st.page_link("pages/latent_map.py", label="**Latent map**: T-SNE of the 10,000 test codes, by digit", icon=":material/scatter_plot:")
st.caption("Pick the checkpoint to explore in the sidebar.")
