"""Entry point: `streamlit run streamlit_app.py`, navigation over the views in pages/ (ui/views.py lists them)."""

import streamlit as st

from ui.picker import run_picker
from ui.views import enter, guarded, navigation, publish

st.set_page_config(page_title="See a VAE learn", page_icon="🧠", layout="wide")

page = navigation()
enter()
run_picker()
try:
    guarded(page.run)
finally:  # st.stop() ends most views early: their state still goes to the address bar
    publish()
