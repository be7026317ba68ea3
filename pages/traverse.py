"""Traverse: vary one latent direction at a time from a digit's code; which of the dimensions carry the digits."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from ui.codes import codes, decoded
from ui.figures import chart_config, grid
from ui.runs import Model, mnist_test, require_model
from ui.views import open_page
from vae_core import latent, objectives
from vae_core.config import MNIST_SIDE

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


def controls(z_dim: int, n_test: int) -> tuple[str, int, str, int, int]:
    """The sidebar: where to start (and which digit), what to vary, how many rows and values per row."""
    with st.sidebar:
        start = st.radio("Start from", (DIGIT, PRIOR_MEAN), key="trav_from", persist_state="session")
        index = st.number_input("Test index (0 to 9999)", 0, n_test - 1, step=1, key="trav_index",
                                persist_state="session", disabled=start == PRIOR_MEAN)
        along = st.radio("Vary", (AXES, PRINCIPAL), key="trav_along", persist_state="session",
                         help="One latent coordinate at a time, most used first (by KL); or the directions in which "
                              "the test codes spread most.")
        st.session_state[ROWS_SHOWN] = min(st.session_state[ROWS], z_dim)  # capped here, not in ROWS itself
        rows = st.slider("Rows", 1, z_dim, key=ROWS_SHOWN, on_change=keep_rows) if z_dim > 1 else 1
        cols = st.slider("Values per row", 5, 15, step=2, key="trav_cols", persist_state="session")
    return start, index, along, rows, cols


def kl_chart(kl: np.ndarray, active: np.ndarray) -> None:
    """KL per dimension as bars, the active units blue, and what makes a unit active."""
    z_dim = len(kl)
    fig = go.Figure(go.Bar(x=np.arange(z_dim), y=kl, marker_color=np.where(active, "#1f77b4", "#c7c7c7"),
                           hovertemplate="dimension %{x}<br>KL %{y:.3f} nats<extra></extra>"))
    fig.update_layout(title={"text": f"{int(active.sum())} of {z_dim} units active", "font": {"size": 15}},
                      xaxis_title="latent dimension", yaxis_title="mean KL(q(z_d | x) ‖ N(0, 1)), nats",
                      height=300, margin={"l": 10, "r": 10, "t": 50, "b": 10}, plot_bgcolor="white")
    st.plotly_chart(fig, key="trav_kl", config=chart_config())
    st.caption(f"KL per dimension, {kl.sum():.1f} nats per image in all. "
               f"A unit is active when the variance of its z_loc over the 10,000 test digits exceeds "
               f"{objectives.ACTIVE_VARIANCE} (Burda et al. 2015); blue bars are active. Burda et al. used 500 "
               "training images: for the shipped runs the count is the same on those as on the test set. An "
               "inactive unit's code stays at the prior whatever the digit, so it costs no KL and carries nothing: "
               "the decoder ignores it.")


def directions_of(along: str, rows: int, kl: np.ndarray, c: latent.Codes) -> tuple[np.ndarray, list[str]]:
    """The unit directions to vary, (rows, z_dim), and each one's name: the axes by KL, or principal directions."""
    if along == AXES:
        order = np.argsort(-kl, kind="stable")[:rows]
        return np.eye(len(kl), dtype=np.float32)[order], [f"dimension {d} · KL {kl[d]:.2f}" for d in order]
    directions, variance = latent.principal_directions(c.loc, min(rows, min(c.loc.shape)))
    return directions, [f"direction {i + 1} · variance {v:.2f}" for i, v in enumerate(variance)]


def strips(model: Model, z: np.ndarray, spread: np.ndarray, directions: np.ndarray, names: list[str],
           cols: int, who: str) -> None:
    """One row per direction: its name and the posterior along it, then the decoded strip of `cols` values."""
    z_dim = len(z)
    values = np.linspace(-SPAN, SPAN, cols)
    images = decoded(model, latent.traversal(z, directions, values).reshape(-1, z_dim))  # (rows * cols, H, W)
    for row, (name, u) in enumerate(zip(names, directions)):
        label, strip = st.columns([1, 4], vertical_alignment="center")
        centre, width = float(u @ z), float(np.sqrt((u ** 2) @ spread ** 2))  # the posterior along u
        label.markdown(f"**{name}**  \n{who}: {centre:+.2f} ± {width:.2f}")
        picture = grid(images[row * cols:(row + 1) * cols], nrow=cols, scale=SCALE, padding=PADDING)
        alt = f"{name}, decoded at {cols} values"
        if row == 0:  # the values over the first row, in its own picture: a phone stacks label and strip
            picture = np.concatenate([value_header(values, MNIST_SIDE), picture])
            alt += ", labelled over the images: " + ", ".join(f"{v:+.2f}" for v in values)
        strip.image(picture, width="stretch", alt=alt)


def main() -> None:
    """Title, controls, the KL per dimension, then the traversal from a digit or the prior mean."""
    st.title("Traverse")
    model = require_model()
    test_images, test_labels = mnist_test()
    c = codes(model)
    z_dim = model.vae.config.z_dim
    start, index, along, rows, cols = controls(z_dim, len(test_labels))
    kl = objectives.kl_per_dimension(c.loc, c.scale)
    kl_chart(kl, objectives.active_units(c.loc))
    if start == DIGIT:
        z, spread = c.loc[index], c.scale[index]
        where = f"test #{index} (a {int(test_labels[index])})"
    else:
        z, spread = np.zeros(z_dim, np.float32), np.ones(z_dim, np.float32)
        where = "the prior mean"
    directions, names = directions_of(along, rows, kl, c)
    st.subheader(f"From {where}")
    st.caption(f"Each row sets one direction's coordinate to {cols} values from {-SPAN:+g} to {SPAN:+g} prior "
               "standard deviations (the numbers over the first row), and decodes; every other coordinate keeps its "
               "value. Beside each row, the digit's own posterior on it: z_loc ± z_scale.")
    if start == DIGIT:
        st.image(grid(test_images[index].reshape(1, MNIST_SIDE, MNIST_SIDE).numpy(), scale=3), caption=where)
    strips(model, z, spread, directions, names, cols, "digit" if start == DIGIT else "prior")


open_page(__file__)
main()
