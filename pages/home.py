"""Home: a picture of the model and guide, and a live thumbnail of what each view shows."""

import streamlit as st

from ui.home import N_SAMPLES, elbo_thumbnail, model_dot, thumbnails
from ui.runs import current_model
from ui.views import BY_NAME, VIEWS, link, open_page
from vae_core.config import Config
from vae_core.likelihoods import NOTES

open_page(__file__)

st.title("See a VAE learn")
model = current_model()
config = model.vae.config if model else Config()

text, picture = st.columns([3, 2], vertical_alignment="center")
text.markdown(
    "A **variational autoencoder**, as in Pyro's [VAE tutorial](https://pyro.ai/examples/vae.html). "
    "The **model** p(x, z) draws a code z from the prior and decodes it into a grey value per pixel; "
    "the **guide** q(z | x) encodes an image into where its code lies.\n\n"
    "Training maximises the **ELBO**, a lower bound on log p(x) in nats per image: higher is better, "
    "and the tutorial reaches about −101 after 100 epochs. "
    + (f"This run's likelihood is {config.likelihood}: {NOTES[config.likelihood]}."
       if config.likelihood != "bernoulli" else
       "The pixels are grey values under a Bernoulli, so this ELBO is not a log-likelihood of binarized MNIST.")
)
picture.graphviz_chart(model_dot(config))

if model is None:
    st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
    link("train", "Go to Train")
    st.stop()

thumbs = thumbnails(model)
elbo = f" · test ELBO {-model.test_loss:.2f}" if model.test_loss is not None else ""
st.caption(f"Live from run {model.name}, epoch {model.epoch}/{model.epochs}{elbo}. "
           "Pick another run in the sidebar.")
train, samples, recs, latent = st.columns(4, vertical_alignment="bottom")  # links in one row
train.plotly_chart(elbo_thumbnail(thumbs.history), config={"staticPlot": True}, key="home_elbo")
samples.image(thumbs.samples, caption=f"{N_SAMPLES} draws from the prior", width="stretch")
recs.image(thumbs.reconstructions, caption="test digits over their reconstructions", width="stretch")
latent.image(thumbs.latent, caption=f"{thumbs.latent_method} of the test codes, by digit", width="stretch")
thumbnailed = ("train", "samples", "reconstructions", "latent_map")  # in the columns above, in order
for column, name in zip((train, samples, recs, latent), thumbnailed):
    link(name, f"**{BY_NAME[name].title}**", column)
others = [view for view in VIEWS if view.name not in ("home", *thumbnailed)]
for row in range(0, len(others), 4):  # the views without a thumbnail: title and blurb, four to a row
    for column, view in zip(st.columns(4), others[row:row + 4]):
        link(view.name, f"**{view.title}**", column)
        column.caption(view.blurb)
