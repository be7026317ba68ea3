"""Peak memory (RSS) of real training runs beside vae_core.memory's estimate of it, which the Train page's budget uses.

    .venv/bin/python -m bench.train_memory            # batch 256 to 60,000 x hidden 400 and 2000 (about 80 s)
    .venv/bin/python -m bench.train_memory --map      # the same with the latent map after the epoch

Each setting is one `python -m vae_core train --epochs 1` in a fresh process,
over a temporary checkpoints folder, on as many images as one batch (2,000 at
the least); its peak RSS is the kernel's ru_maxrss for that child (os.wait4,
in a small launcher process).
The last column is estimate / measured: it should stay between 1 and 1.5.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vae_core.memory import training_bytes
from vae_core.config import Config

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [(batch, hidden) for hidden in (400, 2000) for batch in (256, 4096, 20000, 60000)]


def train_args(config: Config) -> list[str]:
    """The CLI flags of the fields a memory setting changes."""
    return ["--epochs", str(config.epochs), "--limit", str(config.limit), "--batch-size", str(config.batch_size),
            "--hidden", ",".join(map(str, config.hidden)), "--z-dim", str(config.z_dim)]


def peak_rss(config: Config, latent_map: bool = False) -> int:
    """Peak RSS in bytes of one real `python -m vae_core train` of `config` (with the map after it, if asked)."""
    env = {k: v for k, v in os.environ.items() if k != "VAE_NO_MAP"}
    with tempfile.TemporaryDirectory() as checkpoints:
        args = [sys.executable, "-m", "vae_core", "train", "--run", "memory", "--checkpoints", checkpoints,
                *train_args(config), *([] if latent_map else ["--no-map"])]
        # Through a small launcher: at exec, Linux keeps the memory high-water mark of the process image
        # replaced, and a child spawned straight from this process (vfork) would report this process's
        # peak (a pytest process of 3 GB) instead of the trainer's own.
        out = subprocess.run([sys.executable, "-c", _LAUNCH, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
    return int(out.stdout.split()[-1]) * 1024  # Linux reports KiB


# Spawn argv[1:], its output to /dev/null, and print its ru_maxrss (os.wait4: that child's alone).
_LAUNCH = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(usage.ru_maxrss) if code == 0 else sys.exit(code)
"""


def setting(batch: int, hidden: int, z_dim: int = 50) -> Config:
    """One epoch at `batch` on as many training images as one batch, 2,000 at the least."""
    return Config(epochs=1, limit=max(2000, batch), batch_size=batch, hidden=(hidden,), z_dim=z_dim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--map", action="store_true", help="compute the latent map after the epoch, as the app does")
    args = parser.parse_args()
    print(f"{'batch':>6} {'hidden':>6} {'measured MiB':>13} {'estimated MiB':>14} {'ratio':>6}")
    for batch, hidden in SETTINGS:
        config = setting(batch, hidden)
        measured, estimated = peak_rss(config, args.map), training_bytes(config)
        print(f"{batch:>6} {hidden:>6} {measured / 2**20:>13.0f} {estimated / 2**20:>14.0f} "
              f"{estimated / measured:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
