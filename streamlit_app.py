"""Entry point: `streamlit run streamlit_app.py`, navigation over the views in pages/ (ui/views.py lists them)."""

import streamlit as st

from ui.picker import run_picker
from ui.views import enter, navigation

st.set_page_config(page_title="See a VAE learn", page_icon="🧠", layout="wide")

page = navigation()
enter()
run_picker()
page.run()
