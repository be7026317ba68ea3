"""What `python -m vae_core train` does around the SVI loop, in the run's folder.

    from vae_core.train_run import Progress, map_when_done, settle_replaced, store_map
    with Progress(path, monitor) as progress:      # the tutorial's lines and a checkpoint after every epoch
        fit(state, data, callbacks=progress)
    note = map_when_done(path, run, test_images, monitor, stop)   # "; latent map ready (12.3 s)"
    store_map(path, test_images)                   # `embed`: the latent means and T-SNE map, cached (run_cache)

The map after training is an extra: a Stop skips it, and a disk too full to
keep it leaves the finished run finished, with a note of how to make it later.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vae_core import analysis, latent, run_cache
from vae_core import checkpoint as ckpt
from vae_core.files import SaveError
from vae_core.monitor import RunMonitor
from vae_core.runs import MAP_MISSING, REPLACED_FILE, CheckpointError, StopRequest
from vae_core.train import Callbacks, TrainState


def settle_replaced(path: Path) -> None:
    """An overwritten run's old checkpoint: back in place if the new run saved no epoch, else gone."""
    replaced = path.with_name(REPLACED_FILE)
    if replaced.exists():
        if path.exists():
            replaced.unlink()
        else:
            os.replace(replaced, path)
            print(f"the new run saved no epoch: {path} is the replaced run's again", file=sys.stderr)


def kept(path: Path) -> str:
    """What a failed save left: the checkpoint before it, or nothing."""
    try:
        return f"the previous checkpoint (epoch {ckpt.load_state(path).epoch}) is intact"
    except CheckpointError:
        return "no epoch was saved yet"


def map_when_done(path: Path, run: str, test_images: torch.Tensor, monitor: RunMonitor, stop: StopRequest) -> str:
    """The last checkpoint's latent map, so the app's map opens at once; a new Stop (or Ctrl-C) skips it.

    Returns a note for the run's last status: the map ready, skipped, or not kept (a full disk).
    """
    stop.requested = False  # the Stop that ended training, if any, is spent; a new one cancels the map
    start = time.perf_counter()
    try:
        with tqdm(total=100, desc="latent map", unit="%", leave=False, file=sys.stderr) as bar:
            def report(fraction: float) -> None:
                bar.update(round(100 * fraction) - bar.n)
                monitor.mapping(fraction)
            store_map(path, test_images, progress=report, should_stop=stop)
    except analysis.Cancelled:
        return "; the latent map was skipped"
    except SaveError as exc:  # the checkpoint is saved: the run stands, without its map
        note = (f"{MAP_MISSING} kept ({exc.strerror}); make it later with "
                f"python -m vae_core embed {run}, or in the Latent map view")
        print(f"warning: {note}", file=sys.stderr)
        return f"; {note}"
    seconds = time.perf_counter() - start
    tqdm.write(f"latent map of the last checkpoint cached in {seconds:.1f} s")
    return f"; latent map ready ({seconds:.1f} s)"


def store_map(path: Path, test_images: torch.Tensor, perplexity: float = 30.0, seed: int = 0,
              progress=None, should_stop=lambda: False) -> list[Path]:
    """The checkpoint's test-set latent means and, above 2 dimensions, their T-SNE map, cached for the app
    exactly as its Latent map caches them (keyed by the bytes read; those kept already are read, not made
    again); a stop raises analysis.Cancelled, a disk that will not keep them SaveError."""
    data, digest = ckpt.read_snapshot(path)
    n = test_images.shape[0]
    means = cached_strict(path, latent.MEANS_NAME, digest, ((n, None), np.floating),
                    lambda: latent.encode(ckpt.load_state(path, data).vae.eval(), test_images).loc)
    saved = [run_cache.cache_file(path, latent.MEANS_NAME, digest)]
    if means.shape[1] > 2:  # 2-d codes are their own map
        name = analysis.tsne_name(perplexity, seed)
        cached_strict(path, name, digest, ((n, 2), np.floating),
                lambda: analysis.tsne_2d(means, seed=seed, perplexity=perplexity, progress=progress,
                                         should_stop=should_stop))
        saved.append(run_cache.cache_file(path, name, digest))
    return saved


def cached_strict(path: Path, name: str, digest: str, expected, compute) -> np.ndarray:
    """run_cache.cached for the command line: a value the disk would not keep raises why (SaveError)."""
    value, error = run_cache.cached(path, name, digest, compute, expected)
    if error is not None:
        raise error
    return value


class Progress(Callbacks):
    """tqdm bar per epoch, the tutorial's lines, a checkpoint after every epoch, the monitor's files."""

    def __init__(self, path: Path, monitor: RunMonitor) -> None:
        self.path = path
        self.monitor = monitor
        self.bar: tqdm | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_batch(self, epoch: int, batch: int, n_batches: int, images: int, loss: float) -> None:
        if self.bar is None:
            self.bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False, file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.2f}", refresh=False)
        self.monitor.on_batch(epoch, batch, n_batches, images, loss)

    def on_epoch_end(self, state: TrainState) -> None:
        self._close_bar()
        # The tutorial's lines, with epochs counted from 1 as everywhere in this project
        # (the tutorial prints its first epoch as [epoch 000]).
        label = f"[epoch {state.epoch} of {state.config.epochs}]"
        tqdm.write(f"{label}  average training loss: {state.history.train_loss[-1]:.4f}")
        if state.history.test_epochs and state.history.test_epochs[-1] == state.epoch - 1:
            tqdm.write(f"{label} average test loss: {state.history.test_loss[-1]:.4f}")
        ckpt.save_state(state, self.path)
        self.monitor.on_epoch_end(state)
