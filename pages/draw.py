"""Draw: a digit of your own, made the way MNIST's were, read by the VAE and placed among the test digits."""

import numpy as np
import streamlit as st
import torch

from ui.codes import DRAWING, codes, map_points, neighbour_row, pair_buttons, square_map, test_elbos
from ui.figures import grid, latent_figure, marker_trace
from ui.runs import mnist_test, require_model
from ui.views import open_page
from vae_core import analysis, latent
from vae_core.likelihoods import note

open_page(__file__)

CANVAS_SIDE = 280  # pixels: ten screen pixels to one of MNIST's
CANVAS = "draw_canvas"  # the canvas's widget key
STROKES = "draw_strokes"  # session key: the canvas's strokes (Fabric.js JSON), redrawn when the user comes back
MOUNTED = "draw_mounted_with"  # session key: the strokes the canvas was mounted with on this visit
NEIGHBOURS = 8
PICTURE_TYPES = ["png", "jpg", "jpeg", "gif"]  # uploads offered; an animated GIF counts by its first frame

st.title("Draw")
model = require_model()
test_images, test_labels = mnist_test()
labels = test_labels.numpy()


def keep_strokes() -> None:
    """The canvas's callback, which runs even when the user leaves the page right after a stroke."""
    drawing = (st.session_state.get(CANVAS) or {}).get("drawing") or {}
    if isinstance(drawing.get("raw"), dict):
        st.session_state[STROKES] = drawing["raw"]


def canvas_ink() -> np.ndarray | None:
    """The canvas, white strokes on black, as ink; None while it is blank or where it cannot load."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # the component registers with a running server only (AppTest has none)
        st.info(f"The drawing canvas is not available here ({type(exc).__name__}): upload a picture instead.")
        return None
    if CANVAS not in st.session_state:  # mounted afresh, after a page switch: redraw the strokes kept
        st.session_state[MOUNTED] = st.session_state.get(STROKES)
    result = st_canvas(stroke_width=20, stroke_color="#ffffff", background_color="#000000", height=CANVAS_SIDE,
                       width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True, key=CANVAS,
                       initial_drawing=st.session_state.get(MOUNTED), on_change=keep_strokes)
    if result is None or result.image_data is None:
        return None
    st.session_state[STROKES] = result.json_data
    ink = latent.ink_from_canvas(result.image_data)
    return ink if ink.max() > 0 else None


# The canvas's toolbar (undo, redo, clear) shows only while the pointer hovers the canvas, so never on a
# phone. The component draws inside a shadow root, which the page's CSS cannot reach: this script adds
# the rule "always shown" to each canvas's root, now and whenever the canvas mounts again.
PIN_TOOLBAR = """<script>
(() => {
  const pin = () => document.querySelectorAll(".st-key-%s [data-testid='stBidiComponentIsolated']").forEach(host => {
    const root = host.shadowRoot;
    if (!root || root.querySelector("style[data-pinned-toolbar]")) return;
    const style = document.createElement("style");
    style.dataset.pinnedToolbar = "";
    style.textContent = ".dc-toolbar { opacity: 1 !important; top: -2.65rem !important; }";
    root.appendChild(style);
  });
  pin();
  if (!window.drawToolbarPinned) {
    window.drawToolbarPinned = new MutationObserver(pin);
    window.drawToolbarPinned.observe(document.body, {childList: true, subtree: true});
  }
})();
</script>""" % CANVAS

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
elif DRAWING in st.session_state:
    x = st.session_state[DRAWING]
    st.caption("Below: your last digit, kept for this session. Draw or upload another to replace it.")
else:
    st.info("Draw a digit above, or upload a picture of one, to see how the VAE reads it.")
    st.stop()

flat = torch.from_numpy(x).reshape(1, -1)
rec = analysis.reconstructions(model.vae, flat, k=4, seed=0)
elbo = analysis.elbo_estimate(model.vae, flat, ids=[0], seed=0)
value, se = float(elbo.mean[0]), float(elbo.se[0])
z_loc, z_scale = (t[0].detach().numpy() for t in model.vae.encoder(flat))
share = float((test_elbos(model) > value).mean())  # (0 to 1)

st.subheader("How the VAE reads it")
left, right = st.columns([3, 2])
left.image(grid(np.concatenate([x[None], rec.draws[0].numpy(), rec.at_loc.numpy()]), nrow=6, scale=4),
           caption="your digit as MNIST's were made (cropped, scaled to 20 × 20, centred by mass), "
                   "4 reconstructions, the decoder mean at z_loc", width="stretch")
right.metric("ELBO", f"{value:.1f} nats", help="The mean of 64 one-sample estimates, ± its standard error; "
             f"a lower bound on log p(x). {note(model.vae.config.likelihood)}")
higher = int((test_elbos(model) > value).sum())  # test digits the model finds likelier
right.caption(f"± {se:.1f}. Less likely than {share:.0%} of the 10,000 test digits ({higher:,} have a higher ELBO)."
              if share >= 0.5 else f"± {se:.1f}. More likely than {1 - share:.0%} of the 10,000 test digits "
                                   f"(only {higher:,} have a higher ELBO).")
right.caption(f"Mean z_scale {z_scale.mean():.3f} (test digits: {codes(model).scale.mean():.3f}): "
              "how unsure the encoder is of its code.")
pair_buttons(right, None, "draw")

c = codes(model)
idx, dist = latent.neighbours(c.loc, z_loc, k=NEIGHBOURS)
st.subheader(f"Its {NEIGHBOURS} nearest test digits")
neighbour_row(idx, dist)
st.caption("Nearest by the distance between z_loc vectors, under each digit.")

xy, method = map_points(model)
spot = latent.place(c.loc, xy, z_loc, k=NEIGHBOURS)
fig = latent_figure(xy, labels, f"Your digit on the {method} map · run {model.name} · epoch {model.epoch}",
                    faded=True)
fig.add_trace(marker_trace(spot, "your digit"))
square_map(fig, "draw_map")
st.caption(f"{method} has no exact place for a new code: the star sits at the mean position of its "
           f"{NEIGHBOURS} nearest test codes.")
