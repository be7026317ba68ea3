"""Train: start a run, watch the ELBO rise and the digits sharpen; stop, resume, train longer."""

from pathlib import Path

import streamlit as st

from ui import jobs, sweep_view, train_view
from ui.picker import checkpoints_root, picked_name, runs
from ui.train_form import FORM_ROWS, RUN_HELP, key, widget
from ui.views import fragment, open_page


def start_form(root: Path, expanded: bool) -> None:
    """The form of a new run, its fields drawn from the Config, each error under its field and the
    refusal of the start as a whole under Start."""
    with st.expander("Start a new run", icon=":material/add_circle:", expanded=expanded):
        with st.form("train_form", border=False):
            st.caption("The tutorial's settings are the defaults. For a quick try, lower the epochs "
                       "or train on a subset of the 60,000 training images.")
            for row in FORM_ROWS:
                columns = st.columns(3)
                for column, field in zip(columns, row):
                    if field == "run":
                        column.text_input("Run name", key="train_run", persist_state="session", help=RUN_HELP)
                    else:
                        widget(column, field)
                    train_view.field_error(column, key(field))
            columns[2].checkbox("Overwrite", value=False, key="train_overwrite",
                                help="Start anew under the name of an existing run, replacing it.")
            st.form_submit_button("Start", type="primary", icon=":material/play_arrow:",
                                  on_click=train_view.start_run, args=(root,))
            train_view.field_error(st, train_view.START)


def main(root: Path) -> None:
    """Title, the forms (a run, a sweep) and the sweeps' progress, then the watched run, live while it trains."""
    st.title("Train")
    train_view.find_training(root)
    watched = picked_name()
    active = watched is not None and jobs.job(root, watched).active
    if "train_run" not in st.session_state:
        st.session_state.train_run = train_view.fresh_name(root)
    # Folded while the watched run trains; kept open after a refused Start (say, a run started in another
    # tab now holds the server), so that the reason and the values typed stay in sight.
    start_form(root, expanded=not active or bool(st.session_state.get(train_view.ERRORS)))
    sweep_view.form(root)
    sweep_view.progress_panel(root)
    if watched is None:
        st.info("No run yet: fill in the form above and press Start.")
        st.stop()
    fragment(train_view.live, run_every=train_view.every(active))(root, watched, active,
                                                                   any(info.name == watched for info in runs()))


open_page(__file__)
main(checkpoints_root())
