"""The Latent map view's panels: the map, the 2-d manifold, a picked digit, a selection, and T-SNE's progress.

    from ui import latent_panels as panels
    panels.draw_map(model, c, labels, perplexity=30, seed=0)  # the map the codes have now; T-SNE started if due
    panels.show_selection(model, labels)                       # a box's or lasso's digits, if any
    panels.show_pick(model, c, labels)                         # the clicked digit, its neighbours, Use as A/B

The map is latent.map_points's: 2-d codes as they are, else the T-SNE map when kept, else PCA while T-SNE
runs on the server's task pool (ui.tasks), which this session follows, can cancel and retry. While the run
trains, the PCA follows its newest checkpoint and no T-SNE starts: the trainer maps the last one itself.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import jobs, tasks
from ui.codes import UNKEPT_MAPS, decoded, map_points, neighbour_row, pair_buttons, pair_spots, pair_trace, square_map
from ui.figures import export_config, grid, latent_figure, map_png
from ui.picker import training_now
from ui.runs import Model, cached_array, mnist_test, say_unkept, store_array
from ui.views import fragment
from vae_core import analysis, latent
from vae_core.config import MNIST_SIDE

PICKED = "map_picked"  # session key: the test index of the clicked point; it outlives reruns and maps
SELECTED = "map_selected"  # session key: the test indices inside the last box or lasso
CANCELLED = "map_cancelled"  # session key: (digest, map name) pairs whose T-SNE the user cancelled
TSNE_FAILED = "map_tsne_failed"  # session key: {(digest, map name): error} of T-SNE runs that failed
FOLLOWED = "map_followed"  # session key: the T-SNE task this session follows, to settle how it ended
TRAINING_POLL_SECONDS = 5.0  # while the run trains: how often the map looks for a newer checkpoint
SHOWN = 100  # selected digits drawn at most
NEIGHBOURS = 8
MANIFOLD_SIDE = 15  # decoded images per side of the 2-d manifold


def remember_pick(chart_key: str) -> None:
    """Selection callback: keep the clicked point's test index, or a box's or lasso's points, for the session."""
    selection = st.session_state[chart_key].selection
    indices = [_index(p["customdata"]) for p in selection.points if p.get("customdata") is not None]
    if selection.box or selection.lasso:
        st.session_state[SELECTED] = sorted(set(indices))
    elif indices:
        st.session_state[PICKED] = indices[0]


def _index(customdata) -> int:
    """The test index a point carries: alone, or first of (index, mean z_scale), which the browser may
    send as a list or as {"0": index, "1": ...}."""
    if isinstance(customdata, dict):
        customdata = [customdata[k] for k in sorted(customdata, key=int)]
    return int(customdata[0] if isinstance(customdata, (list, tuple)) else customdata)


def png_name(model: Model, method: str, perplexity: float, seed: int) -> tuple[str, str]:
    """The map's PNG's title and file name (without .png): the method and its settings, the run and epoch."""
    if method == "T-SNE":
        return (f"T-SNE (perplexity {perplexity}, seed {seed}) · run {model.name} · epoch {model.epoch}",
                f"latent-map-{model.name}-e{model.epoch}-tsne-p{perplexity}-s{seed}")
    return f"{method} · run {model.name} · epoch {model.epoch}", f"latent-map-{model.name}-e{model.epoch}-{method.lower()}"


def show_map(model: Model, c: latent.Codes, labels: np.ndarray, xy: np.ndarray, method: str,
             perplexity: float, seed: int, square: tuple[float, float] | None = None) -> None:
    """The map, the picked point ringed over the faded others, A and B lettered; `square` fixes both axes'
    range. Under it, a PNG of it to download, drawn on the server when asked for."""
    spots = pair_spots(model, c, xy)
    fig = latent_figure(xy, labels, f"{method} · run {model.name} · epoch {model.epoch}",
                        picked=st.session_state.get(PICKED), spread=c.scale.mean(axis=1), ends=pair_trace(spots))
    title, file_name = png_name(model, method, perplexity, seed)
    if square:
        fig.update_xaxes(range=square)
        fig.update_yaxes(range=square)
    key = f"map_{method.lower()}"
    square_map(fig, key, on_select=lambda: remember_pick(key), selection_mode=("points", "box", "lasso"),
               config=export_config(file_name))
    st.download_button("Download the map as PNG", lambda: map_png(xy, labels, title, spots), f"{file_name}.png",
                       "image/png", icon=":material/download:", key="map_png", on_click="ignore",
                       help=f"Saves {file_name}.png: the map with its run, epoch and settings in its title, "
                            "A and B lettered.")
    what = ("The 10,000 test images' z_loc, each coordinate as its prior quantile" if method == "z_loc" else
            f"{method} of the 10,000 test images' z_loc ({model.vae.config.z_dim} dimensions)")
    st.caption(f"{what}, "
               f"checkpoint {model.version} (run {model.name} after epoch {model.epoch}). "
               "Click a point to see its digit and its neighbours; drag a box or a lasso (the chart's "
               "toolbar) to see the digits inside. Hover shows each code's mean z_scale, the encoder's "
               "uncertainty. A and B, the ends Interpolate walks between, are the lettered discs.")


def show_manifold(model: Model, where) -> None:
    """For 2-d codes: the decoder's mean image over a grid of the prior's quantiles (Kingma & Welling 2013)."""
    grid_codes, quantiles = latent.prior_grid(MANIFOLD_SIDE)
    where.image(grid(decoded(model, grid_codes.reshape(-1, 2)), nrow=MANIFOLD_SIDE, padding=0), width="stretch",
                caption=f"The decoder's mean image at z = (z₁, z₂) for the prior's quantiles {quantiles[0]:.0%} to "
                        f"{quantiles[-1]:.0%} on both axes: the same square as the map beside it.")


def draw_map(model: Model, c: latent.Codes, labels: np.ndarray, perplexity: float, seed: int) -> None:
    """The map of the codes `c` as it is now: 2-d codes beside their manifold, the T-SNE map when kept, else
    PCA with T-SNE's progress (started now unless cancelled or failed for these settings)."""
    name = analysis.tsne_name(perplexity, seed)
    if st.session_state.get(FOLLOWED) is not None and st.session_state[FOLLOWED].done:
        settle(model, st.session_state.pop(FOLLOWED), len(labels))
    xy, method = map_points(model, c, perplexity, seed)
    if method == "z_loc":  # the codes are a map already: no projection, no T-SNE
        left, right = st.columns(2)
        quantiles = latent.prior_grid(MANIFOLD_SIDE)[1]
        edge = (quantiles[1] - quantiles[0]) / 2  # the decoded grid's cells are centred on the quantiles
        with left:
            show_map(model, c, labels, xy, method, perplexity, seed,
                     square=(quantiles[0] - edge, quantiles[-1] + edge))
        show_manifold(model, right)
        return
    show_map(model, c, labels, xy, method, perplexity, seed)
    if method == "T-SNE":
        held = st.session_state.get(UNKEPT_MAPS, {}).get((model.digest, name))
        if held is not None and held[0] is xy:  # this session's copy: the disk would not keep it
            say_unkept("this T-SNE map", held[1], "This session keeps it; another computes it again.")
    elif training_now(model.name):
        training_note(model)
    else:
        tsne_status(model, c, name, perplexity, seed)


def training_note(model: Model) -> None:
    """Under the PCA map of a run that trains: no T-SNE yet (a checkpoint is newer every few seconds, a T-SNE of
    10,000 codes takes longer, and would take its cores from the training); the map follows new checkpoints."""
    st.info(f"Run {model.name} is training: this is the PCA of epoch {model.epoch}'s codes, redrawn as new epochs "
            "are saved. The T-SNE map is made when training ends: the trainer maps its last checkpoint itself, "
            "and this view shows it then. Timeline shows how the codes moved epoch by epoch.",
            icon=":material/hourglass_top:")
    fragment(_redraw_when_newer, run_every=TRAINING_POLL_SECONDS)(model.name, model.path, _stamp(model.path))


def _stamp(path) -> tuple:
    try:
        return jobs.file_identity(path)
    except OSError:
        return ()


def _redraw_when_newer(name: str, path, drawn: tuple) -> None:
    """Polled while the run trains: redraw the view when a newer checkpoint is saved or training has ended."""
    if _stamp(path) != drawn or not training_now(name):
        st.rerun()


def tsne_status(model: Model, c: latent.Codes, name: str, perplexity: float, seed: int) -> None:
    """Under the PCA map: T-SNE's progress, or that it was cancelled or failed, with a button to try again."""
    wanted = (model.digest, name)
    stopping = tasks.find(model, name) if wanted in st.session_state.get(CANCELLED, set()) else None
    if stopping is not None and stopping.cancelling:  # "Cancelling…" until the worker has stopped
        fragment(follow, run_every=tasks.FOLLOW_SECONDS)(stopping)
    elif wanted in st.session_state.get(CANCELLED, set()):
        st.warning("T-SNE was cancelled: this is the PCA projection of the same codes.")
        if st.button("Compute T-SNE", key="map_compute", icon=":material/play_arrow:"):
            st.session_state[CANCELLED].discard(wanted)
            st.rerun()
    elif wanted in st.session_state.get(TSNE_FAILED, {}):
        st.error(f"T-SNE failed: {st.session_state[TSNE_FAILED][wanted]}", icon=":material/error:")
        if st.button("Try T-SNE again", key="map_retry", icon=":material/refresh:"):
            del st.session_state[TSNE_FAILED][wanted]
            st.rerun()
    else:
        task = st.session_state[FOLLOWED] = tasks.tsne_task(model, c.loc, perplexity=float(perplexity), seed=int(seed))
        fragment(follow, run_every=tasks.FOLLOW_SECONDS)(task)


def follow(task) -> None:
    """T-SNE's place in the queue or its progress, and a Cancel button, redrawn every tasks.FOLLOW_SECONDS; a full rerun
    draws the map. Each redraw tells the pool this page still watches the map."""
    if task.done:  # the full rerun settles how it ended
        st.rerun()
    task.watch()
    if task.cancelling:  # the worker stops at T-SNE's next progress report
        st.progress(task.progress, text="Cancelling T-SNE… · the PCA projection stays")
        return
    ahead = task.ahead
    if ahead is not None:
        place = f"{ahead} ahead" if ahead else "next to start"
        text = f"T-SNE queued: {place} · the server runs {tasks.pool().workers} map(s) or estimate(s) at a time"
    else:
        text = f"T-SNE of the same codes: {task.progress:.0%}" if task.progress else \
            "T-SNE of the same codes: finding each code's neighbours"
    st.progress(task.progress, text=f"{text} · the PCA projection shows meanwhile")
    st.button("Cancel T-SNE", key="map_cancel", icon=":material/stop:", on_click=cancel_tsne, args=(task,))


def settle(model: Model, task, n_test: int) -> None:
    """Once the followed T-SNE has ended: a failure is remembered, to be said; a map its worker could not
    keep on disk (a full disk) is kept in this session instead (10,000 x 2 floats), with why. A map of another
    checkpoint version (training saved a newer one meanwhile) is that version's, never this one's."""
    if task.error:
        st.session_state.setdefault(TSNE_FAILED, {})[task.key] = task.error
    elif (task.state == tasks.DONE and task.key[0] == model.digest
          and cached_array(model, task.key[1], (n_test, 2)) is None):
        why = store_array(model, task.key[1], task.result)  # tried once more here, to learn why it failed
        st.session_state[UNKEPT_MAPS] = {task.key: (task.result, why)} if why else {}


def cancel_tsne(task) -> None:
    """The Cancel T-SNE button's callback: stop the task; this session keeps the PCA map for this setting."""
    task.cancel()
    st.session_state.setdefault(CANCELLED, set()).add(task.key)


def show_pick(model: Model, c: latent.Codes, labels: np.ndarray) -> None:
    """The picked test digit, if any: reconstructions, its nearest test digits, and buttons to interpolate from it."""
    if PICKED not in st.session_state:
        return
    index = st.session_state[PICKED]
    test_images = mnist_test()[0]
    rec = analysis.reconstructions(model.vae, test_images[index:index + 1], k=3, seed=0, ids=[index])
    side = model.vae.config.image_height, model.vae.config.image_width
    images = np.concatenate([test_images[index].reshape(1, *side).numpy(), rec.draws[0].numpy(),
                             rec.at_loc.numpy()])
    st.subheader(f"Test #{index}, a {labels[index]}")
    left, right = st.columns([2, 1])
    left.image(grid(images, nrow=5, scale=4, padding=4), width="stretch",
               caption="the digit, 3 reconstructions, the decoder mean at z_loc")
    right.caption(f"Mean z_scale {c.scale[index].mean():.3f} (test digits: {c.scale.mean():.3f}): how unsure "
                  "the encoder is of this code.")
    pair_buttons(right, index, "map")
    idx, dist = latent.neighbours(c.loc, c.loc[index], k=NEIGHBOURS, exclude=index)
    st.caption(f"Its {NEIGHBOURS} nearest test digits, by the distance between z_loc vectors:")
    neighbour_row(idx, dist)


def show_selection(labels: np.ndarray) -> None:
    """The digits inside a box or lasso, if any: how many of each, and (up to 100 of) them."""
    indices = st.session_state.get(SELECTED)
    if not indices:
        return
    counts = np.bincount(labels[indices], minlength=10)
    st.subheader(f"{len(indices):,} digits selected")
    st.caption(" · ".join(f"{d}: {n}" for d, n in enumerate(counts) if n))
    shown = indices[:SHOWN]
    st.image(grid(mnist_test()[0][shown].reshape(-1, MNIST_SIDE, MNIST_SIDE).numpy(), nrow=20, scale=2),
             caption=f"the first {len(shown)} of them, by test index" if len(indices) > SHOWN else None)
