"""Command line: `python -m vae_core train|evaluate|embed|sweep ...`; see `--help`.

    python -m vae_core train --run demo --epochs 1
    python -m vae_core train --run demo --epochs 5 --resume
    python -m vae_core evaluate demo
    python -m vae_core embed demo          # the latent map's T-SNE, cached for the app
    python -m vae_core sweep study --grid beta=0.5,1,2 --grid z_dim=2,10 --epochs 20   # 6 runs on Ray

Usage mistakes (bad values, unknown runs, a missing GPU) print one clear
`error:` line and exit with code 2; a checkpoint that cannot be read exits
with code 1, as do a divergence, a full disk and a read-only folder. Ctrl-C
stops at the end of the current batch, keeping the checkpoint of the last
finished epoch, which `--resume` continues. After the last epoch (or a stop),
`train` caches the last checkpoint's latent map for the app, unless --no-map;
Ctrl-C (or Stop training) while it runs skips it, and a disk too full to keep
it leaves the run finished without it (the module vae_core.train_run).

Arguments are parsed and checked here without torch, so a usage mistake is
answered in a fraction of a second; the commands' work is in vae_core.commands.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from vae_core import runs
from vae_core.config import DATA_ROOT, FIELDS, RESUMABLE_OVERRIDES, Config, ConfigError, flag, format_value, parse_value
from vae_core.cpu import LoadMeter
from vae_core.errors import DataError, DeviceError, DivergedError, UsageError
from vae_core.files import SaveError
from vae_core import start, sweep

# More threads than this only oversubscribes the cores (a million crashed torch).
MAX_THREADS = 4 * (os.cpu_count() or 1)
MAX_SEED = 2**63 - 1  # torch.manual_seed's range, as Config.seed
MAX_IWAE_K = 5000  # Burda et al. 2015 report log p(x) with 5,000 samples; the cost grows linearly in K


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for both sub-commands."""
    parser = argparse.ArgumentParser(
        prog="python -m vae_core",
        description="Train and evaluate the VAE of Pyro's 'Variational Autoencoders' tutorial on MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,embed,sweep}")

    train = sub.add_parser("train", help="train a run, saving checkpoints/<run>/checkpoint.pt after every epoch",
                           description="Train a run on the ELBO (the fused step, or Pyro's Trace_ELBO) with Adam. "
                                       "Prints the tutorial's per-epoch lines and saves a checkpoint after every "
                                       "epoch.")
    train.add_argument("--run", required=True, help="run name: letters, digits, '-', '_', '.' (folder under --checkpoints)")
    train.add_argument("--resume", action="store_true", help="continue the run's checkpoint instead of starting anew")
    train.add_argument("--overwrite", action="store_true", help="start anew even if the run exists, replacing it")
    train.add_argument("--no-map", action="store_true", default=os.environ.get("VAE_NO_MAP") == "1",
                       help="skip the latent map of the last checkpoint that is otherwise cached for the app after "
                            "training (about 15 s on 2 cores); $VAE_NO_MAP=1 does the same (the tests set it)")
    _add_config_flags(train)
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

    sw = sub.add_parser("sweep", help="train a grid of runs in parallel on Ray, on this machine or a cluster",
                        description="Train one ordinary run per point of a grid of settings, each a Ray task, named "
                                    "after the sweep and its values (study-beta2-z10); the sweep file "
                                    "<checkpoints>/NAME.sweep.json names the grid and its runs. Any train flag sets "
                                    "what all the runs share.")
    sw.add_argument("name", help="sweep name: the prefix of its runs' names")
    sw.add_argument("--grid", action="append", default=[], metavar="FIELD=VALUES",
                    help="a setting and its values, comma-separated: --grid beta=0.5,1,2,4 --grid z_dim=2,10,20 "
                         "(hidden layers: hidden=800/200,200)")
    sw.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                    help="a Ray cluster to join, host:port ($RAY_ADDRESS); default: a local Ray on this machine")
    sw.add_argument("--cpus-per-run", type=int, default=1, help="CPUs (torch threads) each run holds (default 1)")
    sw.add_argument("--cpus", type=int, help="the local Ray's CPUs (default: the cores other processes leave free)")
    sw.add_argument("--yes", action="store_true", help=f"train a grid of more than {sweep.CONFIRM_ABOVE} runs")
    sw.add_argument("--stop", action="store_true", help="Stop all: ask the sweep's runs to stop, keeping their epochs")
    sw.add_argument("--status", action="store_true", help="print each run's state, epoch and test ELBO")
    sw.add_argument("--no-map", action="store_true", default=os.environ.get("VAE_NO_MAP") == "1",
                    help="skip each run's latent map after training ($VAE_NO_MAP=1)")
    _add_config_flags(sw)
    sw.add_argument("--checkpoints", type=Path, default=runs.DEFAULT_ROOT,
                    help="folder holding one sub-folder per run (default: the project's checkpoints/); on a cluster, "
                         "the same shared folder at the same path on every node")
    return parser


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field, read as text and checked by the Config."""
    for name, spec in FIELDS.items():
        if not spec.cli:
            continue
        if spec.kind is bool:
            parser.add_argument(flag(name), action="store_true", default=None, help=_help(name, spec))
        else:
            parser.add_argument(flag(name), metavar=spec.choices and "{" + ",".join(spec.choices) + "}"
                                or name.upper(), help=_help(name, spec))


def _help(name: str, spec) -> str:
    default = format_value(name, getattr(Config(), name))
    resumable = "; with --resume, may be changed" if name in RESUMABLE_OVERRIDES else ""
    return f"{spec.help} Default {default}{resumable}.".replace("%", "%%")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoints", type=Path, default=runs.DEFAULT_ROOT,
                        help="folder holding one sub-folder per run (default: the project's checkpoints/)")
    parser.add_argument("--data", type=Path, default=DATA_ROOT, help="folder holding MNIST/raw (default: the project's data/)")
    parser.add_argument("--threads", default="auto",
                        help="torch CPU threads, or auto (the default): the cores other processes leave free, "
                             "measured at the start; a resumed run takes the count it was started with")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. Arguments are checked before torch is imported."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.meter = LoadMeter()  # what other processes do while this one starts tells how many threads to take
    try:
        _check(args)
        if args.command == "sweep":  # Ray, no torch: the runs train in processes of their own
            from vae_core import sweep_ray

            return sweep_ray.main(args)
        from vae_core import commands  # torch and the data: 2-4 s, only for arguments that hold

        return {"train": commands.train, "evaluate": commands.evaluate_run, "embed": commands.embed}[args.command](args)
    except (UsageError, ConfigError, runs.RunNameError, DeviceError, runs.RunBusyError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    except SaveError as exc:
        parser.exit(1, f"{parser.prog} {args.command}: error: {exc.strerror}\n")
    except (runs.CheckpointError, DataError, DivergedError) as exc:
        parser.exit(1, f"{parser.prog} {args.command}: error: {exc}\n")


def _check(args: argparse.Namespace) -> None:
    """Every check that needs no torch, so that a mistake is named at once; UsageError or ConfigError.
    Sets args.threads (None: auto) and args.path (the run's checkpoint file); for train, args.overrides."""
    if args.command == "sweep":
        _check_sweep(args)
        return
    args.threads = _threads(args.threads)
    if args.command != "train" and not 0 <= args.seed <= MAX_SEED:  # train's seed is checked by Config
        raise UsageError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")
    if args.command == "train":
        args.overrides = config_overrides(args)
        # The one start rule, before anything loads; vae_core.commands asks it again under the run's lock.
        start.check(args.checkpoints, args.run, args.overrides, resume=args.resume, overwrite=args.overwrite)
        args.path = runs.checkpoint_path(args.checkpoints, args.run)
        return
    if args.command == "embed" and not 1 <= args.perplexity <= 1000:
        raise UsageError(f"--perplexity must be between 1 and 1000, got {args.perplexity:g}")
    if args.command == "evaluate" and args.iwae is not None and not 1 <= args.iwae <= MAX_IWAE_K:
        raise UsageError(f"--iwae must be between 1 and {MAX_IWAE_K} samples per image, got {args.iwae}")
    args.path = _existing(args)


def _check_sweep(args: argparse.Namespace) -> None:
    """A sweep's arguments: the grid, the shared settings, the names, before Ray starts. Sets args.overrides,
    args.grid_values and args.points (None for --stop and --status, which read the sweep file)."""
    runs.validate_run_name(args.name)
    if args.stop or args.status:
        if args.grid:
            raise UsageError("--stop and --status act on an existing sweep: leave out --grid")
        return
    if not 1 <= args.cpus_per_run <= MAX_THREADS or (args.cpus is not None and not 1 <= args.cpus <= MAX_THREADS):
        raise UsageError(f"--cpus-per-run and --cpus must be between 1 and {MAX_THREADS}")
    args.overrides = config_overrides(args)
    args.grid_values = sweep.parse_grid(args.grid)
    clash = sorted(set(args.grid_values) & set(args.overrides))
    if clash:
        raise UsageError(f"{', '.join(clash)} is both swept (--grid) and fixed ({flag(clash[0])}): give it one way")
    args.points = sweep.expand(args.name, args.grid_values)
    sweep.check_new(args.checkpoints, args.name, args.points, args.overrides, confirmed=args.yes)


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


def config_overrides(args: argparse.Namespace) -> dict:
    """The Config fields `train`'s flags set, parsed and checked field by field; ConfigError names the flag's field."""
    return {name: getattr(args, name) if FIELDS[name].kind is bool else parse_value(name, getattr(args, name))
            for name, spec in FIELDS.items() if spec.cli and getattr(args, name) is not None}


def _existing(args: argparse.Namespace) -> Path:
    path = runs.checkpoint_path(args.checkpoints, args.run)
    if not path.exists():
        raise UsageError(f"no run {args.run!r}: {path} does not exist (runs: "
                         f"{', '.join(_run_names(args.checkpoints)) or 'none'})")
    return path


def _run_names(root: Path) -> list[str]:
    """The runs under `root`, newest first; one saved without a run.json is loaded (torch) once and given one."""
    scan = runs.scan_runs(root)
    if scan.unindexed:
        from vae_core.checkpoint import index_runs  # torch: only for runs saved without a run.json

        scan = index_runs(scan)
    return [info.name for info in scan.runs]


