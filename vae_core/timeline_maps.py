"""2-D maps of a timeline's codes that stay continuous from epoch to epoch, and how continuous they are.

    from vae_core import timeline_maps
    xy = timeline_maps.pca_frames(line.loc)               # (T, n, 2): one PCA fitted on every epoch's codes
    xy = timeline_maps.aligned_tsne(line.loc, progress=print, should_stop=lambda: False)  # (T, n, 2)
    timeline_maps.mean_displacement(xy)                   # how far points move between frames, in spreads

A map made for each epoch on its own (an independent T-SNE, a PCA per frame)
may turn, mirror or reshuffle its clusters from one epoch to the next, so an
animation of it jumps. Two maps that do not: one linear projection fitted once
on the codes of all epochs (instant), and T-SNE where each epoch's embedding
starts from the previous epoch's positions (openTSNE takes an initialization),
so the optimisation moves points only as far as their neighbourhoods changed.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from vae_core.analysis import TSNE_FAST, TSNE_NEIGHBOURS
from vae_core.objectives import Cancelled

# Iterations of each frame after the first: it starts from the previous frame's map, already spread out, so it
# skips early exaggeration (which would pull the layout together and let clusters swap places) and needs
# fewer steps than a map from scratch.
ALIGNED_ITER = 150
CALLBACK_EVERY = 10  # openTSNE iterations between progress reports (and stop checks)
# Barnes-Hut on one thread: for a frame's 2,000 points it took 2.3 s against FFT's 8.8 s (300 iterations, 2 busy
# cores), and a second thread made both slower when the other core was busy (FFT 12 s).
GRADIENT, JOBS = "bh", 1


def pca_frames(loc: np.ndarray) -> np.ndarray:
    """Every frame of `loc` (T, n, z_dim) on the two leading principal axes of all frames' codes together;
    (T, n, 2) float32. One projection for all epochs: points move as their codes move, never by a refit."""
    t, n, d = loc.shape
    flat = loc.reshape(t * n, d).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    axes = vt[:2]
    axes *= np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])[:, None]  # a sign of its own, not SVD's
    return ((flat - mean) @ axes.T).reshape(t, n, 2).astype(np.float32)


def aligned_tsne(loc: np.ndarray, *, perplexity: float = 30.0, seed: int = 0, aligned_iter: int = ALIGNED_ITER,
                 first_iter: tuple[int, int] = TSNE_FAST, progress: Callable[[float], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> np.ndarray:
    """T-SNE of each frame of `loc` (T, n, z_dim), the first from scratch (openTSNE, `first_iter` early
    exaggeration and plain iterations), each next one started from the previous frame's map with the same
    affinity settings; (T, n, 2) float32. Progress in [0, 1]; a stop raises Cancelled."""
    report = progress or (lambda fraction: None)
    frames = loc.shape[0]
    total = sum(first_iter) + (frames - 1) * aligned_iter  # iterations in all
    done = 0
    maps = []
    for t in range(frames):
        if should_stop():
            raise Cancelled("the aligned T-SNE was cancelled")
        iters = first_iter if t == 0 else (0, aligned_iter)

        def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
            if should_stop():
                raise Cancelled("the aligned T-SNE was cancelled")
            report(min(1.0, (done + iteration) / total))
            return False

        maps.append(_tsne(loc[t], maps[-1] if maps else None, iters, perplexity, seed, callback))
        done += sum(iters)
        report(done / total)
    return np.stack(maps).astype(np.float32)


def independent_tsne(loc: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
                     iters: tuple[int, int] = TSNE_FAST) -> np.ndarray:
    """T-SNE of each frame of `loc` (T, n, z_dim) on its own, from scratch: the baseline aligned_tsne is
    measured against (bench/timeline_maps.py); (T, n, 2) float32."""
    return np.stack([_tsne(frame, None, iters, perplexity, seed, None) for frame in loc]).astype(np.float32)


def _tsne(points: np.ndarray, start: np.ndarray | None, iters: tuple[int, int], perplexity: float, seed: int,
          callback) -> np.ndarray:
    """One openTSNE embedding of `points` (n, d), from `start` (n, 2) when given, else its PCA start."""
    from openTSNE import TSNE  # 0.3 s to import: only where a T-SNE is computed

    tsne = TSNE(n_components=2, perplexity=perplexity, early_exaggeration_iter=iters[0], n_iter=iters[1],
                neighbors=TSNE_NEIGHBOURS, negative_gradient_method=GRADIENT, n_jobs=JOBS, random_state=seed,
                initialization="pca" if start is None else start,
                callbacks=callback, callbacks_every_iters=CALLBACK_EVERY)
    # openTSNE warns that a start wider than 1e-4 may converge poorly: true of a start from scratch, but the
    # previous frame's map is a converged one, meant to be kept.
    log = logging.getLogger("openTSNE.tsne")
    level = log.level
    log.setLevel(logging.ERROR if start is not None else level)
    try:
        return np.asarray(tsne.fit(np.asarray(points, np.float64)))
    finally:
        log.setLevel(level)


def spread(xy: np.ndarray) -> float:
    """A map's size: the root mean squared distance of its points (n, 2) from their centre."""
    return float(np.sqrt(((xy - xy.mean(axis=0)) ** 2).sum(axis=1).mean()))


def mean_displacement(xy: np.ndarray) -> float:
    """How far a point moves between neighbouring frames of `xy` (T, n, 2), on average, each frame centred and
    measured in units of its spread: a map that only shifts or grows as a whole does not move; 0 for one frame."""
    unit = [(frame - frame.mean(axis=0)) / (spread(frame) or 1.0) for frame in xy]
    steps = [np.linalg.norm(b - a, axis=1).mean() for a, b in zip(unit[:-1], unit[1:])]
    return float(np.mean(steps)) if steps else 0.0


def bounds(xy: np.ndarray, margin: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    """Fixed axes for every frame of `xy` (T, n, 2): the (x, y) ranges over all frames, `margin` of each added."""
    low, high = xy.reshape(-1, 2).min(axis=0), xy.reshape(-1, 2).max(axis=0)
    pad = (high - low) * margin + 1e-6
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))
