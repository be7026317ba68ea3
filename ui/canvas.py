"""Draw's canvas: white strokes on black, kept for the session, its toolbar pinned for phones.

    from ui.canvas import PIN_TOOLBAR, canvas_ink
    ink = canvas_ink()                                    # (280, 280) in [0, 1], or None while blank
    st.html(PIN_TOOLBAR, unsafe_allow_javascript=True)    # the undo/redo/clear toolbar, always shown
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from vae_core import latent

CANVAS_SIDE = 280  # pixels: ten screen pixels to one of MNIST's
CANVAS = "draw_canvas"  # the canvas's widget key
STROKES = "draw_strokes"  # session key: the canvas's strokes (Fabric.js JSON), redrawn when the user comes back
MOUNTED = "draw_mounted_with"  # session key: the strokes the canvas was mounted with on this visit


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
# the rule "always shown" to each canvas's root, now, whenever the page changes, and for 10 s after.
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
  // A shadow root attached after the page's last change is no change the observer sees (a busy machine
  // showed the toolbar unpinned): look again every 250 ms for the next 10 s.
  let looks = 0;
  const again = setInterval(() => { pin(); if (++looks >= 40) clearInterval(again); }, 250);
})();
</script>""" % CANVAS
