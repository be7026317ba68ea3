"""Reconstructions: each test digit beside k stochastic reconstructions and the one at z_loc."""

import re

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from ui.figures import grid
from ui.runs import mnist_test, require_model
from ui.views import open_page
from vae_core.analysis import reconstructions
from vae_core.objectives import elbo_estimate

SCALE, PADDING = 3, 4  # screen pixels per image pixel; white gap around each image, in image pixels
FONT_SIZE = 18  # px: "mean at" and "draw 8" fit a 28-pixel image shown 3x (84 px)
ELBO_DRAWS = 64  # z draws averaged per image: the standard error is 1/8 of one draw's spread
EXAMPLE = "0, 7, 42"
# Rows drawn at once by index: each is k + 2 images and an ELBO of 64 draws (2,000 indices took 10.6 s).
MAX_INDICES = 64


def shown(entry: str, width: int = 12) -> str:
    """An entry as a message quotes it: a long one cut, with its length."""
    return entry if len(entry) <= width else f"{entry[:width]}… ({len(entry):,} characters)"


def listed(entries: list[str]) -> str:
    """The first few entries, quoted, and how many more."""
    more = f" and {len(entries) - 5:,} more" if len(entries) > 5 else ""
    return ", ".join(shown(entry) for entry in entries[:5]) + more


def in_range(entry: str, n_test: int) -> bool:
    """Whether the whole number typed as `entry` is a test-set index: its digits are counted before int()
    (numpy's int64 overflowed on 400 digits)."""
    digits = entry.lstrip("+-").lstrip("0") or "0"
    return (digits == "0" or not entry.startswith("-")) and len(digits) <= len(str(n_test)) and int(digits) < n_test


def parse_indices(text: str, n_test: int) -> np.ndarray:
    """The test-set indices typed in `text`, the first MAX_INDICES of them; otherwise an error that says what
    is allowed and names the entries that are not indices, and stop."""
    parts = [part for part in re.split(r"[,\s]+", text.strip()) if part]
    if not parts:
        st.error(f"Enter at least one index between 0 and {n_test - 1}, separated by commas or spaces, "
                 f"like `{EXAMPLE}`.")
        st.stop()
    words = [part for part in parts if not re.fullmatch(r"[+-]?[0-9]+", part)]
    if words:
        st.error(f"Indices must be whole numbers separated by commas or spaces, like `{EXAMPLE}`; got "
                 f"`{shown(text.strip(), 60)}`: {listed(words)} {'is' if len(words) == 1 else 'are'} not.")
        st.stop()
    outside = [part for part in parts if not in_range(part, n_test)]
    if outside:
        st.error(f"Each index must be between 0 and {n_test - 1}; these are not: {listed(outside)}.")
        st.stop()
    if len(parts) > MAX_INDICES:
        st.warning(f"{len(parts):,} indices given, and at most {MAX_INDICES} are shown at once: showing the first "
                   f"{MAX_INDICES}.", icon=":material/warning:")
    return np.array([int(part) for part in parts[:MAX_INDICES]], dtype=int)


def column_header(labels: list[str], side: int) -> np.ndarray:
    """A white strip, as wide as a grid row of len(labels) images, with each label centred over its image; uint8."""
    font = ImageFont.load_default(size=FONT_SIZE)
    lines = max(label.count("\n") + 1 for label in labels)
    cell = (side + PADDING) * SCALE  # one image and the gap after it, in screen pixels
    strip = Image.new("L", (len(labels) * cell + PADDING * SCALE, lines * (FONT_SIZE + 4) + 4), 255)
    draw = ImageDraw.Draw(strip)
    for column, label in enumerate(labels):
        centre = PADDING * SCALE + column * cell + side * SCALE / 2
        draw.multiline_text((centre, 4), label, fill=0, font=font, anchor="ma", align="center", spacing=4)
    return np.asarray(strip)


@st.cache_data(show_spinner="Estimating the ELBO…", max_entries=64)
def elbo_of(digest: str, indices: tuple[int, ...], seed: int, _vae, _images):
    """elbo_estimate of these test images under one checkpoint version, kept for reruns."""
    return elbo_estimate(_vae, _images, ids=np.array(indices), seed=seed, draws=ELBO_DRAWS)


def chosen(n_test: int, labels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The sidebar's choice: the test indices to show, reconstructions per image, and the seed."""
    with st.sidebar:
        how = st.radio("Test images", ["Random", "By digit", "By index"], key="rec_how", persist_state="session",
                       horizontal=True)
        if how != "By index":  # typed indices set their own number
            count = st.slider("How many", 1, 16, key="rec_count", persist_state="session")
        k = st.slider("Reconstructions per image (z draws)", 1, 8, key="rec_k", persist_state="session")
        seed = int(st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="rec_seed",
                                   persist_state="session"))
        if how == "By digit":
            digit = st.selectbox("Digit", list(range(10)), key="rec_digit", persist_state="session")
        elif how == "By index":
            text = st.text_input(f"Indices (0 to {n_test - 1}, comma separated)", key="rec_indices",
                                 persist_state="session", help=f"Up to {MAX_INDICES} test images at once.")
    if how == "Random":
        return np.random.default_rng(seed).choice(n_test, size=count, replace=False), k, seed
    if how == "By digit":
        # A stream of its own: Random's stream would pick the same relative positions in the digit's pool.
        pool = np.flatnonzero(labels == digit)
        return np.random.default_rng([seed, digit + 1]).choice(pool, size=count, replace=False), k, seed
    return parse_indices(text, n_test), k, seed


def main() -> None:
    """Title, the choice of images, then a row per image: it, its reconstructions and its ELBO."""
    st.title("Reconstructions")
    model = require_model()
    test_images, test_labels = mnist_test()
    indices, k, seed = chosen(test_images.shape[0], test_labels.numpy())
    x = test_images[indices]
    rec = reconstructions(model.vae, x, k=k, seed=seed, ids=indices)
    elbo = elbo_of(model.digest, tuple(int(i) for i in indices), seed, model.vae, x)
    side = model.vae.config.image_height, model.vae.config.image_width
    st.caption(f"Each row: the test image; {k} reconstructions, each the decoder's mean at its own draw "
               f"z ~ q(z | x) (`reconstruct_img` is stochastic); the decoder's mean at z = z_loc. "
               f"ELBO: the average of {ELBO_DRAWS} one-sample estimates log p(x, z) − log q(z | x), z ~ q(z | x), "
               f"in nats per image, ± its standard error; higher is better. An image's draws depend only on "
               f"the seed and its test-set index. Run {model.name}, epoch {model.epoch}.")
    labels = ["input", *(f"draw {j}" for j in range(1, k + 1)), "mean at\nz_loc"]
    st.image(column_header(labels, side[1]), alt="Columns: " + ", ".join(label.replace("\n", " ") for label in labels))
    for row, index in enumerate(indices):
        images = np.concatenate([x[row].reshape(1, *side).numpy(), rec.draws[row].numpy(),
                                 rec.at_loc[row][None].numpy()])
        st.image(grid(images, nrow=len(images), scale=SCALE, padding=PADDING),
                 caption=f"test #{index} · digit {int(test_labels[index])} · "
                         f"ELBO {elbo.mean[row].item():.1f} ± {elbo.se[row].item():.1f} nats")


open_page(__file__)
main()
