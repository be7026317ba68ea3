"""A 4-run sweep on Ray against the same 4 runs one after another through the app's runner, and Ray's overhead.

    .venv/bin/python -m bench.sweep                      # 4 runs of 2 epochs on 10,000 images each
    .venv/bin/python -m bench.sweep --epochs 1 --limit 5000

Side by side in one run, each in a scratch checkpoints folder:
  ray start: ray.init of a local Ray with the cores this machine has, and one no-op task's round trip (the
             mean of 20 after a first);
  sweep:     `vae_core.sweep_ray.run` of a grid of 4 seeds, each run a Ray task of 1 CPU (runs in parallel, one per
             core), from the first task to the last run's end, Ray's start included;
  one by one: the same 4 runs started one after another with the app's runner (`ui.jobs.start`, forked from the
             fork server, each taking the cores it finds free), each waited for before the next.
The last line prints the ratio (goal: the sweep no slower in total) and Ray's overhead per run: the sweep's
time less its runs' own epoch seconds, over the runs, set against the same for the runner.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from vae_core import runs, sweep, sweep_ray
from vae_core.config import Config
from vae_core.cpu import cores


def _epoch_seconds(root: Path, names: list[str]) -> float:
    return sum(sum(json.loads((root / n / runs.HISTORY_FILE).read_text())["epoch_seconds"]) for n in names)


def ray_start_and_task(cpus: int) -> tuple[float, float]:
    """Seconds of ray.init, and of one no-op task's round trip."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    init = time.perf_counter() - start
    noop = ray.remote(num_cpus=1)(lambda: None)
    ray.get(noop.remote())
    start = time.perf_counter()
    for _ in range(20):
        ray.get(noop.remote())
    task = (time.perf_counter() - start) / 20
    ray.shutdown()
    return init, task


def on_ray(root: Path, base: dict, seeds: list[int]) -> tuple[float, list[str]]:
    grid = {"seed": seeds}
    points = sweep.expand("bench", grid)
    sweep.write_file(root, "bench", grid, points, base)
    start = time.perf_counter()
    sweep_ray.connect(cpus=cores())
    ends = sweep_ray.run(root, sweep.read_file(root, "bench"), cpus_per_run=1, no_map=True)
    sweep_ray.shutdown()
    seconds = time.perf_counter() - start
    assert set(ends.values()) == {"finished"}, ends
    return seconds, [p.run for p in points]


def one_by_one(root: Path, base: dict, seeds: list[int]) -> tuple[float, list[str]]:
    import os

    os.environ["VAE_NO_MAP"] = "1"  # as the sweep's runs: no latent map after training
    from ui import jobs

    names = [f"bench-seed{s}" for s in seeds]
    start = time.perf_counter()
    for name, seed in zip(names, seeds):
        jobs.start(root, name, Config(**base, seed=seed))
        while jobs.job(root, name).active:
            time.sleep(0.05)
        assert jobs.job(root, name).state == "finished", jobs.job(root, name).message
    return time.perf_counter() - start, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=10_000)
    args = parser.parse_args()
    base = {"epochs": args.epochs, "limit": args.limit, "test_every": args.epochs}
    seeds = [1, 2, 3, 4]
    print(f"{len(seeds)} runs of {args.epochs} epoch(s) on {args.limit:,} images, {cores()} cores")
    init, task = ray_start_and_task(cores())
    print(f"ray start  {init:6.2f} s; a no-op task's round trip {task * 1000:.1f} ms")
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        ray_s, ray_runs = on_ray(Path(a), base, seeds)
        ray_epochs = _epoch_seconds(Path(a), ray_runs)
        print(f"sweep      {ray_s:6.1f} s   (Ray, 1 CPU per run; its runs' epochs {ray_epochs:.1f} s of CPU-bound work)")
        seq_s, seq_runs = one_by_one(Path(b), base, seeds)
        seq_epochs = _epoch_seconds(Path(b), seq_runs)
        print(f"one by one {seq_s:6.1f} s   (ui.jobs.start, each run waited for; its runs' epochs {seq_epochs:.1f} s)")
    parallel = min(len(seeds), cores())
    print(f"ratio: one by one / sweep {seq_s / ray_s:.2f}x (goal >= 1x); outside the epochs, per run: sweep "
          f"{(ray_s - ray_epochs / parallel) / len(seeds):.1f} s (Ray's start, its task and a new interpreter's "
          f"imports), one by one {(seq_s - seq_epochs) / len(seeds):.1f} s (a fork of the fork server)")


if __name__ == "__main__":
    main()
