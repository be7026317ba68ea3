"""Per-session settings that survive page switches, one default per key.

    from ui.settings import keep
    keep()                                   # every page, before its widgets
    st.slider("Images", 16, 400, key="samples_n", persist_state="session")   # no value=: it lives here

Streamlit forgets a widget's value once a rerun does not draw it (another
page is open) unless the widget says `persist_state="session"`; every
settings widget does. Its first value is seeded here, so widgets take their
value from session state alone. (Writing each key back on every page, the
older idiom, fails: a fragment's rerun on another page drops those keys.)
"""

from __future__ import annotations

import streamlit as st

from ui.train_form import defaults

TEST, DRAWN = "Test digit", "My drawing"  # where an end of the Interpolate pair comes from

DEFAULTS: dict[str, object] = {
    # Samples
    "samples_n": 64,
    "samples_seed": 0,
    # Reconstructions
    "rec_how": "Random",
    "rec_count": 6,
    "rec_k": 3,
    "rec_seed": 0,
    "rec_digit": 0,
    "rec_indices": "0, 1, 2",
    # Latent map
    "map_perplexity": 30,
    "map_seed": 0,
    # Interpolate: the pair A, B (the map's and Draw's "use as" buttons set them too)
    "pair_a": 0,
    "pair_b": 1,
    "pair_a_from": TEST,
    "pair_b_from": TEST,
    "pair_a_digit": 1,
    "pair_b_digit": 7,
    "pair_steps": 12,
    # Traverse
    "trav_from": "A test digit",
    "trav_index": 0,
    "trav_along": "Latent dimensions",
    "trav_rows": 10,
    "trav_cols": 9,
    # Evaluate
    "eval_images": 1000,
    "eval_k": 100,
    "eval_seed": 0,
    # Train page
    "train_parts": False,
    # Train form (the run name's default is the first free name, set by the page)
    **defaults(),
}


def keep() -> None:
    """Give every setting its default the first time (the widgets' persist_state keeps it after)."""
    for key, default in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = default
