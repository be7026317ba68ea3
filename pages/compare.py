"""Compare: several runs side by side, their ELBO curves, settings, final figures, samples and reconstructions."""

import streamlit as st

from ui import compare_view
from ui.views import open_page


def main() -> None:
    """Title, the runs picked, then their likelihoods, curves, tables and digits."""
    st.title("Compare runs")
    models = compare_view.load(compare_view.choose())
    compare_view.likelihood_notes(sorted({m.vae.config.likelihood for m in models.values()}))
    compare_view.curves(models)
    compare_view.tables(models)
    compare_view.sweep_figures(models)
    compare_view.digits(models)


open_page(__file__)
main()
