"""The estimators: the training loss, one-sample ELBOs, the ELBO's two parts, the importance-weighted bound.

    from vae_core import objectives
    loss = objectives.training_loss(vae, jit=False, beta=1.0)(x)   # what a training step minimises
    elbo = objectives.one_sample_elbos(vae, x, seed=0)      # (n,) Pyro's Trace_ELBO terms, nats per image
    parts = objectives.elbo_parts(vae, x, seed=0)           # elbo = reconstruction - kl, (n,) each
    log_px = objectives.iwae_bound(vae, x, k=1000, seed=0)  # (n,) float64, nats per image

All take images as (n, x_dim) in [0, 1] and draw from their own seeded RNG, never
the global one a training run uses. Images go through the run's likelihood
(vae.likelihood: prepared, then scored), and the numbers mean what its
likelihood's note (config.LIKELIHOOD_NOTES) says: with the tutorial's Bernoulli on
grey pixels they are not the binarized-MNIST log-likelihoods papers report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.infer import JitTrace_ELBO, Trace_ELBO
from torch.distributions import Normal

from vae_core.model import VAE

# Importance samples drawn at once per image batch: memory is about
# IWAE_CHUNK x IWAE_BATCH x 784 floats (31 MB) whatever K is.
IWAE_CHUNK = 100
IWAE_BATCH = 100


class Cancelled(Exception):
    """An estimate stopped because its caller asked it to."""


@dataclass(frozen=True)
class ElboParts:
    """Each image's ELBO and its two parts, nats: elbo = reconstruction - kl, each (n,)."""
    elbo: torch.Tensor
    reconstruction: torch.Tensor  # E_q[log p(x | z)], estimated with one z ~ q(z | x)
    kl: torch.Tensor  # KL(q(z | x) || p(z)), exact for two diagonal Normals


def iwae_name(k: int, images: int, seed: int) -> str:
    """Cache name of the bounds of the first `images` test images with `k` samples and `seed`."""
    return f"iwae-k{k}-n{images}-s{seed}"


def parse_iwae_name(name: str) -> tuple[int, int, int] | None:
    """(k, images, seed) of an iwae_name, or None for any other name."""
    match = re.fullmatch(r"iwae-k(\d+)-n(\d+)-s(\d+)", name)
    return tuple(int(g) for g in match.groups()) if match else None


def image_seed(seed: int, index: int) -> int:
    """Seed of one image's RNG: fixed by the caller's seed and the image's test-set index alone."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def one_sample_elbos(vae: VAE, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Pyro's one-sample ELBO, log p(x, z) - log q(z | x), of each row of x; shape (rows,)."""
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        x = vae.likelihood.prepare(x)
        guide = poutine.trace(vae.guide).get_trace(x)
    model = poutine.trace(poutine.replay(vae.model, trace=guide)).get_trace(x)
    elbo = x.new_zeros(x.shape[0])
    for trace, sign in ((model, 1.0), (guide, -1.0)):
        trace.compute_log_prob()
        for site in trace.nodes.values():
            if site["type"] == "sample":
                elbo += sign * site["log_prob"]  # (rows,): the plate keeps the copies' draws apart
    return elbo


def training_loss(vae: VAE, jit: bool, beta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training loss of a batch, summed over it as SVI.step: the negative ELBO, its KL term weighted by beta."""
    if not jit:
        elbo = Trace_ELBO()
        if beta == 1.0:
            return lambda x: elbo.differentiable_loss(vae.model, vae.guide, x)
        return lambda x: elbo.differentiable_loss(vae.model, vae.guide, x, beta=beta)
    # JitTrace_ELBO finds parameters through Pyro's param store; give it a store
    # of this run's own, swapped in around each step, holding this VAE's tensors.
    elbo = JitTrace_ELBO(ignore_jit_warnings=True)
    store = {"params": {}, "constraints": {}}

    def model(x: torch.Tensor) -> None:
        pyro.module("decoder", vae.decoder)
        pyro.module("likelihood", vae.likelihood)
        vae.model(x, beta)

    def guide(x: torch.Tensor) -> None:
        pyro.module("encoder", vae.encoder)
        vae.guide(x, beta)

    def loss(x: torch.Tensor) -> torch.Tensor:
        with pyro.get_param_store().scope(store):
            return elbo.differentiable_loss(model, guide, x)

    return loss


@torch.no_grad()
def elbo_parts(vae: VAE, x: torch.Tensor, seed: int) -> ElboParts:
    """Each image's reconstruction term (one draw), KL term (exact) and their difference, the ELBO."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x = vae.likelihood.prepare(x, generator)
    z_loc, z_scale = vae.encoder(x)  # (n, z_dim) each
    z = z_loc + z_scale * torch.randn(z_loc.shape, generator=generator, device=x.device, dtype=x.dtype)
    reconstruction = log_likelihood(vae, x, z)
    kl = (0.5 * (z_loc ** 2 + z_scale ** 2 - 1.0) - torch.log(z_scale)).sum(-1)
    return ElboParts(reconstruction - kl, reconstruction, kl)


@torch.no_grad()
def mean_parts(vae: VAE, images: torch.Tensor, batch_size: int, seed: int) -> tuple[float, float]:
    """The reconstruction and KL terms per image, averaged over `images` (n, ...), in batches."""
    x = images.reshape(images.shape[0], -1)
    totals = torch.zeros(2, dtype=torch.float64)
    for start in range(0, x.shape[0], batch_size):
        parts = elbo_parts(vae, x[start:start + batch_size], seed=image_seed(seed, start))
        totals += torch.stack([parts.reconstruction.sum(), parts.kl.sum()]).double().cpu()
    return float(totals[0]) / x.shape[0], float(totals[1]) / x.shape[0]


def log_likelihood(vae: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x | z) of the model's likelihood; x (n, x_dim) prepared, z (..., n, z_dim) -> (..., n)."""
    return vae.likelihood.distribution(vae.decoder(z)).log_prob(x)


def log_weights(vae: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x, z) - log q(z | x) at codes z (..., n, z_dim) for prepared images x (n, x_dim); shape (..., n)."""
    z_loc, z_scale = vae.encoder(x)
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_q = Normal(z_loc, z_scale).log_prob(z).sum(-1)
    return log_likelihood(vae, x, z) + log_prior - log_q


@torch.no_grad()
def iwae_bound(vae: VAE, images: torch.Tensor, k: int, seed: int,
               progress: Callable[[float], None] | None = None,
               should_stop: Callable[[], bool] = lambda: False) -> np.ndarray:
    """The importance-weighted bound on each image's log p(x) with `k` samples (Burda et al. 2015):
    log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x); shape (n,), float64 nats.

    k = 1 is a one-sample ELBO; the bound rises towards log p(x) as k grows. Computed
    with logsumexp over chunks of IWAE_CHUNK samples, so memory does not grow with k.
    Image batch b draws from an RNG seeded by (seed, b's first index).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    device = next(vae.parameters()).device
    x_all = images.reshape(images.shape[0], -1)
    out = np.empty(x_all.shape[0])
    steps, done = -(-x_all.shape[0] // IWAE_BATCH) * -(-k // IWAE_CHUNK), 0
    for start in range(0, x_all.shape[0], IWAE_BATCH):
        generator = torch.Generator(device=device).manual_seed(image_seed(seed, start))
        x = vae.likelihood.prepare(x_all[start:start + IWAE_BATCH].to(device), generator)
        z_loc, z_scale = vae.encoder(x)
        parts = []  # per chunk: logsumexp of its weights, (n,)
        for first in range(0, k, IWAE_CHUNK):
            if should_stop():
                raise Cancelled()
            size = min(IWAE_CHUNK, k - first)
            eps = torch.randn((size, *z_loc.shape), generator=generator, device=device, dtype=z_loc.dtype)
            parts.append(torch.logsumexp(log_weights(vae, x, z_loc + z_scale * eps), dim=0))
            done += 1
            if progress:
                progress(done / steps)
        bound = torch.logsumexp(torch.stack(parts), dim=0).double() - math.log(k)
        out[start:start + x.shape[0]] = bound.cpu().numpy()
    return out
