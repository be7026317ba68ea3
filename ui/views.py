"""The app's views in one list: the entry's navigation, Home's cards and every "go to" link read it.

    from ui.views import VIEWS, open_page, link
    open_page(__file__)                       # first line of every view in pages/
    link("latent_map", "Its latent map")      # a link to a view, with the view's icon
    guarded(page.run)                         # the entry runs each view through it: no raw traceback
    publish()                                 # then the view's state goes to the address bar
    fragment(follow, run_every=0.5)(task)     # st.fragment, with the same guard around each of its reruns

A new view is one file in pages/ plus one line in VIEWS.
"""

from __future__ import annotations

import functools
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from ui import settings, urlstate

LOG = logging.getLogger("vae_app")
_ENTERED = "_entered"  # set by streamlit_app.py in every session it runs for
_WANTED = "_wanted"  # the page a session asked for before the entry script ran
_SHOWN = "_shown_view"  # session key: the name of the view the session's last run drew


@dataclass(frozen=True)
class View:
    name: str  # its file in pages/, without .py
    title: str
    icon: str  # a Material icon, ":material/...:"
    blurb: str  # one line: what the view shows

    @property
    def path(self) -> str:
        return f"pages/{self.name}.py"


VIEWS = (
    View("home", "Home", ":material/home:", "The model, the guide and a live look at every view."),
    View("train", "Train", ":material/model_training:", "Start a run and watch its ELBO rise and its digits sharpen."),
    View("samples", "Samples", ":material/casino:", "Digits decoded from codes drawn from the prior."),
    View("reconstructions", "Reconstructions", ":material/compare:", "Test digits beside what the VAE makes of them."),
    View("latent_map", "Latent map", ":material/scatter_plot:", "The 10,000 test codes in 2-D, coloured by digit."),
    View("timeline", "Timeline", ":material/timeline:",
         "Watch the codes sort into digits, epoch by epoch, with KL per dimension and the active units."),
    View("interpolate", "Interpolate", ":material/linear_scale:",
         "Decode the way from one digit's code to another's, straight and along a great circle."),
    View("traverse", "Traverse", ":material/tune:",
         "Vary one latent dimension at a time; see which of the 50 the model really uses."),
    View("draw", "Draw", ":material/draw:", "Draw a digit: see how the VAE reads it, and where it lands."),
    View("evaluate", "Evaluate", ":material/functions:",
         "How likely the test digits are: the ELBO beside an importance-weighted estimate of log p(x)."),
    View("compare", "Compare", ":material/stacked_line_chart:",
         "Runs side by side: ELBO curves, settings, final figures, samples and reconstructions."),
)
BY_NAME = {view.name: view for view in VIEWS}


def navigation() -> StreamlitPage:
    """The sidebar's page list, Home first and default."""
    return st.navigation([st.Page(v.path, title=v.title, icon=v.icon, default=v.name == "home") for v in VIEWS])


def link(name: str, label: str | None = None, where=st) -> None:
    """A link to view `name` (its title unless `label` is given), with the view's icon."""
    view = BY_NAME[name]
    where.page_link(view.path, label=label or view.title, icon=view.icon)


def enter() -> None:
    """Called by the entry script after st.navigation: mark the session, honour a deep link."""
    st.session_state[_ENTERED] = True
    wanted = st.session_state.pop(_WANTED, None)
    if wanted:
        st.switch_page(wanted[0], query_params=wanted[1])


def open_page(file: str) -> None:
    """First call of every view (pass `__file__`): route a stray first request through the entry,
    keep the settings.

    A freshly started server serves its very first request from pages/ in
    Streamlit's older multipage mode, skipping streamlit_app.py (no
    navigation, no picker) until st.navigation has run once.
    """
    if not st.session_state.get(_ENTERED):
        wanted = (BY_NAME[Path(file).stem].path, st.query_params.to_dict())  # a link's state goes along
        st.session_state[_WANTED] = wanted
        st.switch_page("streamlit_app.py", query_params=wanted[1])
    settings.keep()
    st.session_state[_SHOWN] = Path(file).stem
    urlstate.sync(Path(file).stem)


def publish() -> None:
    """After a view has run: its state in the address bar, including what its own buttons changed."""
    view = st.session_state.get(_SHOWN)
    if view:
        urlstate.write(view)


def guarded(run: Callable[[], object]) -> None:
    """Run a view (or a fragment's body): a failure is shown in the user's words with its details folded
    away, and its traceback goes to the server's log. st.stop and st.rerun pass through (BaseException)."""
    try:
        run()
    except Exception as exc:  # any failure of a view: the page must still answer
        LOG.error("A view failed:\n%s", traceback.format_exc())
        show_failure(exc)


def show_failure(exc: Exception) -> None:
    """What went wrong, what to do, and the details in an expander."""
    if isinstance(exc, MemoryError):
        what, todo = "The server ran out of memory for this view.", "Ask for less (fewer images or samples), or close other work, then reload."
    elif isinstance(exc, OSError):
        what, todo = f"A file could not be read or written: {exc.strerror or exc}.", "Check the disk and the run's folder, then reload the page."
    else:
        what, todo = "This view failed while drawing.", ("Reload the page; if it fails again, pick another run in the "
                                                          "sidebar, and report the details below.")
    st.error(f"{what} {todo}", icon=":material/error:")
    with st.expander("Details"):
        st.code("".join(traceback.format_exception_only(type(exc), exc)).strip(), language=None)


def fragment(func: Callable, run_every: float | None = None) -> Callable:
    """st.fragment(func, run_every=...), each of its reruns guarded like a view."""
    @functools.wraps(func)
    def body(*args, **kwargs) -> None:
        guarded(lambda: func(*args, **kwargs))
    return st.fragment(body, run_every=run_every)
