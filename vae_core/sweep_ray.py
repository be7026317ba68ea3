"""A sweep's runs trained as Ray tasks: on this machine (an embedded local Ray) or on a cluster. No torch here.

    from vae_core import sweep, sweep_ray
    sweep_ray.connect(address=None)                       # a local Ray sized to the cores others leave free
    sweep_ray.connect(address="10.0.0.5:6379")            # join a cluster; SweepRefused in one line if unreachable
    ends = sweep_ray.run(root, sweep.read_file(root, "study"), cpus_per_run=1, on_progress=print)
    ends["study-beta2-z10"]                               # finished, stopped, or failed (exit N)

Each grid point is one Ray task holding `cpus_per_run` CPUs, which trains its run as `python -m vae_core train`
in a process of its own (its torch threads, signals and lock its own), output appended to the run's train.log.
The process dies with its Ray worker (PR_SET_PDEATHSIG): a worker killed mid-epoch takes its run with it, Ray
runs the task again, and the task resumes the run from its last saved epoch, so at most that epoch is lost. On a
cluster every node must see the same checkpoints folder at the same path (a shared mount), as Ray's own docs
advise for files a task writes.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from vae_core import runs, sweep
from vae_core.config import train_flags
from vae_core.cpu import LoadMeter

PROJECT = Path(__file__).resolve().parent.parent
# Times Ray runs a task again after its worker or node died (each time resuming the run's checkpoint).
RETRIES = 3
POLL_S = 1.0  # seconds between looks at the runs' progress
CONNECT_TIMEOUT_S = 5.0


def connect(address: str | None = None, cpus: int | None = None) -> str:
    """Start an embedded local Ray with `cpus` CPUs (default: the cores other processes leave free), or join the
    cluster at `address`; returns what it joined, in words. SweepRefused if the address cannot be reached."""
    if address and address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
                pass
        except (OSError, ValueError) as exc:
            raise sweep.SweepRefused(f"cannot reach a Ray cluster at {address} ({exc}): start one there with "
                                     f"`ray start --head`, or leave out --address to train on this machine") from None
    import ray  # 1-2 s: only once the address answers

    if address:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise sweep.SweepRefused(f"cannot join the Ray cluster at {address}: {exc}") from None
        return f"the Ray cluster at {address} ({ray.cluster_resources().get('CPU', 0):g} CPUs)"
    if cpus is None:
        meter = LoadMeter()
        time.sleep(0.5)
        cpus = meter.threads()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return f"a local Ray on this machine ({cpus} CPUs)"


def shutdown() -> None:
    """Leave Ray (an embedded local one stops)."""
    import ray

    ray.shutdown()


def _die_with_parent() -> None:
    """In the training process, before it runs: the kernel kills it when the Ray worker that started it dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def train_point(root: str, name: str, run: str, flags: list[str], epochs: int, threads: int, no_map: bool) -> str:
    """(A Ray task.) Train one run of the sweep to its end, or resume it after an interruption; how it ended."""
    folder = runs.run_dir(root, run)
    if sweep.stopped(root, name):
        return "stopped"
    summary = runs.read_summary(folder / runs.CHECKPOINT_FILE)
    if summary is not None and summary.epoch >= epochs:  # the worker died after the run's last epoch
        return "finished"
    resume = (folder / runs.CHECKPOINT_FILE).exists()
    args = [sys.executable, "-m", "vae_core", "train", "--run", run, "--checkpoints", str(root),
            "--threads", str(threads), *flags, *(["--resume"] if resume else []), *(["--no-map"] if no_map else [])]
    folder.mkdir(parents=True, exist_ok=True)
    runs.clear_stop(folder)
    with open(folder / runs.LOG_FILE, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT,
                                   preexec_fn=_die_with_parent)
        code = process.wait()
    return {0: "finished", 130: "stopped"}.get(code, f"failed (exit {code}: see {folder / runs.LOG_FILE})")


def run(root: str | Path, study: Mapping[str, Any], *, cpus_per_run: int = 1, no_map: bool = False,
        on_progress: Callable[[str], None] = lambda table: None,
        should_stop: Callable[[], bool] = lambda: False) -> dict[str, str]:
    """Train every run of `study` (sweep.read_file) as a Ray task, once connect() has been called; return how each
    ended. `on_progress` gets the progress table whenever it changes; when `should_stop()` turns true (Ctrl-C),
    every run is asked to stop and unstarted ones never start."""
    import ray

    task = ray.remote(num_cpus=cpus_per_run, max_retries=RETRIES)(train_point)
    refs = {}
    for point in study["points"]:
        config = sweep.config_of(study, point)
        refs[task.remote(str(root), study["name"], point.run, train_flags(config), config.epochs, cpus_per_run,
                         no_map)] = point.run
    ends: dict[str, str] = {}
    pending, shown, stopping = list(refs), "", False
    while pending:
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        for ref in done:
            try:
                ends[refs[ref]] = ray.get(ref)
            except ray.exceptions.RayError as exc:  # its retries spent: the worker or node kept dying
                ends[refs[ref]] = f"failed ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        table = sweep.table(sweep.progress(root, study))
        if table != shown:
            on_progress(table)
            shown = table
        if not stopping and should_stop():
            stopping = True
            sweep.stop_all(root, study)
    return ends


def main(args) -> int:
    """`python -m vae_core sweep`, its arguments checked by vae_core.cli: start the sweep, or stop or show one."""
    root = args.checkpoints
    if args.stop:
        study = sweep.read_file(root, args.name)
        asked = sweep.stop_all(root, study)
        print(f"asked {len(asked)} run(s) to stop: {', '.join(asked) or 'none was training'}; runs not started "
              f"yet will not start")
        return 0
    if args.status:
        print(sweep.table(sweep.progress(root, sweep.read_file(root, args.name))))
        return 0
    where = connect(args.address, args.cpus)  # first: an unreachable cluster leaves nothing behind
    path = sweep.write_file(root, args.name, args.grid_values, args.points, args.overrides)
    print(f"sweep {args.name}: {len(args.points)} runs, kept in {path}; training on {where}, {args.cpus_per_run} "
          f"CPU(s) per run", file=sys.stderr)
    interrupted = []

    def interrupt(signum, frame):  # Ctrl-C: stop every run (each keeps its finished epochs), then report
        interrupted.append(signum)
        print("\nstopping every run of the sweep after its current step…", file=sys.stderr)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    try:
        ends = run(root, sweep.read_file(root, args.name), cpus_per_run=args.cpus_per_run, no_map=args.no_map,
                   on_progress=lambda table: print(table + "\n", flush=True), should_stop=lambda: bool(interrupted))
    finally:
        shutdown()
    for run_name, end in ends.items():
        print(f"{run_name}: {end}")
    failed = [r for r, end in ends.items() if end.startswith("failed")]
    if failed:
        return 1
    return 130 if any(end == "stopped" for end in ends.values()) else 0
