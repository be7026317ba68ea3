"""Entry point: `streamlit run streamlit_app.py`, navigation over the views in pages/."""

import streamlit as st

from ui.runs import enter, run_picker

st.set_page_config(page_title="See a VAE learn", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/samples.py", title="Samples", icon=":material/casino:"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("pages/latent_map.py", title="Latent map", icon=":material/scatter_plot:"),
]

page = st.navigation(PAGES)
enter()
run_picker()
page.run()
