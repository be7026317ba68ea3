"""Entry point: `streamlit run streamlit_app.py`."""

import streamlit as st

st.set_page_config(page_title="See a VAE learn", page_icon="🧠", layout="wide")
st.title("See a VAE learn")
st.write("Pyro's variational autoencoder on MNIST. The views arrive with the next release; "
         "meanwhile train from the command line: `python -m vae_core train --run demo --epochs 1`.")
