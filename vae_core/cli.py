"""Command line: `python -m vae_core train|evaluate|embed ...`; see `--help`.

    python -m vae_core train --run demo --epochs 1
    python -m vae_core train --run demo --epochs 5 --resume
    python -m vae_core evaluate demo
    python -m vae_core embed demo          # the latent map's T-SNE, cached for the app

Usage mistakes (bad values, unknown runs, a missing GPU) print one clear
`error:` line and exit with code 2; a checkpoint that cannot be read exits
with code 1, as do a divergence, a full disk and a read-only folder. Ctrl-C
stops at the end of the current batch, keeping the checkpoint of the last
finished epoch, which `--resume` continues. After the last epoch (or a stop),
`train` caches the last checkpoint's latent map for the app, unless --no-map;
Ctrl-C (or Stop training) while it runs skips it, and a disk too full to keep
it leaves the run finished without it (the module vae_core.train_run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from vae_core import checkpoint as ckpt
from vae_core import folders, objectives
from vae_core.config import FIELDS, RESUMABLE_OVERRIDES, Config, ConfigError, flag, format_value, parse_value
from vae_core.cpu import LoadMeter
from vae_core.data import DEFAULT_ROOT as DATA_ROOT
from vae_core.data import DataError, load_mnist
from vae_core.files import SaveError
from vae_core.config import LIKELIHOOD_NOTES
from vae_core.monitor import RunBusyError, RunMonitor, StopRequest, clear_stop, remove_left_behind, run_lock
from vae_core.train import DeviceError, DivergedError, TrainState, evaluate, fit, new_state, resolve_device
from vae_core.train_run import REPLACED_FILE, Progress, kept, map_when_done, settle_replaced, store_map

# More threads than this only oversubscribes the cores (a million crashed torch).
MAX_THREADS = 4 * (os.cpu_count() or 1)
MAX_SEED = 2**63 - 1  # torch.manual_seed's range, as Config.seed
MAX_IWAE_K = 5000  # Burda et al. 2015 report log p(x) with 5,000 samples; the cost grows linearly in K


class UsageError(Exception):
    """A command-line mistake: reported with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for both sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m vae_core",
        description="Train and evaluate the VAE of Pyro's 'Variational Autoencoders' tutorial on MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,embed}")

    train = sub.add_parser("train", help="train a run, saving checkpoints/<run>/checkpoint.pt after every epoch",
                           description="Train a run with SVI (Trace_ELBO, Adam). Prints the tutorial's "
                                       "per-epoch lines and saves a checkpoint after every epoch.")
    train.add_argument("--run", required=True, help="run name: letters, digits, '-', '_', '.' (folder under --checkpoints)")
    train.add_argument("--resume", action="store_true", help="continue the run's checkpoint instead of starting anew")
    train.add_argument("--overwrite", action="store_true", help="start anew even if the run exists, replacing it")
    train.add_argument("--no-map", action="store_true", default=os.environ.get("VAE_NO_MAP") == "1",
                       help="skip the latent map of the last checkpoint that is otherwise cached for the app after "
                            "training (about 15 s on 2 cores); $VAE_NO_MAP=1 does the same (the tests set it)")
    for name, spec in FIELDS.items():  # one flag per Config field, read as text and checked by the Config
        if not spec.cli:
            continue
        if spec.kind is bool:
            train.add_argument(flag(name), action="store_true", default=None, help=_help(name, spec))
        else:
            train.add_argument(flag(name), metavar=spec.choices and "{" + ",".join(spec.choices) + "}"
                               or name.upper(), help=_help(name, spec))
    _add_common(train)

    ev = sub.add_parser("evaluate", help="print the test loss per image of a run's checkpoint",
                        description="Estimate the negative ELBO per image of a run on the 10,000 test images.")
    ev.add_argument("run", help="run name (folder under --checkpoints)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the one-sample ELBO estimate (default 0)")
    ev.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to evaluate (default cpu)")
    ev.add_argument("--iwae", type=int, metavar="K", help=f"also estimate log p(x): the importance-weighted bound "
                                                          f"with K samples per image (1 to {MAX_IWAE_K}), and its gap "
                                                          f"to the ELBO on the same images")
    ev.add_argument("--images", type=int, metavar="N", help="use the first N test images only (default all 10,000)")
    _add_common(ev)

    em = sub.add_parser("embed", help="compute a run's test-set latent means and T-SNE map into its cache/",
                        description="Compute the latent means of the 10,000 test images and their 2-D T-SNE "
                                    "(openTSNE, the app's settings) and keep both in the run's cache/ folder, "
                                    "keyed by the checkpoint's content, so the app's latent map opens at once.")
    em.add_argument("run", help="run name (folder under --checkpoints)")
    em.add_argument("--perplexity", type=float, default=30.0, help="T-SNE perplexity (default 30, the app's default)")
    em.add_argument("--seed", type=int, default=0, help="T-SNE seed (default 0, the app's default)")
    _add_common(em)
    return parser


def _help(name: str, spec) -> str:
    default = format_value(name, getattr(Config(), name))
    resumable = "; with --resume, may be changed" if name in RESUMABLE_OVERRIDES else ""
    return f"{spec.help} Default {default}{resumable}.".replace("%", "%%")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", type=Path, default=folders.DEFAULT_ROOT,
                        help="folder holding one sub-folder per run (default: the project's checkpoints/)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding MNIST/raw (default: the project's data/)")
    parser.add_argument("--threads", default="auto",
                        help="torch CPU threads, or auto (the default): the cores other processes leave free, "
                             "measured at the start; a resumed run takes the count it was started with")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.meter = LoadMeter()  # what other processes do while this one starts tells how many threads to take
    try:
        args.threads = _threads(args.threads)
        if args.command != "train" and not 0 <= args.seed <= MAX_SEED:  # train's seed is checked by Config
            raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return {"train": _train, "evaluate": _evaluate, "embed": _embed}[args.command](args)
    except (UsageError, ConfigError, folders.RunNameError, DeviceError, RunBusyError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    except SaveError as exc:
        parser.exit(1, f"{parser.prog} {args.command}: error: {exc.strerror}\n")
    except (folders.CheckpointError, DataError, DivergedError) as exc:
        parser.exit(1, f"{parser.prog} {args.command}: error: {exc}\n")


def _threads(text: str) -> int | None:
    """--threads as a number, or None for auto."""
    if text == "auto":
        return None
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"--threads must be auto or between 1 and {MAX_THREADS} (4 per core here), got {text}")
    return threads


def _auto_threads(args: argparse.Namespace) -> None:
    """With --threads auto, take the cores other processes left free since the last reading."""
    if args.threads is None:
        torch.set_num_threads(args.meter.threads())


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


def _train(args: argparse.Namespace) -> int:
    path = folders.checkpoint_path(args.checkpoints, args.run)
    overrides = config_overrides(args)
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pass one")
    if not args.resume:
        resolve_device(Config(**overrides).device)  # bad values fail before the run folder is made
    stop = StopRequest(path.parent)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop.request)
    with run_lock(path.parent):
        _remove_left_behind(path.parent)
        settle_replaced(path)
        if args.resume:
            state = _resumed(path, args.run, overrides)
        elif path.exists() and not args.overwrite:
            raise UsageError(f"run {args.run!r} already exists ({path}); pass --resume to continue it, "
                             f"--overwrite to start it anew, or choose another --run name")
        else:
            state = new_state(Config(**overrides))
            if path.exists():  # --overwrite: the old run stays recoverable until the new one saves an epoch
                os.replace(path, path.with_name(REPLACED_FILE))
        resolve_device(state.config.device)
        data = load_mnist(args.data)
        monitor = RunMonitor(path.parent, state, data.test_images)
        _run_threads(args, state)
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


def config_overrides(args: argparse.Namespace) -> dict:
    """The Config fields `train`'s flags set, parsed and checked field by field; ConfigError names the flag's field."""
    return {name: getattr(args, name) if FIELDS[name].kind is bool else parse_value(name, getattr(args, name))
            for name, spec in FIELDS.items() if spec.cli and getattr(args, name) is not None}


def _resumed(path: Path, run: str, overrides: dict) -> TrainState:
    if not path.exists():
        raise UsageError(f"cannot resume run {run!r}: {path} does not exist; drop --resume to start it")
    state = ckpt.load_state(path)
    stored = state.config.to_dict()
    clashes = [f"{k}={v!r} (the run has {stored[k]!r})" for k, v in overrides.items()
               if k not in RESUMABLE_OVERRIDES and v != stored[k]]
    if clashes:
        raise UsageError(f"a resumed run keeps its config; these differ: {', '.join(clashes)}")
    state.config = Config.from_dict({**stored, **{k: v for k, v in overrides.items() if k in RESUMABLE_OVERRIDES}})
    for group in state.optimizer.param_groups:
        group["lr"] = state.config.lr
    if state.epoch >= state.config.epochs:
        raise UsageError(f"run {run!r} has already trained {state.epoch} of {state.config.epochs} epochs; "
                         f"pass a larger --epochs to continue it")
    return state


def _remove_left_behind(folder: Path) -> None:
    """Remove (and name) the temp files of killed saves in the run folder and its cache; hold the lock."""
    for stale in remove_left_behind(folder):
        print(f"removed {stale.relative_to(folder)}, left by a save that was killed midway", file=sys.stderr)


def _existing(args: argparse.Namespace) -> Path:
    path = folders.checkpoint_path(args.checkpoints, args.run)
    if not path.exists():
        raise UsageError(f"no run {args.run!r}: {path} does not exist (runs: "
                         f"{', '.join(r.name for r in folders.list_runs(args.checkpoints)) or 'none'})")
    return path


def _embed(args: argparse.Namespace) -> int:
    path = _existing(args)
    if not 1 <= args.perplexity <= 1000:
        raise UsageError(f"--perplexity must be between 1 and 1000, got {args.perplexity:g}")
    with contextlib.suppress(RunBusyError):  # a run that trains cleans its own folder when it ends
        with run_lock(path.parent):  # held only for this: the app takes a held lock for a run training
            _remove_left_behind(path.parent)
    _auto_threads(args)
    with tqdm(total=100, desc="T-SNE", unit="%", file=sys.stderr) as bar:
        saved = store_map(path, load_mnist(args.data).test_images, args.perplexity, args.seed,
                          progress=lambda f: bar.update(round(100 * f) - bar.n))
    print(f"saved {' and '.join(str(p) for p in saved)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.iwae is not None and not 1 <= args.iwae <= MAX_IWAE_K:
        raise UsageError(f"--iwae must be between 1 and {MAX_IWAE_K} samples per image, got {args.iwae}")
    path = _existing(args)
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
    loss = evaluate(vae, images, state.config.batch_size, seed=args.seed)
    print(f"{where} average test loss: {loss:.4f}")
    if args.iwae is not None:
        with tqdm(total=1.0, desc=f"log p(x), K={args.iwae}", unit="", leave=False,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}") as bar:
            bound = objectives.iwae_bound(vae, images, k=args.iwae, seed=args.seed,
                                          progress=lambda f: bar.update(f - bar.n))
        folders.store_cached(path, objectives.iwae_name(args.iwae, images.shape[0], args.seed), digest, bound)
        # The gap compares the two on the very same data: K = 1 is the one-sample ELBO, and the bound's RNG
        # prepares each batch first, so a binarized run's ELBO scores the 0/1 images the bound scored
        # (the test loss above draws its own binarization).
        log_px = float(bound.mean())
        elbo = float(objectives.iwae_bound(vae, images, k=1, seed=args.seed).mean())
        print(f"{where} log p(x) >= {log_px:.4f} nats per image (importance-weighted bound, K={args.iwae}, "
              f"{images.shape[0]} test images); ELBO {elbo:.4f} on the same images; gap {log_px - elbo:.4f}")
        print(f"(likelihood {state.config.likelihood}: {LIKELIHOOD_NOTES[state.config.likelihood]})")
    return 0
