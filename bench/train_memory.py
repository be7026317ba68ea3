"""Peak memory (RSS) of real training runs beside ui.memory's estimate of it, which the Train page's budget uses.

    .venv/bin/python -m bench.train_memory            # batch 256 to 60,000 x hidden 400 and 2000 (about 80 s)
    .venv/bin/python -m bench.train_memory --map      # the same with the latent map after the epoch

Each setting is one `python -m vae_core train --epochs 1` in a fresh process,
over a temporary checkpoints folder, on as many images as one batch (2,000 at
the least); its peak RSS is the kernel's ru_maxrss for that child (os.wait4).
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
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
        proc.returncode = os.waitstatus_to_exitcode(status)
        error = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {error[-2000:]}")
    return usage.ru_maxrss * 1024  # Linux reports KiB


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
