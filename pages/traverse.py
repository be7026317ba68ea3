"""Traverse: vary one latent direction at a time from a digit's code; which of the dimensions carry the digits."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageDraw, ImageFont

from ui.codes import codes
from ui.figures import chart_config, grid
from ui.runs import mnist_test, require_model
from ui.views import open_page
from vae_core import analysis, latent
from vae_core.config import MNIST_SIDE

open_page(__file__)

DIGIT, PRIOR_MEAN = "A test digit", "The prior mean (z = 0)"
AXES, PRINCIPAL = "Latent dimensions", "Principal directions"
SPAN = 3.0  # prior standard deviations either side: N(0, 1) puts 99.7 % of its mass inside
ROWS = "trav_rows"  # session key (ui.settings seeds it): the rows asked for, kept whatever the run's z_dim
ROWS_SHOWN = "trav_rows_shown"  # the slider's own key: ROWS, capped by this run's z_dim
SCALE, PADDING, FONT_SIZE = 2, 2, 18  # the strips' screen pixels per image pixel, gap in image pixels, label px
# Burda et al. (2015) counted active units on 500 training images; the views count them on the 10,000 test
# digits. Measured for the shipped runs (tutorial 23, latent-2d 2, burda-binarized 14 of their units):
# the same count, and the same units, on the first 500 training digits and on five random draws of 500.


def value_header(values: np.ndarray, side: int) -> np.ndarray:
    """A white strip as wide as a grid row of len(values) images at SCALE, each value (prior sds) centred
    over its image; uint8 (h, w). In the picture, so a phone cannot separate it from the images."""
    font = ImageFont.load_default(size=FONT_SIZE)
    cell = (side + PADDING) * SCALE  # one image and the gap after it, in screen pixels
    strip = Image.new("L", (len(values) * cell + PADDING * SCALE, FONT_SIZE + 8), 255)
    draw = ImageDraw.Draw(strip)
    for column, value in enumerate(values):
        label = f"{value:+.2f}".rstrip("0").rstrip(".")  # +1.5, -0.75; an ASCII minus: the default font has no −
        draw.text((PADDING * SCALE + column * cell + side * SCALE / 2, 4), "0" if label in ("+0", "-0") else label,
                  fill=0, font=font, anchor="ma")
    return np.asarray(strip)


def keep_rows() -> None:
    """The slider's callback: the rows asked for outlive a run with fewer dimensions."""
    st.session_state[ROWS] = st.session_state[ROWS_SHOWN]

st.title("Traverse")
model = require_model()
test_images, test_labels = mnist_test()
c = codes(model)
z_dim = model.vae.config.z_dim
kl = latent.kl_per_dimension(c)
active = latent.active_units(c.loc)

with st.sidebar:
    start = st.radio("Start from", (DIGIT, PRIOR_MEAN), key="trav_from", persist_state="session")
    index = st.number_input("Test index (0 to 9999)", 0, len(test_labels) - 1, step=1, key="trav_index",
                            persist_state="session", disabled=start == PRIOR_MEAN)
    along = st.radio("Vary", (AXES, PRINCIPAL), key="trav_along", persist_state="session",
                     help="One latent coordinate at a time, most used first (by KL); or the directions in which "
                          "the test codes spread most.")
    st.session_state[ROWS_SHOWN] = min(st.session_state[ROWS], z_dim)  # capped here, not in ROWS itself
    rows = st.slider("Rows", 1, z_dim, key=ROWS_SHOWN, on_change=keep_rows) if z_dim > 1 else 1
    cols = st.slider("Values per row", 5, 15, step=2, key="trav_cols", persist_state="session")

fig = go.Figure(go.Bar(x=np.arange(z_dim), y=kl, marker_color=np.where(active, "#1f77b4", "#c7c7c7"),
                       hovertemplate="dimension %{x}<br>KL %{y:.3f} nats<extra></extra>"))
fig.update_layout(title={"text": f"{int(active.sum())} of {z_dim} units active", "font": {"size": 15}},
                  xaxis_title="latent dimension", yaxis_title="mean KL(q(z_d | x) ‖ N(0, 1)), nats",
                  height=300, margin={"l": 10, "r": 10, "t": 50, "b": 10}, plot_bgcolor="white")
st.plotly_chart(fig, key="trav_kl", config=chart_config())
st.caption(f"KL per dimension, {kl.sum():.1f} nats per image in all. "
           f"A unit is active when the variance of its z_loc over the 10,000 test digits exceeds "
           f"{latent.ACTIVE_VARIANCE} (Burda et al. 2015); blue bars are active. Burda et al. used 500 training "
           "images: for the shipped runs the count is the same on those as on the test set. An inactive unit's "
           "code stays at the prior whatever the digit, so it costs no KL and carries nothing: the decoder "
           "ignores it.")

if start == DIGIT:
    z, spread = c.loc[index], c.scale[index]
    where = f"test #{index} (a {int(test_labels[index])})"
else:
    z, spread = np.zeros(z_dim, np.float32), np.ones(z_dim, np.float32)
    where = "the prior mean"
if along == AXES:
    order = np.argsort(-kl, kind="stable")[:rows]
    directions = np.eye(z_dim, dtype=np.float32)[order]
    names = [f"dimension {d} · KL {kl[d]:.2f}" for d in order]
else:
    rows = min(rows, min(c.loc.shape))
    directions, variance = latent.principal_directions(c.loc, rows)
    names = [f"direction {i + 1} · variance {v:.2f}" for i, v in enumerate(variance)]
values = np.linspace(-SPAN, SPAN, cols)
codes_grid = latent.traversal(z, directions, values)  # (rows, cols, z_dim)
images = analysis.decode(model.vae, torch.from_numpy(codes_grid.reshape(-1, z_dim))).numpy()

st.subheader(f"From {where}")
st.caption(f"Each row sets one direction's coordinate to {cols} values from {-SPAN:+g} to {SPAN:+g} prior "
           "standard deviations (the numbers over the first row), and decodes; every other coordinate keeps its "
           "value. Beside each row, the digit's own posterior on it: z_loc ± z_scale.")
if start == DIGIT:
    st.image(grid(test_images[index].reshape(1, MNIST_SIDE, MNIST_SIDE).numpy(), scale=3), caption=where)
for row, (name, u) in enumerate(zip(names, directions)):
    label, strip = st.columns([1, 4], vertical_alignment="center")
    centre, width = float(u @ z), float(np.sqrt((u ** 2) @ spread ** 2))  # the posterior along u
    label.markdown(f"**{name}**  \n{'digit' if start == DIGIT else 'prior'}: {centre:+.2f} ± {width:.2f}")
    picture = grid(images[row * cols:(row + 1) * cols], nrow=cols, scale=SCALE, padding=PADDING)
    alt = f"{name}, decoded at {cols} values"
    if row == 0:  # the values over the first row, in its own picture: a phone stacks label and strip
        picture = np.concatenate([value_header(values, MNIST_SIDE), picture])
        alt += ", labelled over the images: " + ", ".join(f"{v:+.2f}" for v in values)
    strip.image(picture, width="stretch", alt=alt)
