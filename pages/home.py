"""Home: a picture of the model and guide, and a live thumbnail of what each view shows.

Drawn from the picked run's run.json and its kept thumbnails, without loading
the model: this is the first page a user sees, and torch takes seconds to import.
"""

import streamlit as st

from ui.figures import chart_config
from ui.home import (N_SAMPLES, N_TRAVERSED, compared_histories, elbo_histogram, elbo_thumbnail, model_dot,
                     preload_views, recorded_timeline, runs_thumbnail, thumbnails, timeline_thumbnail, Thumbnails)
from ui.picker import checkpoints_root, picked_info
from ui.views import VIEWS, link, open_page
from vae_core.config import Config
from vae_core.runs import RunInfo, run_dir
from vae_core.likelihoods import LIKELIHOODS

CARDS_PER_ROW = 3  # ten views: rows of three on a wide screen, one column on a phone


def introduction(config: Config) -> None:
    """The title, what a VAE is, and the model and guide of `config` as a diagram."""
    st.title("See a VAE learn")
    text, picture = st.columns([3, 2], vertical_alignment="center")
    text.markdown(
        "A **variational autoencoder**, as in Pyro's [VAE tutorial](https://pyro.ai/examples/vae.html). "
        "The **model** p(x, z) draws a code z from the prior and decodes it into a grey value per pixel; "
        "the **guide** q(z | x) encodes an image into where its code lies.\n\n"
        "Training maximises the **ELBO**, a lower bound on log p(x) in nats per image: higher is better, "
        "and the tutorial reaches about −101 after 100 epochs. "
        + LIKELIHOODS[config.likelihood].home()
    )
    picture.graphviz_chart(model_dot(config))


def picture(card, name: str, thumbs: Thumbnails, run: str) -> None:
    """View `name`'s thumbnail of run `run` in its card: a kept picture with its caption, or a static chart."""
    images = {  # view: (its kept picture, what the picture shows)
        "samples": (thumbs.samples, f"{N_SAMPLES} draws from the prior"),
        "reconstructions": (thumbs.reconstructions, "test digits over their reconstructions"),
        "latent_map": (thumbs.latent, f"{thumbs.latent_method} of the test codes, by digit"),
        "interpolate": (thumbs.interpolate, "test #0 to #1 and #2 to #3: straight, then slerp"),
        "traverse": (thumbs.traverse, f"test #0, its {N_TRAVERSED} most used dimensions from −3 to +3"),
        "draw": (thumbs.draw, "drawn digits over what the VAE reads in them"),
    }
    if name in images:
        image, caption = images[name]
        card.image(image, caption=caption, width="stretch")
        return
    if name == "train":
        fig, caption = elbo_thumbnail(thumbs.history), "the ELBO per image, epoch by epoch"
    elif name == "evaluate":
        fig, caption = elbo_histogram(thumbs.elbo_counts, thumbs.elbo_edges), "the test digits' ELBOs, one draw each"
    elif name == "timeline" and (line := recorded_timeline(run_dir(checkpoints_root(), run))[0]) is not None:
        fig, caption = timeline_thumbnail(line), f"KL per latent dimension over {len(line.epochs)} recorded epochs"
    elif name == "compare":
        histories = compared_histories(checkpoints_root(), run)
        fig, caption = runs_thumbnail(histories), f"the test ELBO of {len(histories)} run(s)"
    else:  # nothing of this run to show (no recorded epochs): what the view shows, in its registry's words
        card.caption(next(view.blurb for view in VIEWS if view.name == name))
        return
    card.plotly_chart(fig, config=chart_config(staticPlot=True), key=f"home_{name}")
    card.caption(caption)


def cards(info: RunInfo, thumbs: Thumbnails) -> None:
    """One bordered card per view, its link above its own picture: a phone stacks the columns card by card,
    so each link stays with its picture."""
    history = thumbs.history  # the caption and pictures come from one checkpoint version, whatever is on disk now
    elbo = f" · test ELBO {-history['test_loss'][-1]:.2f}" if history["test_loss"] else ""
    st.caption(f"Live from run {info.name}, epoch {len(history['train_loss'])}/{info.epochs}{elbo}. "
               "Pick another run in the sidebar.")
    views = [view for view in VIEWS if view.name != "home"]
    for row in range(0, len(views), CARDS_PER_ROW):
        for column, view in zip(st.columns(CARDS_PER_ROW), views[row:row + CARDS_PER_ROW]):
            card = column.container(border=True)
            link(view.name, f"**{view.title}**", card)
            picture(card, view.name, thumbs, info.name)


def main(info: RunInfo | None) -> None:
    """Home of the picked run `info` (None: no run yet)."""
    introduction(info.config if info else Config())
    thumbs = thumbnails(info) if info else None
    if thumbs is None:
        st.info("There is no trained model yet. Train one first; even one epoch is enough to look around.")
        link("train", "Go to Train")
    else:
        cards(info, thumbs)
    preload_views()  # Home is drawn: load what the other views need while the user looks at it


open_page(__file__)
main(picked_info())
