"""What the latent-space views share: the test codes of a checkpoint, its map, and the A/B pair.

    from ui.codes import codes, decoded, map_points, endpoint, use_as, pair_buttons, pair_spots, pair_trace
    c = codes(model)                    # latent.Codes of the 10,000 test images (loc, scale), once per version
    images = decoded(model, z)          # (n, z_dim) codes -> (n, 28, 28) decoder means, numpy
    xy, method = map_points(model, c)   # the Latent map's points: z_loc if 2-d, T-SNE if computed, else PCA
    use_as("a", 42)                     # a button's callback: test digit 42 becomes A
    image, z_loc, z_scale, label = endpoint(model, c, "a")
    spots = pair_spots(model, c, xy)    # {"A": (x, y), "B": (x, y)}: where to letter them on that map
    fig.add_trace(pair_trace(spots))    # A and B lettered over a figure of that map
    square_map(fig, "draw_map")         # st.plotly_chart, square, as wide as its column

A view calls codes(model) once and hands them to what needs them. A and B live in the session, so the map,
Draw and Interpolate hand them to each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from ui.figures import chart_config, ends_trace, grid
from ui.runs import Model, cached, cached_array, mnist_test, n_test_images, say_unkept
from ui.settings import DRAWN, TEST
from ui.views import link
from vae_core import analysis, latent, objectives
from vae_core.config import MNIST_SIDE

DRAWING = "drawing"  # session key: the last drawing, (28, 28) float32 as MNIST was made
PAIR_NEWS = "pair_news"  # session key: the end ("a" or "b") a Use-as button has just set, toasted once
UNKEPT_ELBOS = "elbos_unkept"  # session key: {digest: (elbos, why)}, test ELBOs the disk would not keep
UNKEPT_MAPS = "map_unkept"  # session key: {(digest, map name): (xy, why)}, the last T-SNE map the disk would not keep


@dataclass(frozen=True)
class _Kept:
    codes: latent.Codes
    unkept: str | None  # why the disk would not keep them, in words; None when it did (or had them)


@st.cache_resource(max_entries=4, show_spinner="Encoding the 10,000 test digits…")
def _codes(digest: str, _model: Model) -> _Kept:
    """The test codes of one checkpoint version: from its disk cache when kept there, else encoded and kept."""
    shape, made = (n_test_images(), _model.vae.config.z_dim), []

    def encoded() -> latent.Codes:  # once for both arrays, and only if one is not on disk
        if not made:
            made.append(latent.encode(_model.vae, mnist_test()[0]))
        return made[0]

    loc, loc_unkept = cached(_model, latent.MEANS_NAME, lambda: encoded().loc, shape)
    scale, scale_unkept = cached(_model, latent.SCALES_NAME, lambda: encoded().scale, shape)
    return _Kept(latent.Codes(loc, scale), loc_unkept or scale_unkept)


def codes(model: Model) -> latent.Codes:
    """z_loc and z_scale of the 10,000 test images under this checkpoint version, computed once per version;
    a quiet line says so when the disk would not keep them."""
    kept = _codes(model.digest, model)
    say_unkept("the test digits' codes", kept.unkept)
    return kept.codes


def decoded(model: Model, z: np.ndarray) -> np.ndarray:
    """The decoder's mean images at the codes `z` (n, z_dim); shape (n, H, W), numpy."""
    return analysis.decode(model.vae, torch.from_numpy(np.ascontiguousarray(z, np.float32))).numpy()


def map_points(model: Model, c: latent.Codes, perplexity: float | None = None,
               seed: int | None = None) -> tuple[np.ndarray, str]:
    """The 2-D map of this version's test codes `c` and its method (latent.map_points): its T-SNE map at
    `perplexity` and `seed` (by default the Latent map's) when kept on disk, or in this session when the disk
    would not keep it."""
    perplexity = st.session_state.map_perplexity if perplexity is None else perplexity  # ui.settings seeds them
    seed = st.session_state.map_seed if seed is None else seed
    name = analysis.tsne_name(perplexity, int(seed))
    tsne = cached_array(model, name, (n_test_images(), 2))
    if tsne is None:
        tsne = st.session_state.get(UNKEPT_MAPS, {}).get((model.digest, name), (None,))[0]
    return latent.map_points(c.loc, tsne)


def test_elbos(model: Model) -> np.ndarray:
    """Each test image's ELBO (nats, the mean of 16 one-sample estimates), from the disk cache when there.
    What the disk would not keep, this session keeps: a rerun must not estimate 10,000 ELBOs again."""
    held = st.session_state.get(UNKEPT_ELBOS, {}).get(model.digest)
    if held is None:
        def estimate() -> np.ndarray:
            with st.spinner("Estimating the ELBO of the 10,000 test digits, once for this checkpoint…"):
                return objectives.elbo_of_all(model.vae, mnist_test()[0], draws=objectives.TEST_ELBO_DRAWS, seed=0)

        held = cached(model, objectives.TEST_ELBOS_NAME, estimate, (n_test_images(),))
        if held[1]:
            st.session_state[UNKEPT_ELBOS] = {model.digest: held}  # the last checkpoint's only
    say_unkept("the test digits' ELBOs", held[1], "This session keeps them; another computes them again.")
    return held[0]


def use_as(end: str, index: int | None) -> None:
    """Callback: test digit `index` (None: the drawing) becomes end "a" or "b" of the pair."""
    st.session_state[f"pair_{end}_from"] = TEST if index is not None else DRAWN
    if index is not None:
        st.session_state[f"pair_{end}"] = int(index)
    st.session_state[PAIR_NEWS] = end


def end_label(end: str) -> str | None:
    """End "a" or "b" in words: "test #42 (a 4)" or "your drawing"; None if it is a drawing not yet made."""
    if st.session_state.get(f"pair_{end}_from") == DRAWN:
        return "your drawing" if st.session_state.get(DRAWING) is not None else None
    index = int(st.session_state[f"pair_{end}"])
    return f"test #{index} (a {int(mnist_test()[1][index])})"


def pair_buttons(where, index: int | None, key: str) -> None:
    """Use as A, Use as B (test digit `index`, or the drawing if None), what A and B are now, and a link to
    Interpolate, in `where`. A press is confirmed by a toast and the line under the buttons."""
    buttons = where.columns(2)
    buttons[0].button("Use as A", icon=":material/looks_one:", on_click=use_as, args=("a", index), key=f"{key}_as_a")
    buttons[1].button("Use as B", icon=":material/looks_two:", on_click=use_as, args=("b", index), key=f"{key}_as_b")
    news = st.session_state.pop(PAIR_NEWS, None)  # the end a button set in the run just before this one
    if news:
        st.toast(f"{news.upper()} is now {end_label(news)}", icon=":material/check_circle:")
    where.caption(" · ".join(f"{end.upper()} is {'now ' if end == news else ''}{end_label(end) or 'a drawing not made yet'}"
                             for end in ("a", "b")))
    link("interpolate", "Interpolate between A and B", where)


def pair_spots(model: Model, c: latent.Codes, xy: np.ndarray) -> dict[str, np.ndarray]:
    """Where A and B sit on `xy` (10,000, 2), a map of the test codes `c`, by letter: a test digit on its own
    point, a drawing at the mean place of its nearest test codes (as Draw shows it). A drawing not made has none."""
    spots = {}
    for end in ("a", "b"):
        if st.session_state.get(f"pair_{end}_from") == DRAWN:
            ends = endpoint(model, c, end)
            if ends is not None:
                spots[end.upper()] = latent.place(c.loc, xy, ends[1])[0]
        else:
            spots[end.upper()] = xy[int(st.session_state[f"pair_{end}"])]
    return spots


# A map is square: as wide as its column and, with the title above the points and the legend below them,
# about 110 px taller, but never taller than the window less Streamlit's header, so that it fits a screen.
# The chart's element takes its height (its flex basis, in Streamlit's column) from this CSS, and Streamlit's
# Plotly element sizes the figure to the height it measures;
# the y axis's scaleanchor keeps one unit the same length on both axes, so the points' square is centred.
SQUARE_CSS = """<style>
[class*="st-key-square_map"] { container-type: inline-size; }
[class*="st-key-square_map"] [data-testid="stElementContainer"] {
  --side: min(calc(100cqw + 110px), calc(100vh - 100px));
  flex: 0 0 var(--side) !important; height: var(--side) !important; }
[class*="st-key-square_map"] [data-testid="stFullScreenFrame"],
[class*="st-key-square_map"] [data-testid="stPlotlyChart"] { height: 100%; }
</style>"""


def square_map(fig, key: str, **chart):
    """st.plotly_chart(fig, key=key, **chart) in a box that makes the map square and fills its column."""
    st.html(SQUARE_CSS)  # style only: it takes no room on the page
    chart["config"] = chart_config(**chart.get("config", {}))  # the modebar clear of the title on a phone
    with st.container(key=f"square_map_{key}"):
        return st.plotly_chart(fig, key=key, **chart)


def pair_trace(spots: dict[str, np.ndarray]):
    """A and B lettered at `spots` (pair_spots's answer) as a Plotly trace; None when neither has a place."""
    if not spots:
        return None
    ends = [letter.lower() for letter in spots]
    indices = [int(st.session_state[f"pair_{e}"]) if st.session_state.get(f"pair_{e}_from") != DRAWN else None
               for e in ends]
    return ends_trace(np.stack(list(spots.values())), list(spots), [end_label(e) for e in ends], indices)


# On a phone Streamlit stacks columns one under another: eight neighbours would each take the screen's width.
# Four to a row there instead.
NEIGHBOURS_CSS = """<style>
@media (max-width: 640px) {
  .st-key-neighbour_row [data-testid="stHorizontalBlock"] { flex-flow: row wrap; }
  .st-key-neighbour_row [data-testid="stColumn"] { flex: 1 1 calc(25% - 1rem) !important;
                                                   min-width: calc(25% - 1rem) !important; }
}
</style>"""


def neighbour_row(idx: np.ndarray, dist: np.ndarray) -> None:
    """Test digits in a row (four to a row on a phone), each captioned with its index, digit and distance."""
    images, labels = mnist_test()
    st.html(NEIGHBOURS_CSS)  # style only: it takes no room on the page
    with st.container(key="neighbour_row"):
        columns = st.columns(len(idx))
    for column, i, d in zip(columns, idx, dist):
        column.image(grid(images[i].reshape(1, MNIST_SIDE, MNIST_SIDE).numpy(), scale=3), width="stretch",
                     caption=f"#{i} · a {labels[i]} · {d:.2f}")


def endpoint(model: Model, c: latent.Codes, end: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str] | None:
    """End "a" or "b": its image (28, 28), its z_loc and z_scale (z_dim,) and a label; None if it is
    a drawing and there is none. A test digit's code comes from `c`, the test codes."""
    label = end_label(end)
    if st.session_state.get(f"pair_{end}_from") == DRAWN:
        image = st.session_state.get(DRAWING)
        if image is None:
            return None
        loc, scale = (t[0].detach().numpy() for t in model.vae.encoder(torch.from_numpy(image).reshape(1, -1)))
        return image, loc, scale, label
    index = int(st.session_state[f"pair_{end}"])
    return mnist_test()[0][index].reshape(MNIST_SIDE, MNIST_SIDE).numpy(), c.loc[index], c.scale[index], label
