"""Home's pictures: the model and guide as a diagram, and one small live thumbnail per view.

    from ui.home import elbo_thumbnail, model_dot, thumbnails
    st.graphviz_chart(model_dot(info.config))          # sizes from the run's own config
    thumbs = thumbnails(info)                          # drawn once per checkpoint version, then read from disk
    st.plotly_chart(elbo_thumbnail(thumbs.history), config={"staticPlot": True})
    st.image(thumbs.samples)

The thumbnails are arrays (a history, uint8 images) kept in the run's cache
folder under the checkpoint's content hash. Home shows them from there
without loading the model, or torch: the app's first paint waits for neither.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.figures import DIGIT_COLOURS, elbo_figure
from vae_core import folders
from vae_core.config import Config

if TYPE_CHECKING:
    from ui.runs import Model

N_SAMPLES = 16  # a 4 x 4 grid
N_DIGITS = 4  # test digits 0-3, the same ones on every visit
SCALE = 3  # 28-px digits at 84 px: a grid about 370 px wide, a phone's full width
MAP_SIDE = 368  # px, as wide as the digit grids
TSNE_SETTINGS = (30, 0)  # the Latent map's default perplexity and seed: the map the thumbnail shows
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
    history: dict[str, list]  # train_loss, test_epochs, test_loss up to the checkpoint's epoch
    samples: np.ndarray  # uint8 grid of N_SAMPLES prior samples
    reconstructions: np.ndarray  # uint8 grid: N_DIGITS test digits above their decoder means at z_loc
    latent: np.ndarray  # (MAP_SIDE, MAP_SIDE, 3) uint8: the test codes in 2-D, coloured by digit
    latent_method: str  # "T-SNE" or "PCA"
    tsne: str  # the cache name of the T-SNE map the latent picture shows, or will once it exists


KEPT = "home-v1"  # the thumbnails' cache name; its version changes whenever they are drawn differently


def thumbnails(info: folders.RunInfo) -> Thumbnails | None:
    """The four pictures of the checkpoint `info` names: from the disk when drawn before, else drawn now
    and kept there. None when the run's checkpoint can no longer be read."""
    kept = _read(folders.load_cached_set(info.path, KEPT, info.digest))
    if kept is not None and not (kept.latent_method == "PCA"  # a T-SNE made since is drawn in its place
                                 and folders.cache_file(info.path, kept.tsne, info.digest).exists()):
        return kept
    # Imported here, not at the top: torch and the model take seconds to load, and Home's
    # first paint needs neither once the thumbnails are on disk.
    from ui.runs import current_model

    model = current_model()
    if model is None:
        return None
    with st.spinner("Drawing the thumbnails…"):
        thumbs = draw_thumbnails(model)
    arrays = {"samples": thumbs.samples, "reconstructions": thumbs.reconstructions, "latent": thumbs.latent,
              "latent_method": np.asarray(thumbs.latent_method), "tsne": np.asarray(thumbs.tsne),
              **{key: np.asarray(values) for key, values in thumbs.history.items()}}
    folders.store_cached_set(model.path, KEPT, model.digest, arrays)
    return thumbs


def _read(arrays: dict[str, np.ndarray] | None) -> Thumbnails | None:
    """Thumbnails from their kept arrays, or None if any is missing or not what Home draws."""
    if arrays is None:
        return None
    images = [arrays.get(key) for key in ("samples", "reconstructions", "latent")]
    history = [arrays.get(key) for key in ("train_loss", "test_epochs", "test_loss")]
    names = [arrays.get(key) for key in ("latent_method", "tsne")]
    if (any(a is None or a.dtype != np.uint8 for a in images) or images[2].shape != (MAP_SIDE, MAP_SIDE, 3)
            or any(a is None or a.ndim != 1 for a in history) or len(history[1]) != len(history[2])
            or any(a is None or a.dtype.kind != "U" or a.ndim != 0 for a in names)
            or str(names[0]) not in ("T-SNE", "PCA") or not re.fullmatch(r"[\w.+-]+", str(names[1]))):
        return None
    return Thumbnails({"train_loss": history[0].tolist(), "test_epochs": history[1].astype(int).tolist(),
                       "test_loss": history[2].tolist()}, *images, str(names[0]), str(names[1]))


def draw_thumbnails(model: Model) -> Thumbnails:
    """The four pictures of `model`, drawn from its weights."""
    from ui.figures import grid
    from ui.runs import cached_array, latent_means, mnist_test
    from vae_core import analysis

    vae = model.vae
    images, labels = mnist_test()
    rec = analysis.reconstructions(vae, images[:N_DIGITS], k=1, seed=0)
    side = vae.config.image_height, vae.config.image_width
    pairs = np.concatenate([images[:N_DIGITS].reshape(N_DIGITS, *side).numpy(), rec.at_loc.numpy()])
    tsne = analysis.tsne_name(*TSNE_SETTINGS)
    xy = cached_array(model, tsne)
    method = "T-SNE" if xy is not None else "PCA"
    if xy is None:
        xy = analysis.pca_2d(latent_means(model))
    return Thumbnails(_history(model), grid(analysis.prior_samples(vae, N_SAMPLES, seed=0).numpy(), scale=SCALE),
                      grid(pairs, nrow=N_DIGITS, scale=SCALE), scatter_image(xy, labels.numpy()), method, tsne)


def _history(model: Model) -> dict[str, list]:
    """The run's history up to the model's epoch: a run training on may have saved more since."""
    h = model.history
    tests = [(e, loss) for e, loss in zip(h["test_epochs"], h["test_loss"]) if e < model.epoch]
    return {"train_loss": h["train_loss"][:model.epoch],
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


# What the views other than Home import first: the model's loader (torch, Pyro) and the image grids
# (torchvision), about 4 s of imports on 2 cores.
VIEW_MODULES = ("ui.runs", "torchvision.utils")
_preloading = threading.Lock()


def preload_views() -> None:
    """Import VIEW_MODULES in a background thread, once per server, so the view opened after Home need
    not wait for them; a second call, or one after they are loaded, does nothing."""
    if _preloading.acquire(blocking=False):
        threading.Thread(target=_import_all, name="preload-views", daemon=True).start()


def _import_all() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only (Linux): the server first
    for name in VIEW_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # the view that needs the module imports it again and shows what is wrong
            return
