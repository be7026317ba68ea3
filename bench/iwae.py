"""Cost of the importance-weighted bound on log p(x): seconds per 1,000 test images at K = 1,000.

    .venv/bin/python -m bench.iwae              # the shipped tutorial checkpoint, 1,000 test images
    .venv/bin/python -m bench.iwae --k 5000 --images 200

Side by side in one run: one pass of the one-sample ELBO over the same images
(vae_core.objectives.test_loss), and the bound with K samples per image.
"""

from __future__ import annotations

import argparse
import time

import torch

from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path
from vae_core import objectives
from vae_core.data import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="tutorial")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    vae = ckpt.load_state(checkpoint_path(DEFAULT_ROOT, args.run)).vae.eval()
    images = load_split(train=False)[0][:args.images]
    print(f"run {args.run}, {args.images} test images, K = {args.k}, {torch.get_num_threads()} torch threads")
    start = time.perf_counter()
    elbo = -objectives.test_loss(vae, images, 256, seed=0)
    one_pass = time.perf_counter() - start
    start = time.perf_counter()
    bound = objectives.iwae_bound(vae, images, k=args.k, seed=0).mean()
    iwae = time.perf_counter() - start
    per_thousand = iwae / args.images * 1000
    print(f"ELBO (one sample) {elbo:.3f} nats in {one_pass:.2f} s; log p(x) >= {bound:.3f} nats in {iwae:.1f} s; "
          f"gap {bound - elbo:.3f}")
    print(f"ratios: the bound costs {iwae / one_pass:.0f}x one ELBO pass; "
          f"{per_thousand:.1f} s per 1,000 images at K = {args.k}")


if __name__ == "__main__":
    main()
