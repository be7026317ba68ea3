"""The commands' work, once `vae_core.cli` has parsed and checked their arguments: this module imports torch.

    from vae_core import commands
    commands.train(args)      # args: the namespace vae_core.cli.build_parser() parsed, checked
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vae_core import checkpoint as ckpt
from vae_core import objectives
from vae_core.config import Config
from vae_core.likelihoods import LIKELIHOODS
from vae_core.data import load_mnist
from vae_core.errors import DivergedError, UsageError
from vae_core.files import SaveError
from vae_core import start, timeline
from vae_core.monitor import RunMonitor
from vae_core.runs import REPLACED_FILE, RunBusyError, StopRequest, clear_stop, remove_left_behind, run_lock
from vae_core.train import TrainState, fit, new_state, resolve_device
from vae_core.train_run import Progress, cached_strict, kept, map_when_done, settle_replaced, store_map


def _auto_threads(args: argparse.Namespace) -> None:
    """--threads, or with auto the cores other processes left free since the last reading."""
    torch.set_num_threads(args.threads or args.meter.threads())


def _run_threads(args: argparse.Namespace, state: TrainState) -> None:
    """The run's thread count: --threads if given; else the one it was started with, or, for a new run,
    the cores other processes leave free now. It is kept in the checkpoint: a resumed run takes it again,
    since the thread count can change a float sum's rounding (seen at batch 128), and a resumed run must
    train exactly as an uninterrupted one."""
    chosen = args.threads or state.threads or args.meter.threads()
    if args.threads is None and state.threads is None:
        print(f"training with {chosen} thread(s): the cores other processes left free", file=sys.stderr)
    state.threads = chosen
    torch.set_num_threads(chosen)


def train(args: argparse.Namespace) -> int:
    """Train (or resume) args.run, saving a checkpoint after every epoch; the exit code."""
    path, overrides = args.path, args.overrides
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if not args.resume:
        resolve_device(Config(**overrides).device)  # bad values fail before the run folder is made
    stop = StopRequest(path.parent)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop.request)
    with run_lock(path.parent):
        _remove_left_behind(path.parent)
        settle_replaced(path)
        state = ckpt.load_state(path) if args.resume and path.exists() else None
        # The start rule again, under the lock: the run may have been made or replaced since vae_core.cli
        # looked, and a resumed run is checked against its checkpoint itself, not only its run.json.
        config = start.check(args.checkpoints, args.run, overrides, resume=args.resume, overwrite=args.overwrite,
                             saved=None if state is None else (state.config, state.epoch), locked=True)
        resumed = state is not None
        if resumed:  # its config but for the fields a Resume may change
            state.config = config
            for group in state.optimizer.param_groups:
                group["lr"] = config.lr
            timeline.prune(path.parent, after=state.epoch)  # frames of epochs trained after the checkpoint
        else:
            state = new_state(config)
            if path.exists():  # --overwrite: the old run stays recoverable until the new one saves an epoch
                os.replace(path, path.with_name(REPLACED_FILE))  # (its timeline too: RunMonitor's start_over)
        resolve_device(state.config.device)
        data = load_mnist(args.data)
        monitor = RunMonitor(path.parent, state, data.test_images, data.test_labels, start_over=not resumed)
        _run_threads(args, state)
        if resumed:  # the checkpoint's own frame again: a kill may have come between its save and its frame
            monitor.record_frame(state)
        try:
            with Progress(path, monitor) as progress:
                fit(state, data, callbacks=progress, should_stop=stop)
        except DivergedError as exc:
            monitor.finish("failed", str(exc))
            raise
        except SaveError as exc:
            error = SaveError(exc.errno, f"{exc.strerror}; {kept(path)}")
            with contextlib.suppress(SaveError):  # the status may not fit on a full disk either
                monitor.finish("failed", error.strerror)
            raise error from exc
        except BaseException as exc:
            monitor.finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            clear_stop(path.parent)
            settle_replaced(path)
        mapped = (map_when_done(path, args.run, data.test_images, monitor, stop)
                  if state.epoch > 0 and not args.no_map else "")
        _remove_left_behind(path.parent)  # temp files killed writers left while this run trained
        done = f"{state.epoch} of {state.config.epochs} epochs done"
        if state.epoch < state.config.epochs:
            monitor.finish("stopped", f"stopped after {done}{mapped}")
            saved = f"{path} holds {done}" if path.exists() else "no epoch finished, nothing saved"
            print(f"stopped: {saved}; continue with: python -m vae_core train --run {args.run} --resume",
                  file=sys.stderr)
            return 130
        monitor.finish("finished", f"trained {state.config.epochs} epochs{mapped}")
    print(f"saved {path}")
    return 0


def _remove_left_behind(folder: Path) -> None:
    """Remove (and name) the temp files of killed saves in the run folder and its cache; hold the lock."""
    for stale in remove_left_behind(folder):
        print(f"removed {stale.relative_to(folder)}, left by a save that was killed midway", file=sys.stderr)


def embed(args: argparse.Namespace) -> int:
    """Compute and cache the latent map of args.path; the exit code."""
    path = args.path
    with contextlib.suppress(RunBusyError):  # a run that trains cleans its own folder when it ends
        with run_lock(path.parent):  # held only for this: the app takes a held lock for a run training
            _remove_left_behind(path.parent)
    _auto_threads(args)
    with tqdm(total=100, desc="T-SNE", unit="%", file=sys.stderr) as bar:
        saved = store_map(path, load_mnist(args.data).test_images, args.perplexity, args.seed,
                          progress=lambda f: bar.update(round(100 * f) - bar.n))
    print(f"saved {' and '.join(str(p) for p in saved)}")
    return 0


def evaluate_run(args: argparse.Namespace) -> int:
    """Print the test loss (and with --iwae, the log p(x) bound, cached) of args.path; the exit code."""
    path = args.path
    data, digest = ckpt.read_snapshot(path)  # the estimate is cached under the very bytes it was made from
    state = ckpt.load_state(path, data)
    device = resolve_device(args.device)
    vae = state.vae.to(device).eval()
    images = load_mnist(args.data).test_images
    if args.images is not None and not 1 <= args.images <= images.shape[0]:
        raise UsageError(f"--images must be between 1 and {images.shape[0]}, got {args.images}")
    images = images[:args.images].to(device)
    _auto_threads(args)
    where = f"[run {args.run}, after epoch {state.epoch}]"
    loss = objectives.test_loss(vae, images, state.config.batch_size, seed=args.seed)
    print(f"{where} average test loss: {loss:.4f}")
    if args.iwae is not None:
        def estimate():
            with tqdm(total=1.0, desc=f"log p(x), K={args.iwae}", unit="", leave=False,
                      bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}") as bar:
                return objectives.iwae_bound(vae, images, k=args.iwae, seed=args.seed,
                                             progress=lambda f: bar.update(f - bar.n))

        name = objectives.iwae_name(args.iwae, images.shape[0], args.seed)
        bound = cached_strict(path, name, digest, ((images.shape[0],), np.floating), estimate)  # kept: read
        # The gap compares the two on the very same data: K = 1 is the one-sample ELBO, and the bound's RNG
        # prepares each batch first, so a binarized run's ELBO scores the 0/1 images the bound scored
        # (the test loss above draws its own binarization).
        log_px = float(bound.mean())
        elbo = float(objectives.iwae_bound(vae, images, k=1, seed=args.seed).mean())
        print(f"{where} log p(x) >= {log_px:.4f} nats per image (importance-weighted bound, K={args.iwae}, "
              f"{images.shape[0]} test images); ELBO {elbo:.4f} on the same images; gap {log_px - elbo:.4f}")
        print(f"(likelihood {state.config.likelihood}: {LIKELIHOODS[state.config.likelihood].note})")
    return 0
