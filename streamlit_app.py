"""Entry point: `streamlit run streamlit_app.py`, navigation over the views in pages/ (ui/views.py lists them)."""

import streamlit as st

from ui.picker import run_picker
from ui.views import enter, guarded, navigation

st.set_page_config(page_title="See a VAE learn", page_icon="🧠", layout="wide")

page = navigation()
enter()
run_picker()
guarded(page.run)
