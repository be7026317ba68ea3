"""The Timeline's maps on a real recorded run: how continuous each is, what it costs, and the slider's step time.

    .venv/bin/python -m bench.timeline_maps                          # records a small run first (CLI, --limit)
    .venv/bin/python -m bench.timeline_maps --limit 2000 --epochs 5
    .venv/bin/python -m bench.timeline_maps --checkpoints checkpoints --run tutorial   # a run with frames

Continuity is timeline_maps.mean_displacement: the mean distance a point moves
between neighbouring frames, each frame centred and in units of its spread.
It compares the aligned T-SNE (each epoch started from the previous map), an
independent T-SNE per epoch (what the Latent map would draw), and the PCA
fitted once on all epochs. Then the Timeline view itself (AppTest, the aligned
map kept in the run's cache, as after its first computation): the warm time to
redraw it for another epoch of the slider, and the time to build its figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vae_core import run_cache, runs, timeline, timeline_maps

PROJECT = Path(__file__).resolve().parent.parent


def recorded(root: Path, run: str, limit: int, epochs: int) -> None:
    """Train `run` with the CLI, a frame recorded at every epoch."""
    subprocess.run([sys.executable, "-m", "vae_core", "train", "--run", run, "--limit", str(limit), "--epochs",
                    str(epochs), "--test-every", "1", "--no-map", "--checkpoints", str(root)],
                   check=True, cwd=PROJECT, stdout=subprocess.DEVNULL)


def timed(func, *args, **kwargs):
    """func's result and its seconds."""
    begin = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - begin


def step_times(root: Path, run: str, epochs: list[int], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of a warm full redraw of the Timeline for another slider epoch (AppTest), and of its figures alone."""
    from streamlit.testing.v1 import AppTest

    from ui import timeline_figures as tf
    from ui import timeline_view as tv
    from ui.picker import RUN_KEY

    os.environ["VAE_CHECKPOINTS"] = str(root)
    at = AppTest.from_file(str(PROJECT / "streamlit_app.py"), default_timeout=300)
    at.session_state[RUN_KEY] = run
    at.run()
    at.switch_page("pages/timeline.py").run()
    slider = at.select_slider(key=tv.EPOCH)
    for epoch in epochs[:2]:  # warm: the timeline and its map are read once, then kept
        slider.set_value(epoch).run()
    redraws = []
    for _ in range(repeats):
        for epoch in epochs:
            begin = time.perf_counter()
            at.select_slider(key=tv.EPOCH).set_value(epoch).run()
            redraws.append(time.perf_counter() - begin)
    assert not at.exception, at.exception
    line = timeline.read_timeline(root / run)
    info = next(i for i in runs.list_runs(root) if i.name == run)
    m = tv.map_of(info, line, timeline.stamp(root / run))
    figures = []
    for t, epoch in enumerate(epochs):
        _, seconds = timed(lambda: (tf.codes_figure(m.xy[t], line, t, "run", m.ranges), tf.kl_heatmap(line, epoch),
                                    tf.active_figure(line, epoch)))
        figures.append(seconds)
    return redraws, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, help="a folder of runs (default: a fresh one, recorded now)")
    parser.add_argument("--run", default="bench-timeline")
    parser.add_argument("--limit", type=int, default=2000, help="training images of the recorded run")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (frames) of the recorded run")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the slider's epochs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.checkpoints or Path(scratch)
        if args.checkpoints is None:
            _, seconds = timed(recorded, root, args.run, args.limit, args.epochs)
            print(f"recorded run {args.run}: {args.epochs} epochs on {args.limit} images in {seconds:.1f} s")
        line = timeline.read_timeline(root / args.run)
        if line is None:
            sys.exit(f"run {args.run} in {root} has no recorded frames")
        frames, n, z_dim = line.loc.shape
        print(f"{frames} frames of {n} codes, z_dim {z_dim}, epochs {line.epochs.tolist()}")
        print(f"{'map':<36}{'seconds':>9}{'mean displacement':>20}")
        maps = {}
        for name, make in (("PCA fitted on all epochs", timeline_maps.pca_frames),
                           ("aligned T-SNE (the Timeline's)", timeline_maps.aligned_tsne),
                           ("independent T-SNE per epoch", timeline_maps.independent_tsne)):
            maps[name], seconds = timed(make, line.loc)
            print(f"{name:<36}{seconds:>9.1f}{timeline_maps.mean_displacement(maps[name]):>20.3f}")
        from ui import timeline_view as tv  # the cache name the view reads the aligned map under

        path = runs.checkpoint_path(root, args.run)
        run_cache.store_cached(path, tv.tsne_name(line), runs.digest(path), maps["aligned T-SNE (the Timeline's)"])
        redraws, figures = step_times(root, args.run, line.epochs.tolist(), args.repeats)
        print(f"slider step, warm full redraw (AppTest): median {statistics.median(redraws) * 1000:.0f} ms, "
              f"max {max(redraws) * 1000:.0f} ms over {len(redraws)} steps (goal < 300 ms)")
        print(f"its figures alone: median {statistics.median(figures) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
