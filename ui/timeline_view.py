"""The Timeline view's parts: a run's recorded frames, their map, the player, the charts, the exports.

    from ui import timeline_view as tv
    line, version = tv.timeline_of(folder)          # the run's frames, read once per version of its files
    m = tv.map_of(info, line, version)             # Map: z_loc, aligned T-SNE when kept, else PCA
    tv.player(line)                                # Play / Pause; the fragment's timer steps the epoch
    tv.frame_view(...)                             # the slider, the codes, KL, active units, ELBO

The maps of a timeline: 2-d codes as they are; else the aligned T-SNE of all
frames (vae_core.timeline_maps) once computed in the background and kept in
the run's cache under its checkpoint version and last epoch, and meanwhile a
PCA fitted once on every frame's codes, drawn at once.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from ui import tasks
from ui import timeline_figures as tf
from ui.figures import DIGIT_COLOURS, chart_config
from ui.home import recorded_timeline
from ui.codes import square_map
from ui.views import fragment
from vae_core import run_cache, timeline, timeline_gif, timeline_maps
from vae_core.runs import RunInfo

AT = "timeline_at"  # session key: the epoch the view shows (epochs completed); only step() and the user move it
EPOCH = "timeline_epoch"  # session key: the slider the user moves, drawn while paused
SHOWN = "timeline_shown"  # session key: the slider drawn, disabled, while Play steps the epoch
PLAYING = "timeline_playing"  # session key: True while Play steps the epoch
CANCELLED = "timeline_cancelled"  # session key: the (digest, cache name) of aligned T-SNEs the user cancelled
TICK_SECONDS = 0.7  # Play's step: one recorded epoch per tick
POLL_SECONDS = 2.0  # while the run trains: how often the view looks for a new frame
PERPLEXITY, SEED = 30.0, 0  # the aligned T-SNE's settings: the Latent map's defaults


@dataclass(frozen=True)
class Map:
    xy: np.ndarray  # (T, n, 2) every frame's points on this map
    method: str  # "z_loc", "aligned T-SNE" or "PCA"
    ranges: tuple[tuple[float, float], tuple[float, float]]  # fixed axes over all frames
    words: str  # what the map is, for the caption


# The run's recorded frames and the version of its files read: one cache with Home's Timeline card.
timeline_of = recorded_timeline


@st.cache_resource(show_spinner=False, max_entries=4)
def _pca(folder: str, version: tuple, _line: timeline.Timeline) -> np.ndarray:
    return timeline_maps.pca_frames(_line.loc)


def tsne_name(line: timeline.Timeline) -> str:
    """Cache name of the aligned T-SNE of `line`: its frames and settings (the checkpoint version is the key's)."""
    return (f"timeline-tsne-e{int(line.epochs[-1])}-t{len(line.epochs)}-p{PERPLEXITY:g}-s{SEED}"
            f"-i{timeline_maps.ALIGNED_ITER}")


def kept_tsne(info: RunInfo, line: timeline.Timeline) -> np.ndarray | None:
    """The aligned T-SNE of `line` kept for this checkpoint version, or None."""
    return run_cache.load_cached(info.path, tsne_name(line), info.digest, shape=(*line.loc.shape[:2], 2))


def map_of(info: RunInfo, line: timeline.Timeline, version: tuple) -> Map:
    """The map the view draws now: 2-d codes as they are, the kept aligned T-SNE, else the PCA of all frames."""
    frames = len(line.epochs)
    if line.z_dim == 2:
        xy, method = line.loc, "z_loc"
        words = "the codes as they are (z_dim 2), on axes fixed over all recorded epochs"
    elif (xy := kept_tsne(info, line)) is not None:
        method = "aligned T-SNE"
        words = (f"aligned T-SNE: each epoch's T-SNE starts from the previous epoch's map, so points move "
                 f"rather than jump ({frames} frames, perplexity {PERPLEXITY:g})")
    else:
        xy, method = _pca(str(info.path.parent), version, line), "PCA"
        words = f"PCA: one projection fitted on the codes of all {frames} recorded epochs"
    return Map(xy, method, timeline_maps.bounds(xy), words)


def tsne_task(info: RunInfo, line: timeline.Timeline) -> tasks.Task:
    """The aligned T-SNE of `line` on the server's pool, kept in the run's cache when done."""
    name, shape = tsne_name(line), (*line.loc.shape[:2], 2)
    compute = tasks.in_child(timeline_maps.aligned_tsne, line.loc, perplexity=PERPLEXITY, seed=SEED)

    def work(task: tasks.Task) -> None:
        result = compute(task)
        if result.shape != shape:
            raise ValueError(f"the map has shape {result.shape}, not {shape}")
        run_cache.keep(info.path, name, info.digest, result)  # a map the disk would not keep is computed again
        task.result = result

    return tasks.pool().submit((info.digest, name), work)


def tsne_status(info: RunInfo, line: timeline.Timeline, training: bool) -> None:
    """Under the PCA map: the aligned T-SNE's progress with Cancel, or why it is not being computed."""
    key = (info.digest, tsne_name(line))
    if training:
        st.caption("The aligned T-SNE is computed once the run has stopped training; the PCA shows meanwhile.")
    elif key in st.session_state.get(CANCELLED, set()):
        st.caption("The aligned T-SNE was cancelled: this is the PCA of the same codes.")
        if st.button("Compute the aligned T-SNE", key="timeline_compute", icon=":material/play_arrow:"):
            st.session_state[CANCELLED].discard(key)
            st.rerun()
    else:
        fragment(follow, run_every=tasks.FOLLOW_SECONDS)(tsne_task(info, line))


def follow(task: tasks.Task) -> None:
    """The aligned T-SNE's queue place or progress, and Cancel; a full rerun draws the map once it is kept."""
    if task.done:
        if task.error:
            st.error(f"The aligned T-SNE failed: {task.error}. The PCA stays.", icon=":material/error:")
            return
        st.rerun()
    task.watch()
    ahead = task.ahead
    text = (f"Aligned T-SNE queued: {ahead} ahead" if ahead else "Aligned T-SNE: next to start") \
        if ahead is not None else f"Aligned T-SNE of every epoch: {task.progress:.0%}"
    st.progress(task.progress, text=f"{text} · the PCA shows meanwhile")
    st.button("Cancel T-SNE", key="timeline_cancel", icon=":material/stop:", on_click=_cancel, args=(task,),
              disabled=task.cancelling)


def _cancel(task: tasks.Task) -> None:
    task.cancel()
    st.session_state.setdefault(CANCELLED, set()).add(task.key)


def toggle_play(playing: bool, last: int) -> None:
    """Play / Pause's callback: `playing` is what the pressed button said (Pause: False), not a flip of the
    state now, which a timer tick may have changed since the button was drawn. Pause keeps the epoch the last
    tick drew; Play starts over from the first epoch when the view is at the `last` one."""
    st.session_state[PLAYING] = playing
    if playing and st.session_state.get(AT) == last:
        st.session_state[AT] = None  # step() goes to the first epoch


def player(line: timeline.Timeline, where=st) -> float | None:
    """Play / Pause; the seconds between the frame view's timer ticks (None: no timer)."""
    playing = st.session_state.get(PLAYING, False)
    where.button("Pause" if playing else "Play", key="timeline_play", on_click=toggle_play,
                 args=(not playing, int(line.epochs[-1])), icon=":material/pause:" if playing else ":material/play_arrow:",
                 type="primary", help=f"Play steps through the recorded epochs, one every {TICK_SECONDS:g} s, and "
                                      "stops at the last; Pause keeps the epoch.")
    return TICK_SECONDS if playing else None


def step(epochs: list[int]) -> int:
    """The epoch to draw: the one shown, a recorded one; while playing, the next (Play stops at the last)."""
    current = st.session_state.get(AT)
    if current not in epochs:
        current = epochs[0] if st.session_state.get(PLAYING) else epochs[-1]
    elif st.session_state.get(PLAYING):
        at = epochs.index(current)
        if at + 1 == len(epochs):
            st.session_state[PLAYING] = False
            st.rerun()  # a full run redraws Play and turns the timer off
        current = epochs[at + 1]
    st.session_state[AT] = current
    return current


def slider(epochs: list[int], epoch: int) -> None:
    """The epoch slider at `epoch`. While Play steps it, a disabled one under its own key: every message the
    browser sends carries the value the slider shows there, often a tick behind the server's (a click of
    Pause, say); from a slider the user can move, that value would read as a move and take the view back."""
    playing = st.session_state.get(PLAYING, False)
    key = SHOWN if playing else EPOCH
    st.session_state[key] = epoch
    st.select_slider("Epoch", options=epochs, key=key, disabled=playing, on_change=None if playing else _moved,
                     help="Epochs completed when the frame was recorded. Pause to move it.")


def _moved() -> None:
    st.session_state[AT] = st.session_state[EPOCH]


def nearest(line: timeline.Timeline, epoch: int) -> int:
    """The frame of `line` nearest to `epoch` (the earlier on a tie)."""
    return int(np.abs(line.epochs - epoch).argmin())


def map_title(name: str, epoch: int, history: dict) -> str:
    """A map's title: the run, the epoch and, when the history has it, the ELBO at that epoch."""
    return timeline_gif.frame_title(name, epoch, tf.elbo_at(history, epoch))


def frame_view(folder: Path, version: tuple, name: str, line: timeline.Timeline, m: Map, history: dict,
               training: bool, other: tuple[str, timeline.Timeline, Map, dict] | None) -> None:
    """The slider and everything drawn at its epoch; while the run trains, a new frame (the files' `version`
    changed) redraws the whole view, so the timeline grows."""
    if training and timeline.stamp(folder) != version:
        st.rerun()
    epochs = [int(e) for e in line.epochs]
    epoch = step(epochs)
    if len(epochs) > 1:
        slider(epochs, epoch)
    t = epochs.index(epoch)
    title = map_title(name, epoch, history)
    if other is None:
        left, right = st.columns([3, 2])
    else:
        left, middle = st.columns(2)
        o_name, o_line, o_map, o_history = other
        u = nearest(o_line, epoch)
        with middle:
            square_map(tf.codes_figure(o_map.xy[u], o_line, u, map_title(o_name, int(o_line.epochs[u]), o_history),
                                       o_map.ranges), "timeline_other_codes")
        middle.caption(f"Run {o_name}'s map: {o_map.words}.")
        right = st.container()
    with left:
        square_map(tf.codes_figure(m.xy[t], line, t, title, m.ranges), "timeline_codes")
    left.caption(f"{len(line.labels):,} test digits (200 of each, the same for every run). Map: {m.words}. "
                 "Hover for a point's digit and test index.")
    charts = right.columns(3) if other is not None else [right] * 3
    charts[0].plotly_chart(tf.kl_heatmap(line, epoch), key="timeline_kl", config=chart_config())
    charts[1].plotly_chart(tf.active_figure(line, epoch), key="timeline_active", config=chart_config())
    if history.get("train_loss"):
        charts[2].plotly_chart(tf.elbo_curve(history, epoch), key="timeline_elbo", config=chart_config())


def exports(name: str, line: timeline.Timeline, m: Map, history: dict) -> None:
    """The animation as a GIF and the recorded arrays as .npz, each made when asked for."""
    gif, arrays = st.columns(2)
    elbos = [tf.elbo_at(history, int(e)) for e in line.epochs]
    gif.download_button(
        "Download the animation (GIF)", lambda: timeline_gif.animation(m.xy, line.labels, line.epochs, elbos, name,
                                                                       DIGIT_COLOURS, m.method),
        f"timeline-{name}-{m.method.replace(' ', '-').lower()}.gif", "image/gif", icon=":material/animation:",
        key="timeline_gif", on_click="ignore", help="Every recorded epoch, with the run, epoch and ELBO in each frame.")
    arrays.download_button("Download the arrays (.npz)", lambda: npz_bytes(line), f"timeline-{name}.npz",
                           "application/octet-stream", icon=":material/download:", key="timeline_npz",
                           on_click="ignore", help="epochs, loc (epoch, digit, dimension), scale, kl, active, "
                                                   "indices, labels: numpy.load reads them.")


def npz_bytes(line: timeline.Timeline) -> bytes:
    """The recorded arrays (Timeline.to_npz_arrays) as an .npz file's bytes."""
    out = io.BytesIO()
    np.savez_compressed(out, **line.to_npz_arrays())
    return out.getvalue()
