"""Home's pictures: the model and guide as a diagram, and one small live thumbnail per view.

    from ui.home import elbo_thumbnail, model_dot, thumbnails
    st.graphviz_chart(model_dot(info.config))          # sizes from the run's own config
    thumbs = thumbnails(info)                          # drawn once per checkpoint version, then read from disk
    st.plotly_chart(elbo_thumbnail(thumbs.history), config=chart_config(staticPlot=True))
    st.image(thumbs.samples)                           # one picture per view: samples, interpolate, draw, ...

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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui.figures import DIGIT_COLOURS, elbo_figure
from ui.timeline_figures import kl_heatmap
from vae_core import run_cache
from vae_core.runs import RunInfo, read_history, run_dir
from vae_core.config import Config
from vae_core.likelihoods import LIKELIHOODS
from vae_core.timeline import Timeline, read_timeline
from vae_core.timeline import stamp as timeline_stamp

if TYPE_CHECKING:
    from ui.runs import Model

N_SAMPLES = 12  # a 3 x 4 grid
N_DIGITS = 4  # test digits 0-3, the same ones on every visit
SCALE = 3  # 28-px digits at 84 px: a grid about 370 px wide, a phone's full width
MAP_SIDE = 368  # px, as wide as the digit grids
ASPECT = 4 / 3  # width / height of every picture: the cards of a row are one height on a wide screen
PAIRS = ((0, 1), (2, 3))  # Interpolate's test digits: A = 0, B = 1 as the view opens, and one pair more
STEPS = 6  # codes along each path, ends included
N_TRAVERSED, SPAN = 4, 3.0  # Traverse: the dimensions of most KL, each set to STEPS values in ±SPAN prior sds
# Draw: four digits drawn as strokes (x, y in [0, 1] of a canvas, top left at 0, 0), as a user would draw them.
STROKES = {"0": [(0.5, 0.15), (0.3, 0.3), (0.28, 0.65), (0.5, 0.85), (0.7, 0.65), (0.7, 0.3), (0.5, 0.15)],
           "1": [(0.45, 0.25), (0.55, 0.15), (0.55, 0.85)],
           "4": [(0.62, 0.85), (0.62, 0.15), (0.3, 0.62), (0.75, 0.62)],
           "7": [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]}
CANVAS_SIDE, STROKE_WIDTH = 280, 20  # px, as on the Draw view
ELBO_BINS = 40  # bars of the test ELBOs' histogram
COMPARED = 4  # runs on the Compare card: the picked one and the newest others
TSNE_SETTINGS = (30, 0)  # the Latent map's default perplexity and seed: the map the thumbnail shows
GUIDE_FILL, MODEL_FILL = DIGIT_COLOURS[0] + "22", DIGIT_COLOURS[1] + "22"  # RGBA: light tints


def model_dot(config: Config) -> str:
    """DOT source of the guide q(z|x) and the model p(z) p(x|z), with the sizes of `config`."""
    x, z, act = config.x_dim, config.z_dim, config.activation
    down = " → ".join(str(units) for units in config.hidden)  # the encoder's layers; the decoder mirrors them
    up = " → ".join(str(units) for units in reversed(config.hidden))
    likelihood = LIKELIHOODS[config.likelihood]  # the top right box: what the decoder's sigmoid parameterises
    # A U: the guide runs down on the left, the model up on the right, z and
    # its prior at the bottom; two columns stay legible in a phone's 390 px.
    # Edges written upwards with dir=back keep the ranks (x and the pixel means on top).
    return f"""digraph vae {{
  bgcolor="transparent"; nodesep=0.25; ranksep=0.2;
  node [shape=box, style="rounded,filled", color="#9AA0A6", fillcolor="white",
        fontname="Helvetica,Arial,sans-serif", fontsize=11, margin="0.08,0.04", height=0.3];
  edge [color="#5F6368", fontname="Helvetica,Arial,sans-serif", fontsize=9, arrowsize=0.5];
  x [label="x: {x} {"binary" if likelihood.binarizes else "grey"} pixels"];
  pixels [label="{likelihood.pixels}"];
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
    latent_method: str  # "z_loc" (2-d codes), "T-SNE" or "PCA": latent.MAP_METHODS
    tsne: str  # the cache name of the T-SNE map the latent picture shows, or will once it exists
    interpolate: np.ndarray  # uint8 grid: for each of PAIRS a linear row, then a slerp row, STEPS codes each
    traverse: np.ndarray  # uint8 grid: test digit 0 with each of N_TRAVERSED dimensions set to STEPS values
    draw: np.ndarray  # uint8 grid: the STROKES digits over the VAE's reading of them
    elbo_counts: np.ndarray  # (ELBO_BINS,) test digits per bin of their one-draw ELBO
    elbo_edges: np.ndarray  # (ELBO_BINS + 1,) the bins' edges, nats


PICTURES = ("samples", "reconstructions", "latent", "interpolate", "traverse", "draw")  # the uint8 fields
KEPT = "home-v3"  # the thumbnails' cache name; its version changes whenever they are drawn differently
# What the kept file must hold, name: (shape, dtype), None axes of any length: checked from its zip directory
# and each array's header before anything is decompressed.
KEPT_ARRAYS = {**{key: ((None, None), np.uint8) for key in PICTURES}, "latent": ((MAP_SIDE, None, 3), np.uint8),
               "elbo_counts": ((ELBO_BINS,), np.integer), "elbo_edges": ((ELBO_BINS + 1,), np.floating),
               "latent_method": ((), np.str_), "tsne": ((), np.str_), "train_loss": ((None,), np.floating),
               "test_epochs": ((None,), np.number), "test_loss": ((None,), np.floating)}  # [] is float64
# Bytes one kept array may hold: the largest, the latent picture, takes 0.54 MB and a 10,000-epoch history
# 80 kB; a 20,000 x 20,000 picture (400 MB) is damage.
KEPT_BYTES = 2 << 20


def thumbnails(info: RunInfo) -> Thumbnails | None:
    """The four pictures of the checkpoint `info` names: from the disk when drawn before, else drawn now
    and kept there (run_cache.cached). None when the run's checkpoint can no longer be read."""
    def fresh(arrays: dict[str, np.ndarray]) -> bool:  # consistent, and no T-SNE made since to draw in its place
        kept = _read(arrays)
        return kept is not None and not (kept.latent_method == "PCA"
                                         and run_cache.cache_file(info.path, kept.tsne, info.digest).exists())

    arrays, error = run_cache.cached(info.path, KEPT, info.digest, _drawn, KEPT_ARRAYS, KEPT_BYTES, fits=fresh)
    if error is not None:
        from ui.runs import say_unkept

        say_unkept("Home's thumbnails", run_cache.unkept_reason(error))
    return _read(arrays)


def _drawn() -> dict[str, np.ndarray] | None:
    """The picked run's thumbnails drawn from its weights, as kept; None when its checkpoint cannot be read.
    Imported here, not at the top: torch and the model take seconds to load, and Home's first paint needs
    neither once the thumbnails are on disk."""
    from ui.runs import current_model

    model = current_model()  # the version listed, but for one saved in the instant since (the next listing names it)
    if model is None:
        return None
    with st.spinner("Drawing the thumbnails…"):
        return kept_arrays(draw_thumbnails(model))


def kept_arrays(thumbs: Thumbnails) -> dict[str, np.ndarray]:
    """The arrays `thumbs` are kept as, under KEPT and the checkpoint's hash (the shipped runs' too:
    `run_cache.store_cached_set(path, KEPT, digest, kept_arrays(draw_thumbnails(open_run(run))))`)."""
    return {**{key: getattr(thumbs, key) for key in PICTURES}, "elbo_counts": thumbs.elbo_counts,
            "elbo_edges": thumbs.elbo_edges,
            "latent_method": np.asarray(thumbs.latent_method), "tsne": np.asarray(thumbs.tsne),
            **{key: np.asarray(values) for key, values in thumbs.history.items()}}


def _read(arrays: dict[str, np.ndarray] | None) -> Thumbnails | None:
    """Thumbnails from their kept arrays (each of the shape and dtype of KEPT_ARRAYS), or None if there are
    none or they disagree with each other."""
    if arrays is None:
        return None
    method, tsne = str(arrays["latent_method"]), str(arrays["tsne"])
    if (len(arrays["test_epochs"]) != len(arrays["test_loss"]) or method not in ("z_loc", "T-SNE", "PCA")
            or not re.fullmatch(r"[\w.+-]{1,100}", tsne)):  # a cache file's name, which Home looks for
        return None
    history = {"train_loss": arrays["train_loss"].tolist(), "test_epochs": arrays["test_epochs"].astype(int).tolist(),
               "test_loss": arrays["test_loss"].tolist()}
    images = [arrays[key] for key in PICTURES]
    return Thumbnails(history, *images[:3], method, tsne, *images[3:], arrays["elbo_counts"], arrays["elbo_edges"])


def draw_thumbnails(model: Model) -> Thumbnails:
    """Every view's picture of `model`, drawn from its weights."""
    import torch

    from ui.codes import codes as test_codes, decoded
    from ui.figures import grid
    from ui.runs import cached_array, mnist_test
    from vae_core import analysis, latent, objectives

    vae = model.vae
    images, labels = mnist_test()
    side = vae.config.image_height, vae.config.image_width
    rec = analysis.reconstructions(vae, images[:N_DIGITS], k=1, seed=0)
    pairs = np.concatenate([images[:N_DIGITS].reshape(N_DIGITS, *side).numpy(), rec.at_loc.numpy()])
    tsne = analysis.tsne_name(*TSNE_SETTINGS)
    codes = test_codes(model)  # the views' cached codes of the test set
    xy, method = latent.map_points(codes.loc, cached_array(model, tsne, (len(labels), 2)))  # the map kept on disk

    paths = [latent.path(codes.loc[a], codes.loc[b], STEPS, kind) for a, b in PAIRS for kind in latent.PATH_KINDS]
    dims = np.argsort(-objectives.kl_per_dimension(codes.loc, codes.scale), kind="stable")[:N_TRAVERSED]
    traversal = latent.traversal(codes.loc[0], np.eye(vae.config.z_dim, dtype=np.float32)[dims],
                                 np.linspace(-SPAN, SPAN, STEPS))  # (dims, STEPS, z_dim)
    drawn = np.stack([latent.mnist_style(stroke_ink(points)) for points in STROKES.values()])  # (4, 28, 28)
    read = analysis.reconstructions(vae, torch.from_numpy(drawn), k=1, seed=0).at_loc.numpy()
    elbos = objectives.elbo_of_all(vae, images, draws=1, seed=0)  # (n_test,) nats
    counts, edges = np.histogram(elbos, bins=ELBO_BINS, range=tuple(np.percentile(elbos, [0.5, 99.5])))
    return Thumbnails(
        _history(model), fit(grid(analysis.prior_samples(vae, N_SAMPLES, seed=0).numpy(), nrow=4, scale=SCALE)),
        fit(grid(pairs, nrow=N_DIGITS, scale=SCALE)), fit(scatter_image(xy, labels.numpy())), method, tsne,
        fit(grid(decoded(model, np.concatenate(paths)), nrow=STEPS, scale=2)),
        fit(grid(decoded(model, traversal.reshape(-1, vae.config.z_dim)), nrow=STEPS, scale=2)),
        fit(grid(np.concatenate([drawn, read]), nrow=len(STROKES), scale=SCALE)),
        counts.astype(np.int64), edges.astype(np.float64))


def stroke_ink(points: list[tuple[float, float]]) -> np.ndarray:
    """One stroke through `points` drawn as on Draw's canvas (white, STROKE_WIDTH px); ink (CANVAS_SIDE, CANVAS_SIDE) in [0, 1]."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (CANVAS_SIDE, CANVAS_SIDE), 0)
    xy = [(x * CANVAS_SIDE, y * CANVAS_SIDE) for x, y in points]
    ImageDraw.Draw(canvas).line(xy, fill=255, width=STROKE_WIDTH, joint="curve")
    return np.asarray(canvas, np.float32) / 255.0


def fit(image: np.ndarray) -> np.ndarray:
    """A uint8 picture centred on white to the width / height of ASPECT, by adding margins (never scaling)."""
    height, width = image.shape[:2]
    target_h, target_w = max(height, round(width / ASPECT)), max(width, round(height * ASPECT))
    top, left = (target_h - height) // 2, (target_w - width) // 2
    out = np.full((target_h, target_w, *image.shape[2:]), 255, np.uint8)
    out[top:top + height, left:left + width] = image
    return out


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


CHART_HEIGHT = 240  # px: about a picture's height in a third of a wide screen


def elbo_thumbnail(history: dict[str, list]) -> go.Figure:
    """The Train view's ELBO chart, shrunk: no title, a short legend, small margins."""
    fig = elbo_figure(history, title="")
    fig.update_layout(height=CHART_HEIGHT, margin={"l": 0, "r": 0, "t": 10, "b": 0}, yaxis_title="ELBO (nats)",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


@st.cache_resource(show_spinner="Reading the timeline…", max_entries=4)
def _timeline(folder: str, version: tuple) -> Timeline | None:
    # A resource, not data: 21 frames of 2,000 x 50 codes are 8 MB, which cache_data would copy at every rerun.
    return read_timeline(Path(folder))


def recorded_timeline(folder: Path) -> tuple[Timeline | None, tuple]:
    """The run's recorded frames (vae_core.timeline), read once per version of its files (None if none), and
    that version; Home's Timeline card and the Timeline view share it."""
    version = timeline_stamp(folder)
    return _timeline(str(folder), version), version


def timeline_thumbnail(line: Timeline) -> go.Figure:
    """The Timeline view's KL heatmap, shrunk: no title, no colour bar, small margins."""
    fig = kl_heatmap(line, int(line.epochs[-1]), height=CHART_HEIGHT)
    fig.update_traces(showscale=False)
    fig.update_layout(title="", margin={"l": 0, "r": 0, "t": 10, "b": 0})
    return fig


def elbo_histogram(counts: np.ndarray, edges: np.ndarray) -> go.Figure:
    """Evaluate's thumbnail: how many test digits have each one-draw ELBO."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_color=DIGIT_COLOURS[0]))
    fig.update_layout(height=CHART_HEIGHT, margin={"l": 0, "r": 0, "t": 10, "b": 0}, bargap=0.05,
                      xaxis_title="test ELBO per image (nats)", yaxis_title="digits", plot_bgcolor="white")
    return fig


def compared_histories(root, picked: str) -> dict[str, dict[str, list]]:
    """The picked run's history and those of the newest COMPARED - 1 others, read from their history.json
    (no torch); runs without a readable history are left out."""
    from ui.picker import runs

    names = [picked, *(info.name for info in runs() if info.name != picked)][:COMPARED]
    found = {name: read_history(run_dir(root, name)) for name in names}
    return {name: history for name, history in found.items() if history and history.get("test_loss")}


def runs_thumbnail(histories: dict[str, dict[str, list]]) -> go.Figure:
    """Compare's thumbnail: each run's test ELBO by epochs completed, one colour per run."""
    fig = go.Figure()
    for i, (run, history) in enumerate(histories.items()):
        fig.add_scatter(x=[e + 1 for e in history["test_epochs"]], y=[-x for x in history["test_loss"]],
                        mode="lines", name=run, line={"color": DIGIT_COLOURS[i % len(DIGIT_COLOURS)]})
    fig.update_layout(height=CHART_HEIGHT, margin={"l": 0, "r": 0, "t": 10, "b": 0}, yaxis_title="test ELBO",
                      xaxis_title="epochs completed", showlegend=True,
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
