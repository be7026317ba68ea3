"""The run every view shows: the sidebar's picker over the runs, read from their run.json files.

    from ui.picker import picked_info, run_picker
    run_picker()                   # in streamlit_app.py: shared by every view
    info = picked_info()           # the picked run's RunInfo (config, epochs, digest), or None

Nothing here loads a model or imports torch, so the sidebar and Home draw
before torch has loaded; ui.runs loads the picked run's model for the views.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from ui import jobs, urlstate
from vae_core.runs import CHECKPOINT_FILE, DEFAULT_ROOT, RUN_FILE, RunInfo, RunNameError, run_dir, scan_runs
from vae_core.start import busy

DEFAULT_RUN = "tutorial"
RUN_KEY = "run"  # session_state key of the picked run's name (plain state: it outlives every page)
PICKER_KEY = "run_picker"  # the sidebar widget's own key, a mirror of RUN_KEY
_LINK_NOTE = "_run_link_note"  # session key: why the run the address bar named is not shown


def checkpoints_root() -> Path:
    """Where runs live: $VAE_CHECKPOINTS (tests use it) or the project's checkpoints/."""
    return Path(os.environ.get("VAE_CHECKPOINTS", DEFAULT_ROOT))


def _stamp(root: Path) -> tuple:
    """Changes whenever a checkpoint or its run.json (written just after it) is added, replaced or removed."""
    stamps = []
    for f in sorted([*root.glob(f"*/{CHECKPOINT_FILE}"), *root.glob(f"*/{RUN_FILE}")]):
        try:
            stamps.append((str(f), f.stat().st_mtime_ns))
        except FileNotFoundError:  # removed since the glob
            pass
    return tuple(stamps)


@st.cache_data(show_spinner=False, max_entries=8)
def _scan(root: str, stamp: tuple) -> tuple[list[RunInfo], dict[str, str]]:
    """The runs and the unreadable ones; a run saved without a run.json is loaded (torch) once and given one."""
    scan = scan_runs(root)
    if scan.unindexed:
        from vae_core.checkpoint import index_runs  # torch: only for runs saved without a run.json

        scan = index_runs(scan)
    return scan.runs, scan.unreadable


def runs() -> list[RunInfo]:
    """Readable runs, newest first (cached until a checkpoint changes)."""
    root = checkpoints_root()
    return _scan(str(root), _stamp(root))[0]


def unreadable_runs() -> dict[str, str]:
    """Runs whose checkpoint cannot be read, with why."""
    root = checkpoints_root()
    return _scan(str(root), _stamp(root))[1]


def describe(info: RunInfo) -> str:
    """One line for a run: name, epochs completed and last test ELBO."""
    elbo = f" · test ELBO {-info.test_loss:.2f}" if info.test_loss is not None else ""
    return f"{info.name} · epoch {info.epoch}/{info.epochs}{elbo}"


def default_run(available: list[RunInfo]) -> RunInfo | None:
    """The shipped tutorial run when present, else the newest."""
    by_name = {r.name: r for r in available}
    return by_name.get(DEFAULT_RUN) or (available[0] if available else None)


def pick(name: str) -> None:
    """Switch every view, and the sidebar picker from its next drawing on, to run `name`."""
    st.session_state[RUN_KEY] = name


def _new_run(name: str | None) -> bool:
    """True for a run folder that exists but has no checkpoint yet (its first epoch is under way)."""
    if not name:
        return False
    try:
        return run_dir(checkpoints_root(), name).is_dir()
    except RunNameError:
        return False


def _from_link(available: list[RunInfo]) -> str | None:
    """Pick the run the address bar names when the session starts (a reload, a link); a note when it
    names no run (the name is only compared with the runs listed, never made into a path unchecked)."""
    raw = st.query_params.get(urlstate.RUN_PARAM)
    seen = st.session_state.setdefault(urlstate.SEEN, {})
    if raw is None or urlstate.RUN_PARAM in seen:  # a session reads the bar once (ui.urlstate says why)
        return None
    seen[urlstate.RUN_PARAM] = raw
    if raw in {r.name for r in available} or _new_run(raw):
        pick(raw)
        return None
    return f"The link names run {raw!r}, which is not in checkpoints/: showing another run instead."


def picked_name() -> str | None:
    """The name of the run the session looks at: the address bar's or the picker's choice, else the default run."""
    available = runs()
    note = _from_link(available)
    if note:
        st.session_state[_LINK_NOTE] = note
    name = st.session_state.get(RUN_KEY)
    if _names_a_run(name, available):
        return name
    fallback = default_run(available)
    return fallback.name if fallback else None


def run_picker() -> str | None:
    """Sidebar select box over the runs; the choice is shared by every view."""
    name = picked_name()
    note = st.session_state.pop(_LINK_NOTE, None)
    if note:
        st.info(note, icon=":material/link:")
    if name is not None:
        st.session_state.setdefault(urlstate.SEEN, {})[urlstate.RUN_PARAM] = st.session_state[urlstate.RUN] = name
    for bad, why in unreadable_runs().items():
        st.sidebar.warning(f"Run {bad} cannot be read, so it is not listed: {why}", icon=":material/warning:")
    if name is None:
        st.sidebar.caption("No trained runs yet.")
        return None
    by_name = {r.name: r for r in runs()}
    starting = [run for run in jobs.training(checkpoints_root()) if run not in by_name]  # no checkpoint yet
    options = list(by_name) + starting + ([] if name in by_name or name in starting else [name])
    st.session_state[PICKER_KEY] = name
    st.sidebar.selectbox("Checkpoint", options, key=PICKER_KEY, on_change=_picked_in_sidebar,
                         format_func=lambda n: describe(by_name[n]) if n in by_name else _unsaved(n),
                         help="Runs in checkpoints/, newest first. Every view shows the run picked here.")
    return name


def _picked_in_sidebar() -> None:
    """The picker's change: every view switches to the run chosen. A value that names no run is not a choice
    but a label the browser still showed when the run's label changed under it (a training run's epoch
    count, say, or its first checkpoint): Streamlit hands such a label back as the value. It is ignored, so
    that the views stay on their run instead of falling back to the default one (seen in the browser test:
    the Latent map opened the tutorial instead of the run just resumed)."""
    chosen = st.session_state[PICKER_KEY]
    if _names_a_run(chosen, runs()):
        pick(chosen)


def _names_a_run(name: str | None, available: list[RunInfo]) -> bool:
    """True for a listed run, or a run folder whose first epoch is under way."""
    return name in {r.name for r in available} or _new_run(name)


def training_now(name: str) -> bool:
    """True while the run's process is starting or training (vae_core.start.busy); a status that a killed
    process left behind says no."""
    return busy(run_dir(checkpoints_root(), name))


def _unsaved(name: str) -> str:
    """One line for a run with no checkpoint yet."""
    return f"{name} · {'first epoch under way' if training_now(name) else 'no epoch saved'}"


def picked_info() -> RunInfo | None:
    """The picked run as its run.json (or checkpoint) describes it; None with no saved epoch yet."""
    name = picked_name()
    return next((info for info in runs() if info.name == name), None)
