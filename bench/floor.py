"""The hardware's floor for one training epoch: the matrix products alone, at a given thread count.

    .venv/bin/python -m bench.floor                # the tutorial's model, 1 and 2 threads
    .venv/bin/python -m bench.floor --threads 2

A training step of the tutorial's VAE (784 -> 400 -> 50 + 50 -> 400 -> 784, batch 256) does 14 matrix
products: 5 forward (the encoder's hidden layer, its two heads, the decoder's two layers) and 9 backward
(each layer's weight gradient, and the gradient of each layer's input but the image's). Timed here alone,
on the same shapes and the same number of steps as an epoch of 60,000 images, with no activation, loss,
sampling, optimizer or allocation: what no training loop on this hardware can beat. An epoch is about
210 GFLOP of them. bench/epoch.py prints each pipeline as a multiple of this floor, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

TRAIN_IMAGES = 60_000
SIDE = 784  # pixels of an image


def epoch_flops(hidden: int = 400, z_dim: int = 50, images: int = TRAIN_IMAGES) -> float:
    """Floating-point operations of the 14 products of one epoch (a multiply and an add each)."""
    x, h, z = SIDE, hidden, z_dim
    forward = x * h + 2 * h * z + z * h + h * x  # per image: 5 products' multiply-adds
    backward = 2 * forward - x * h  # every product twice (weight and input gradients), but the image's input
    return 2.0 * images * (forward + backward)


def floor_epoch(threads: int, batch: int = 256, hidden: int = 400, z_dim: int = 50, images: int = TRAIN_IMAGES,
                repeat: int = 3) -> float:
    """Best of `repeat` times of one epoch's matrix products at `threads` torch threads, in seconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return min(_one_epoch(batch, hidden, z_dim, images) for _ in range(repeat))
    finally:
        torch.set_num_threads(before)


def _one_epoch(batch: int, hidden: int, z_dim: int, images: int) -> float:
    g = torch.Generator().manual_seed(0)
    side = SIDE

    def w(rows: int, cols: int) -> torch.Tensor:
        return torch.randn(rows, cols, generator=g) * 0.05

    w1, wl, ws, w3, w4 = w(hidden, side), w(z_dim, hidden), w(z_dim, hidden), w(hidden, z_dim), w(side, hidden)
    sizes = [batch] * (images // batch) + ([images % batch] if images % batch else [])
    # Every product writes into a buffer made once (out=): the floor holds no allocation.
    buffers = {}
    for n in set(sizes):
        buffers[n] = dict(
            x=torch.rand(n, side, generator=g), h1=torch.empty(n, hidden), loc=torch.empty(n, z_dim),
            scale=torch.empty(n, z_dim), h3=torch.empty(n, hidden), out=torch.empty(n, side),
            gh3=torch.empty(n, hidden), gz=torch.empty(n, z_dim), gh1=torch.empty(n, hidden))
    grads = [torch.empty_like(p) for p in (w4, w3, wl, ws, w1)]
    start = time.perf_counter()
    for n in sizes:
        b = buffers[n]
        torch.mm(b["x"], w1.T, out=b["h1"])  # forward
        torch.mm(b["h1"], wl.T, out=b["loc"])
        torch.mm(b["h1"], ws.T, out=b["scale"])
        torch.mm(b["loc"], w3.T, out=b["h3"])
        torch.mm(b["h3"], w4.T, out=b["out"])
        torch.mm(b["out"].T, b["h3"], out=grads[0])  # backward, the output standing in for its gradient
        torch.mm(b["out"], w4, out=b["gh3"])
        torch.mm(b["gh3"].T, b["loc"], out=grads[1])
        torch.mm(b["gh3"], w3, out=b["gz"])
        torch.mm(b["gz"].T, b["h1"], out=grads[2])
        torch.mm(b["scale"].T, b["h1"], out=grads[3])
        torch.mm(b["gz"], wl, out=b["gh1"])
        b["gh1"].addmm_(b["scale"], ws)
        torch.mm(b["gh1"].T, b["x"], out=grads[4])
    return time.perf_counter() - start


def iwae_floor(threads: int, images: int, k: int, hidden: int = 400, z_dim: int = 50, chunk_rows: int = 10_000,
               repeat: int = 2) -> float:
    """Best of `repeat` times of the decoder's two products over images x k codes, in chunks of `chunk_rows` codes
    (the bound's 100 samples x 100 images) at `threads` threads: the importance-weighted bound's floor."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return min(_iwae_products(images * k, hidden, z_dim, chunk_rows) for _ in range(repeat))
    finally:
        torch.set_num_threads(before)


def _iwae_products(codes: int, hidden: int, z_dim: int, chunk_rows: int) -> float:
    g = torch.Generator().manual_seed(0)
    w3, w4 = torch.randn(hidden, z_dim, generator=g) * 0.05, torch.randn(SIDE, hidden, generator=g) * 0.05
    z, h, out = torch.randn(chunk_rows, z_dim, generator=g), torch.empty(chunk_rows, hidden), torch.empty(chunk_rows, SIDE)
    start = time.perf_counter()
    for _ in range(-(-codes // chunk_rows)):
        torch.mm(z, w3.T, out=h)
        torch.mm(h, w4.T, out=out)
    return time.perf_counter() - start


def _count(n: int = 20_000_000) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += i
    return time.perf_counter() - start


def core_capacity() -> float:
    """How many cores' work two busy processes get done at once: 2.0 on two real cores, 1.0 when the two
    share one (a host's neighbours, or hyperthreads). A pure-Python loop alone, then two copies at once."""
    import multiprocessing as mp

    alone = min(_count() for _ in range(3))
    with mp.Pool(2) as pool:
        both = min(max(pool.map(_count, [20_000_000] * 2)) for _ in range(3))
    return 2 * alone / both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="torch thread counts (default 1 2)")
    args = parser.parse_args()
    print(f"two busy processes do {core_capacity():.2f} cores' work (2.00: two real cores)")
    flops = epoch_flops()
    for threads in args.threads:
        seconds = floor_epoch(threads)
        print(f"floor, {threads} thread(s): {seconds:.2f} s per epoch ({flops / seconds / 1e9:.0f} GFLOP/s "
              f"of {flops / 1e9:.0f} GFLOP)")


if __name__ == "__main__":
    main()
