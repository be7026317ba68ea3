"""Per-session settings that survive page switches, one default per key.

    from ui.settings import keep
    keep()                                   # every page, before its widgets
    st.slider("Images", 16, 400, key="samples_n")   # no value=: the default lives here

Streamlit forgets a widget's value once a rerun does not draw it (another
page is open). Writing each key back at the top of every page keeps it for
the session; widgets then take their value from session state alone.
"""

from __future__ import annotations

import streamlit as st

from vae_core.config import Config

_TRAIN = Config()

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
    # Train form (the run name's default is the first free name, set by the page)
    "train_epochs": _TRAIN.epochs,
    "train_lr": _TRAIN.lr,
    "train_batch": _TRAIN.batch_size,
    "train_test_every": _TRAIN.test_every,
    "train_z_dim": _TRAIN.z_dim,
    "train_hidden": _TRAIN.hidden_dim,
    "train_seed": _TRAIN.seed,
    "train_limit": 0,
    "train_device": _TRAIN.device,
    "train_jit": _TRAIN.jit,
    "train_overwrite": False,
}


def keep() -> None:
    """Give every setting its default once, and keep its value across page switches."""
    for key, default in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, default)
    if "train_run" in st.session_state:
        st.session_state["train_run"] = st.session_state["train_run"]
