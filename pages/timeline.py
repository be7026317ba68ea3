"""Timeline: how the codes of 2,000 test digits, KL per dimension and the active units changed epoch by epoch."""

import streamlit as st

from ui import jobs
from ui import timeline_view as tv
from ui.picker import checkpoints_root, picked_info, picked_name, runs, training_now
from ui.views import fragment, link, open_page
from vae_core import timeline
from vae_core.runs import CHECKPOINT_FILE, run_dir

OTHER = "timeline_other"  # session key: the run shown beside the picked one ("" for none)
NONE = ""


def no_frames(name: str | None, training: bool) -> None:
    """What to do when the picked run has no recorded frames (or there is no run), then stop."""
    if name is None:
        st.info("There is no trained run yet. Train one: its timeline is recorded as it learns.")
    elif training:
        st.info(f"Run {name} is training: its timeline starts with the first frame, recorded at its first test "
                "epoch. This page shows it as soon as it is written.", icon=":material/hourglass_top:")
        fragment(_reload_when_recorded, run_every=tv.POLL_SECONDS)(run_dir(checkpoints_root(), name))
    else:
        st.info(f"Run {name} has no timeline: it was trained before runs recorded one. Train a run with the app "
                "(Train) or with `python -m vae_core train --run NAME --test-every 1`: a frame is recorded at every "
                "test epoch, so `--test-every 1` records every epoch.", icon=":material/info:")
    link("train", "Go to Train")
    st.stop()


def _reload_when_recorded(folder) -> None:
    """Polled while a run without frames trains: redraw the view once its first frame and checkpoint exist."""
    if timeline.frame_epochs(folder) and (folder / CHECKPOINT_FILE).exists():
        st.rerun()


def second_run(name: str) -> tuple[str, timeline.Timeline, tv.Map, dict] | None:
    """The run picked to show beside `name`, among the others with a timeline, with its frames, map and
    history (its ELBO goes in its map's title)."""
    root = checkpoints_root()
    others = {info.name: info for info in runs()
              if info.name != name and timeline.frame_epochs(run_dir(root, info.name))}
    if not others:
        return None
    if st.session_state.get(OTHER) not in (NONE, *others):
        st.session_state[OTHER] = NONE
    chosen = st.sidebar.selectbox("Beside it", (NONE, *others), key=OTHER,
                                  format_func=lambda n: n or "no other run",
                                  help="Another run with a timeline, drawn beside this one at the nearest "
                                       "recorded epoch: the same 2,000 test digits.")
    if chosen == NONE:
        return None
    line, version = tv.timeline_of(run_dir(root, chosen))
    if line is None:
        return None
    return chosen, line, tv.map_of(others[chosen], line, version), jobs.job(root, chosen).history or {}


def main() -> None:
    """Title, the picked run's frames (or how to get them), its map, the player and the charts, the exports."""
    st.title("Timeline")
    name = picked_name()
    info = picked_info()
    training = name is not None and training_now(name)
    folder = run_dir(checkpoints_root(), name) if name else None
    line, version = tv.timeline_of(folder) if folder else (None, ())
    if line is None or info is None:
        no_frames(name, training)
    st.caption(f"Run {name}: {len(line.epochs)} recorded epoch(s), {line.epochs[0]} to {line.epochs[-1]}"
               + (" · training: new epochs appear as they are recorded" if training else "")
               + (f" · {len(line.skipped)} damaged frame(s) skipped" if line.skipped else ""))
    other = second_run(name)
    m = tv.map_of(info, line, version)
    every = tv.player(line)
    history = jobs.job(checkpoints_root(), name).history or {}
    fragment(tv.frame_view, run_every=every or (tv.POLL_SECONDS if training else None))(
        folder, version, name, line, m, history, training, other)
    if m.method == "PCA":
        tv.tsne_status(info, line, training)
    tv.exports(name, line, m, history)


open_page(__file__)
main()
