"""The CUDA path, on a machine with a GPU: per-image figures and one epoch, side by side with the CPU.

    python -m bench.cuda                 # needs torch with CUDA, pyro-ppl and the shipped checkpoint

Checks that an image's ELBO estimate and reconstructions on the GPU do not
depend on what else is in the batch (as on the CPU), that the GPU's ELBO
agrees with the CPU's within their standard errors; times one training epoch
of the tutorial's settings (the second of a run: no test pass in it) on each
device with each step (fused, the default, and trace), and the
importance-weighted bound with K = 1,000 over the 10,000 test images on the
GPU; the last line prints the ratios and issue 23's goals (an epoch in at most
0.3 s, the bound in at most 10 s on an H100 or H200).
"""

from __future__ import annotations

import time

import torch

from vae_core import analysis, objectives
from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path
from vae_core.config import Config
from vae_core.data import load_mnist
from vae_core.train import fit, new_state


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA GPU here"
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, {torch.get_num_threads()} CPU threads")
    mnist = load_mnist()
    x, ids = mnist.test_images[[7, 42, 9999]], [7, 42, 9999]
    vae_cpu = ckpt.load_state(checkpoint_path(DEFAULT_ROOT, "tutorial")).vae.eval()
    vae_gpu = ckpt.load_state(checkpoint_path(DEFAULT_ROOT, "tutorial")).vae.eval().cuda()

    together = objectives.elbo_estimate(vae_gpu, x, ids=ids, seed=0)
    alone = objectives.elbo_estimate(vae_gpu, x[2:], ids=ids[2:], seed=0)
    cpu = objectives.elbo_estimate(vae_cpu, x, ids=ids, seed=0)
    print(f"GPU ELBO of #9999 among others {together.mean[2]:.4f}, alone {alone.mean[0]:.4f}")
    assert together.mean[2] == alone.mean[0], "the GPU's per-image ELBO depends on the batch"
    gap = (together.mean - cpu.mean).abs() / (together.se ** 2 + cpu.se ** 2).sqrt()
    print(f"GPU vs CPU ELBO, in standard errors: {[round(g, 2) for g in gap.tolist()]}")
    rec_together = analysis.reconstructions(vae_gpu, x, k=3, seed=0, ids=ids)
    rec_alone = analysis.reconstructions(vae_gpu, x[2:], k=3, seed=0, ids=ids[2:])
    assert torch.equal(rec_together.draws[2], rec_alone.draws[0]), "GPU reconstructions depend on the batch"
    print("GPU reconstructions of #9999: identical alone and among others")

    seconds = {}
    for step in ("fused", "trace"):
        for device in ("cpu", "cuda"):
            state = new_state(Config(epochs=3, test_every=100, device=device, step=step))  # tests epochs 1 and 3
            fit(state, mnist)
            seconds[step, device] = state.history.epoch_seconds[1]  # ends with a read of its losses: synchronised
            print(f"epoch 2 on {device}, step {step}: {seconds[step, device]:.2f} s, "
                  f"train loss {state.history.train_loss[1]:.2f}")
    torch.cuda.synchronize()
    start = time.perf_counter()
    bound = objectives.iwae_bound(vae_gpu, mnist.test_images, k=1000, seed=0)  # numpy at the end: synchronised
    iwae = time.perf_counter() - start
    print(f"log p(x) >= {bound.mean():.3f} over the 10,000 test images, K = 1,000, on the GPU: {iwae:.1f} s")
    print(f"ratios: epoch cpu / cuda, fused {seconds['fused', 'cpu'] / seconds['fused', 'cuda']:.2f}x, trace "
          f"{seconds['trace', 'cpu'] / seconds['trace', 'cuda']:.2f}x; fused on cuda {seconds['fused', 'cuda']:.2f} s "
          f"(goal <= 0.3 s); the bound {iwae:.1f} s (goal <= 10 s)")


if __name__ == "__main__":
    main()
