"""Home's pictures: the model and guide as a diagram, and one small live thumbnail per view.

    from ui.home import elbo_thumbnail, model_dot, thumbnails
    st.graphviz_chart(model_dot(model.vae.config))     # sizes from the run's own config
    thumbs = thumbnails(model)                         # computed once per checkpoint version
    st.plotly_chart(elbo_thumbnail(thumbs.history), config={"staticPlot": True})
    st.image(thumbs.samples)

The thumbnails are arrays (a history, uint8 images) cached under the
checkpoint's content hash, so rerunning Home costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.figures import DIGIT_COLOURS, elbo_figure, grid
from ui.runs import Model, cached_array, latent_means, mnist_test
from vae_core import analysis
from vae_core import checkpoint as ckpt
from vae_core.config import Config

N_SAMPLES = 16  # a 4 x 4 grid
N_DIGITS = 4  # test digits 0-3, the same ones on every visit
SCALE = 3  # 28-px digits at 84 px: a grid about 370 px wide, a phone's full width
MAP_SIDE = 368  # px, as wide as the digit grids
TSNE = analysis.tsne_name(30, 0)  # what the Latent map computes at its default perplexity and seed
GUIDE_FILL, MODEL_FILL = DIGIT_COLOURS[0] + "22", DIGIT_COLOURS[1] + "22"  # RGBA: light tints


# The diagram's top right box: what the decoder's sigmoid output parameterises.
PIXELS = {"bernoulli": "Bernoulli pixel means", "binarized": "Bernoulli pixel means",
          "continuous-bernoulli": "continuous Bernoulli λ", "gaussian": "Gaussian means, learned scales"}


def model_dot(config: Config) -> str:
    """DOT source of the guide q(z|x) and the model p(z) p(x|z), with the sizes of `config`."""
    x, z, act = config.x_dim, config.z_dim, config.activation
    down = " → ".join(str(units) for units in config.hidden)  # the encoder's layers; the decoder mirrors them
    up = " → ".join(str(units) for units in reversed(config.hidden))
    pixels = PIXELS[config.likelihood]
    # A U: the guide runs down on the left, the model up on the right, z and
    # its prior at the bottom; two columns stay legible in a phone's 390 px.
    # Edges written upwards with dir=back keep the ranks (x and the pixel means on top).
    return f"""digraph vae {{
  bgcolor="transparent"; nodesep=0.25; ranksep=0.2;
  node [shape=box, style="rounded,filled", color="#9AA0A6", fillcolor="white",
        fontname="Helvetica,Arial,sans-serif", fontsize=11, margin="0.08,0.04", height=0.3];
  edge [color="#5F6368", fontname="Helvetica,Arial,sans-serif", fontsize=9, arrowsize=0.5];
  x [label="x: {x} {"binary" if config.likelihood == "binarized" else "grey"} pixels"];
  pixels [label="{pixels}"];
  encoder [label="encoder, guide q(z|x)\\n{x} → {down} {act}\\n→ z_loc, exp → z_scale", fillcolor="{GUIDE_FILL}"];
  decoder [label="decoder, model p(x|z)\\n{z} → {up} {act}\\n→ {x} sigmoid", fillcolor="{MODEL_FILL}"];
  z [label="z: {z}-d", shape=ellipse];
  prior [label="prior p(z) = Normal(0, I)", fillcolor="{MODEL_FILL}"];
  {{ rank=same; x; pixels; }}
  {{ rank=same; encoder; decoder; }}
  x -> encoder -> z;
  pixels -> decoder -> z [dir=back];
  z -> prior [dir=back, style=dashed];
}}"""


@dataclass(frozen=True)
class Thumbnails:
    history: dict[str, list]  # train_loss, test_epochs, test_loss up to the model's epoch
    samples: np.ndarray  # uint8 grid of N_SAMPLES prior samples
    reconstructions: np.ndarray  # uint8 grid: N_DIGITS test digits above their decoder means at z_loc
    latent: np.ndarray  # (MAP_SIDE, MAP_SIDE, 3) uint8: the test codes in 2-D, coloured by digit
    latent_method: str  # "T-SNE" or "PCA"


def thumbnails(model: Model) -> Thumbnails:
    """The four pictures of `model`, drawn once per checkpoint version (and again once its T-SNE exists)."""
    has_tsne = ckpt.cache_file(model.path, TSNE, model.digest).exists()  # a stat, not a read
    return _thumbnails(model.digest, has_tsne, model)


@st.cache_data(show_spinner="Drawing the thumbnails…", max_entries=8)
def _thumbnails(digest: str, has_tsne: bool, _model: Model) -> Thumbnails:
    # digest and has_tsne are the cache key; the model itself is not hashed (leading underscore).
    vae = _model.vae
    images, labels = mnist_test()
    rec = analysis.reconstructions(vae, images[:N_DIGITS], k=1, seed=0)
    side = vae.config.image_height, vae.config.image_width
    pairs = np.concatenate([images[:N_DIGITS].reshape(N_DIGITS, *side).numpy(), rec.at_loc.numpy()])
    xy = cached_array(_model, TSNE) if has_tsne else None
    method = "T-SNE" if xy is not None else "PCA"
    if xy is None:
        xy = analysis.pca_2d(latent_means(_model))
    return Thumbnails(_history(_model), grid(analysis.prior_samples(vae, N_SAMPLES, seed=0).numpy(), scale=SCALE),
                      grid(pairs, nrow=N_DIGITS, scale=SCALE), scatter_image(xy, labels.numpy()), method)


def _history(model: Model) -> dict[str, list]:
    try:
        h = ckpt.load_state(model.path).history
    except ckpt.CheckpointError:  # the run was removed since the model was read: an empty chart, not an error
        return {"train_loss": [], "test_epochs": [], "test_loss": []}
    # A training run may have replaced the file since the model was read; a
    # history only grows, so cutting it at the model's epoch gives the model's own.
    tests = [(e, loss) for e, loss in zip(h.test_epochs, h.test_loss) if e < model.epoch]
    return {"train_loss": h.train_loss[:model.epoch],
            "test_epochs": [e for e, _ in tests], "test_loss": [loss for _, loss in tests]}


def scatter_image(xy: np.ndarray, labels: np.ndarray, side: int = MAP_SIDE, dot: int = 2) -> np.ndarray:
    """(n, 2) points as a (side, side, 3) uint8 picture on white, one colour per digit, aspect kept."""
    lo, hi = xy.min(0), xy.max(0)
    span = float((hi - lo).max()) or 1.0
    centred = (xy - lo + (span - (hi - lo)) / 2) / span  # (n, 2) in [0, 1], the short axis centred
    col, row = np.clip((centred * (side - dot)).astype(int), 0, side - dot).T
    row = side - dot - row  # y grows upwards, rows downwards
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in DIGIT_COLOURS], np.uint8)
    image = np.full((side, side, 3), 255, np.uint8)
    order = np.random.default_rng(0).permutation(len(xy))  # no digit is always painted last, on top
    for dy in range(dot):
        for dx in range(dot):
            image[row[order] + dy, col[order] + dx] = colours[labels[order]]
    return image


def elbo_thumbnail(history: dict[str, list]) -> go.Figure:
    """The Train view's ELBO chart, shrunk: no title, a short legend, small margins."""
    fig = elbo_figure(history, title="")
    fig.update_layout(height=230, margin={"l": 0, "r": 0, "t": 10, "b": 0}, yaxis_title="ELBO (nats)",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig
