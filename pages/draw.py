"""Draw: a digit of your own, made the way MNIST's were, read by the VAE and placed among the test digits."""

import numpy as np
import streamlit as st
import torch

from ui.canvas import PIN_TOOLBAR, canvas_ink
from ui.codes import DRAWING, codes, map_points, neighbour_row, pair_buttons, square_map, test_elbos
from ui.figures import grid, latent_figure, marker_trace
from ui.runs import Model, mnist_test, require_model
from ui.views import open_page
from vae_core import analysis, latent, objectives
from vae_core.likelihoods import LIKELIHOODS

NEIGHBOURS = 8
PICTURE_TYPES = ["png", "jpg", "jpeg", "gif"]  # uploads offered; an animated GIF counts by its first frame


def drawn_digit() -> np.ndarray:
    """The digit to read, (28, 28) in [0, 1] as MNIST's were made: drawn now, uploaded, or the last one kept
    for this session; else a word on what to do, and stop."""
    draw_tab, upload_tab = st.tabs(["Draw with the mouse or a finger", "Upload a picture"])
    with draw_tab:
        st.space("medium")  # room for the canvas's toolbar, which sits above its top edge
        ink = canvas_ink()
        st.html(PIN_TOOLBAR, unsafe_allow_javascript=True)
        st.caption("Draw one digit, large, in the middle. The toolbar above the canvas undoes a stroke or clears it.")
    with upload_tab:
        limit_mb = latent.MAX_UPLOAD_BYTES // 2**20  # Streamlit's "MB" is 2**20 bytes, as the engine's
        upload = st.file_uploader(f"A picture of one digit (PNG, JPEG or GIF, up to {limit_mb} MB)",
                                  type=PICTURE_TYPES, key="draw_upload", max_upload_size=limit_mb)
        if upload is not None:
            try:
                ink = latent.ink_from_picture(upload.getvalue())
            except ValueError as exc:
                st.error(f"{upload.name}: {str(exc)[:1].upper()}{str(exc)[1:]}.", icon=":material/error:")
                ink = None
    if ink is not None:
        try:
            x = latent.mnist_style(ink)  # (28, 28) in [0, 1]
        except ValueError as exc:
            st.warning(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", icon=":material/warning:")
            st.stop()
        st.session_state[DRAWING] = x  # for Interpolate's "My drawing", and for the next visit
        return x
    if DRAWING in st.session_state:
        st.caption("Below: your last digit, kept for this session. Draw or upload another to replace it.")
        return st.session_state[DRAWING]
    st.info("Draw a digit above, or upload a picture of one, to see how the VAE reads it.")
    st.stop()


def reading(model: Model, c: latent.Codes, x: np.ndarray) -> np.ndarray:
    """How the VAE reads the digit `x`: its reconstructions, its ELBO among the test digits', its z_scale, and
    Use as A/B. Returns its z_loc (z_dim,)."""
    flat = torch.from_numpy(x).reshape(1, -1)
    rec = analysis.reconstructions(model.vae, flat, k=4, seed=0)
    elbo = objectives.elbo_estimate(model.vae, flat, ids=[0], seed=0)
    value, se = float(elbo.mean[0]), float(elbo.se[0])
    z_loc, z_scale = (t[0].detach().numpy() for t in model.vae.encoder(flat))
    elbos = test_elbos(model)  # (10,000,) nats
    higher = int((elbos > value).sum())  # test digits the model finds likelier
    share = higher / len(elbos)  # (0 to 1)
    st.subheader("How the VAE reads it")
    left, right = st.columns([3, 2])
    left.image(grid(np.concatenate([x[None], rec.draws[0].numpy(), rec.at_loc.numpy()]), nrow=6, scale=4),
               caption="your digit as MNIST's were made (cropped, scaled to 20 × 20, centred by mass), "
                       "4 reconstructions, the decoder mean at z_loc", width="stretch")
    right.metric("ELBO", f"{value:.1f} nats", help="The mean of 64 one-sample estimates, ± its standard error; "
                 f"a lower bound on log p(x). {LIKELIHOODS[model.vae.config.likelihood].describe()}")
    right.caption(f"± {se:.1f}. Less likely than {share:.0%} of the 10,000 test digits ({higher:,} have a higher ELBO)."
                  if share >= 0.5 else f"± {se:.1f}. More likely than {1 - share:.0%} of the 10,000 test digits "
                                       f"(only {higher:,} have a higher ELBO).")
    right.caption(f"Mean z_scale {z_scale.mean():.3f} (test digits: {c.scale.mean():.3f}): "
                  "how unsure the encoder is of its code.")
    pair_buttons(right, None, "draw")
    return z_loc


def among_test_digits(model: Model, c: latent.Codes, z_loc: np.ndarray) -> None:
    """The digit's nearest test digits, and where it falls on the map of the test codes."""
    idx, dist = latent.neighbours(c.loc, z_loc, k=NEIGHBOURS)
    st.subheader(f"Its {NEIGHBOURS} nearest test digits")
    neighbour_row(idx, dist)
    st.caption("Nearest by the distance between z_loc vectors, under each digit.")
    xy, method = map_points(model, c)
    fig = latent_figure(xy, mnist_test()[1].numpy(),
                        f"Your digit on the {method} map · run {model.name} · epoch {model.epoch}", faded=True)
    fig.add_trace(marker_trace(latent.place(c.loc, xy, z_loc, k=NEIGHBOURS), "your digit"))
    square_map(fig, "draw_map")
    st.caption(f"{method} has no exact place for a new code: the star sits at the mean position of its "
               f"{NEIGHBOURS} nearest test codes.")


def main() -> None:
    """Title, the canvas or an upload, how the VAE reads the digit, then where it sits among the test digits."""
    st.title("Draw")
    model = require_model()
    x = drawn_digit()
    c = codes(model)
    among_test_digits(model, c, reading(model, c, x))


open_page(__file__)
main()
