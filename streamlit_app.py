"""Entry point: `streamlit run streamlit_app.py`, navigation over the views in pages/ (ui/views.py lists them)."""


def main() -> None:
    # pandas before anything else, in every session's run: Plotly checks data against pandas by looking it up in
    # sys.modules, and a pandas still being imported by another session's thread (or the background preloader)
    # failed there ("partially initialized module 'pandas' has no attribute 'Series'", seen with three sessions).
    # A session reaching this line while another imports pandas waits for that import to finish.
    import pandas  # noqa: F401
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


# Streamlit runs this file as __main__ at each rerun. The app's child processes (vae_core.forkserver: background
# computations and training runs) are started by multiprocessing, which runs the parent's __main__ again in each
# child as __mp_main__: there this file only defines main(). Drawn there, the sidebar listed the runs, and torch
# work done before a training run was forked from that child hung the run (OpenMP's threads do not survive a fork).
if __name__ != "__mp_main__":
    main()
