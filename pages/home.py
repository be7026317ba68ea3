"""Home: a picture of the model and guide, and a live thumbnail of what each view shows.

Drawn from the picked run's run.json and its kept thumbnails, without loading
the model: this is the first page a user sees, and torch takes seconds to import.
"""

import streamlit as st

from ui.home import N_SAMPLES, elbo_thumbnail, model_dot, preload_views, thumbnails
from ui.picker import picked_info
from ui.views import BY_NAME, VIEWS, link, open_page
from vae_core.config import LIKELIHOOD_NOTES, Config

open_page(__file__)

st.title("See a VAE learn")
info = picked_info()
config = info.config if info else Config()

text, picture = st.columns([3, 2], vertical_alignment="center")
text.markdown(
    "A **variational autoencoder**, as in Pyro's [VAE tutorial](https://pyro.ai/examples/vae.html). "
    "The **model** p(x, z) draws a code z from the prior and decodes it into a grey value per pixel; "
    "the **guide** q(z | x) encodes an image into where its code lies.\n\n"
    "Training maximises the **ELBO**, a lower bound on log p(x) in nats per image: higher is better, "
    "and the tutorial reaches about −101 after 100 epochs. "
    + (f"This run's likelihood is {config.likelihood}: {LIKELIHOOD_NOTES[config.likelihood]}."
       if config.likelihood != "bernoulli" else
       "The pixels are grey values under a Bernoulli, so this ELBO is not a log-likelihood of binarized MNIST.")
)
picture.graphviz_chart(model_dot(config))

thumbs = thumbnails(info) if info else None
if thumbs is None:
    st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
    link("train", "Go to Train")
    preload_views()
    st.stop()

history = thumbs.history  # the caption and pictures come from one checkpoint version, whatever is on disk now
elbo = f" · test ELBO {-history['test_loss'][-1]:.2f}" if history["test_loss"] else ""
st.caption(f"Live from run {info.name}, epoch {len(history['train_loss'])}/{info.epochs}{elbo}. "
           "Pick another run in the sidebar.")
train, samples, recs, latent = st.columns(4, vertical_alignment="bottom")  # links in one row
train.plotly_chart(elbo_thumbnail(history), config={"staticPlot": True}, key="home_elbo")
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
preload_views()  # Home is drawn: load what the other views need while the user looks at it
