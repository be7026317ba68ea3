"""Interpolate: decode the codes on the way from digit A to digit B, along a line and along a great circle."""

import io

import numpy as np
import streamlit as st
from PIL import Image

from ui.codes import DRAWING, codes, decoded, endpoint, map_points, square_map
from ui.figures import grid, labelled_rows, latent_figure, path_trace, png_bytes
from ui.runs import Model, mnist_test, require_model
from ui.settings import DRAWN, TEST
from ui.views import link, open_page
from vae_core import latent

# latent.path's slerp is White's formula on the codes as they are: each code on the way is a positive mix of
# A's and B's, so its direction turns along the great circle between theirs; its length stays constant only
# when A and B are equally long (otherwise the way is an arc of an ellipse about the origin).
NAMES = {"linear": "Linear: the straight line between the codes",
         "slerp": "Spherical (slerp, White 2016): the code's direction turns along the great circle from A's to B's"}


def random_pair(labels: np.ndarray) -> None:
    """Callback: a random test digit of each chosen class as A and B."""
    rng = np.random.default_rng()
    for end in ("a", "b"):
        st.session_state[f"pair_{end}"] = int(rng.choice(np.flatnonzero(labels == st.session_state[f"pair_{end}_digit"])))
        st.session_state[f"pair_{end}_from"] = TEST


def controls(labels: np.ndarray) -> None:
    """The sidebar: where A and B come from, the steps, and a random pair of chosen digits."""
    with st.sidebar:
        for end in ("a", "b"):
            st.radio(f"{end.upper()} is", (TEST, DRAWN), key=f"pair_{end}_from", persist_state="session", horizontal=True)
            st.number_input(f"Test index of {end.upper()} (0 to 9999)", 0, len(labels) - 1, step=1, key=f"pair_{end}",
                            persist_state="session", disabled=st.session_state[f"pair_{end}_from"] == DRAWN)
        st.slider("Steps", 8, 32, key="pair_steps", persist_state="session", help="Codes along the way, A and B included.")
        with st.expander("A random pair of chosen digits"):
            st.selectbox("Digit of A", range(10), key="pair_a_digit", persist_state="session")
            st.selectbox("Digit of B", range(10), key="pair_b_digit", persist_state="session")
            st.button("Pick a random pair", icon=":material/shuffle:", on_click=random_pair, args=(labels,))


def downloads(model: Model, rows: dict[str, np.ndarray], label_a: str, label_b: str) -> None:
    """Both strips as a PNG, and slerp as an animated GIF, named by the run, the epoch, A and B."""
    tags = {end: st.session_state[f"pair_{end}"] if st.session_state[f"pair_{end}_from"] == TEST else "drawing"
            for end in ("a", "b")}
    stem = f"interpolate-{model.name}-e{model.epoch}-a{tags['a']}-b{tags['b']}"  # interpolate-tutorial-e100-a123-b456
    strip = labelled_rows(rows, f"run {model.name} · epoch {model.epoch} · from A, {label_a}, to B, {label_b}")
    frames = [Image.fromarray(grid(frame[None], nrow=1, scale=8, padding=0)) for frame in rows["slerp"]]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:] + frames[-2:0:-1], duration=120, loop=0)
    left, right = st.columns(2)
    left.download_button("Strip as PNG (linear over slerp)", png_bytes(strip), f"{stem}.png", "image/png",
                         icon=":material/download:", on_click="ignore",
                         help=f"Saves {stem}.png: both rows, named, under the run, the epoch, A and B.")
    right.download_button("Slerp as an animated GIF (there and back)", gif.getvalue(), f"{stem}.gif", "image/gif",
                          icon=":material/animated_images:", on_click="ignore", help=f"Saves {stem}.gif.")


def path_map(model: Model, c: latent.Codes, labels: np.ndarray, paths: dict[str, np.ndarray]) -> None:
    """Both paths drawn over the map of the test codes, each code at the mean place of its nearest test codes."""
    xy, method = map_points(model, c)
    fig = latent_figure(xy, labels, f"The path on the {method} map · run {model.name} · epoch {model.epoch}", faded=True)
    for kind, z in paths.items():
        fig.add_trace(path_trace(latent.place(c.loc, xy, z), NAMES[kind].split(":")[0], dashed=kind == "linear"))
    square_map(fig, "pair_map")
    st.caption(f"{method} has no exact place for a new code, so each code on the way is placed at the mean position of "
               "its 8 nearest test codes. A jump means the path crosses a region no test digit's code is near.")


def main() -> None:
    """Title, the pair, both strips and their downloads, then the paths on the map."""
    st.title("Interpolate")
    model = require_model()
    labels = mnist_test()[1].numpy()
    controls(labels)
    c = codes(model)
    ends = {end: endpoint(model, c, end) for end in ("a", "b")}
    if any(v is None for v in ends.values()):
        st.info("There is no drawing yet: draw a digit on the Draw view, or pick a test digit as A and B.")
        link("draw", "Draw a digit")
        st.stop()
    (_, z_a, scale_a, label_a), (_, z_b, scale_b, label_b) = ends["a"], ends["b"]
    if label_a == label_b:
        st.warning(f"A and B are the same image ({label_a}): pick two different ones in the sidebar.",
                   icon=":material/warning:")
        st.stop()
    steps = int(st.session_state.pair_steps)
    paths = {kind: latent.path(z_a, z_b, steps, kind) for kind in latent.PATH_KINDS}  # each (steps, z_dim)
    rows = {kind: decoded(model, z) for kind, z in paths.items()}  # each (steps, 28, 28)
    st.caption(f"From A, {label_a}, to B, {label_b}: the decoder's mean image at {steps} codes, "
               f"A's z_loc and B's z_loc included. Run {model.name}, epoch {model.epoch}, checkpoint {model.version}. "
               f"The encoder's uncertainty, mean z_scale: A {scale_a.mean():.3f}, B {scale_b.mean():.3f}.")
    for kind, images in rows.items():
        st.markdown(f"**{NAMES[kind]}**")
        st.image(grid(images, nrow=steps, scale=2), width="stretch")
    middle = {kind: float(np.linalg.norm(latent.path(z_a, z_b, 3, kind)[1])) for kind in latent.PATH_KINDS}  # t = 1/2
    st.caption(f"The codes' length |z|: A {np.linalg.norm(z_a):.2f}, B {np.linalg.norm(z_b):.2f}; halfway "
               f"{middle['slerp']:.2f} along slerp and {middle['linear']:.2f} on the straight line. Slerp keeps the "
               "length only between codes of equal length; otherwise its way is an arc of an ellipse about the origin.")
    downloads(model, rows, label_a, label_b)
    path_map(model, c, labels, paths)
    if DRAWING in st.session_state:
        st.caption("Your drawing is kept for this session: draw another on the Draw view.")


open_page(__file__)
main()
