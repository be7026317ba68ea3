"""The estimators: the training loss, one-sample ELBOs, the ELBO's two parts, the importance-weighted bound.

    from vae_core import objectives
    loss = objectives.training_loss(vae, jit=False, beta=1.0)(x)   # what a training step minimises
    elbo = objectives.one_sample_elbos(vae, x, seed=0)      # (n,) Pyro's Trace_ELBO terms, nats per image
    parts = objectives.elbo_parts(vae, x, seed=0)           # elbo = reconstruction - kl, (n,) each
    log_px = objectives.iwae_bound(vae, x, k=1000, seed=0)  # (n,) float64, nats per image

Safe under concurrency, by design. The app's server runs each session's script
in its own thread and long estimates in others, all in one process. Pyro's
effect-handler stack (pyro.poutine.runtime._PYRO_STACK), its param store and
torch's default RNG are process-wide: two poutine.trace calls at once
interleave ("Multiple sample sites named 'data'"), and two seeded draws from
the global RNG take from each other's stream, silently changing a number. So
everything a view computes here is plain torch: each call makes its own
torch.Generator from its seed, passes it to likelihood.prepare and draws the
guide's noise from it, and touches no global state (no poutine, no param
store, no torch.manual_seed, no set_num_threads, no module-level cache). A
result then depends on the model, the images and the seed alone, whatever
runs beside it (tests/test_concurrency.py checks this). Pyro's model and
guide (vae_core.model) remain the definition: tests pin one_sample_elbos
equal to Pyro's trace-based ELBO, and log_weights to the trace at the same
code. Only training_loss goes through Pyro (Trace_ELBO, and JitTrace_ELBO with
a param store swapped in); training runs in a process of its own.

All take images as (n, x_dim) in [0, 1]. Images go through the run's likelihood
(vae.likelihood: prepared, then scored), and the numbers mean what its
likelihood's note (config.LIKELIHOOD_NOTES) says: with the tutorial's Bernoulli on
grey pixels they are not the dynamically binarized MNIST log-likelihoods papers report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyro
import torch
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


@torch.no_grad()
def one_sample_elbos(vae: VAE, x: torch.Tensor, seed: int) -> torch.Tensor:
    """Pyro's one-sample ELBO, log p(x, z) - log q(z | x) at one z ~ q(z | x), of each row of x; shape (rows,).

    The same numbers as Trace_ELBO's trace of vae.model and vae.guide after torch.manual_seed(seed)
    (tests/test_objectives.py), drawn from this call's own generator: the likelihood's data first
    (binarized pixels), then the guide's noise, in the order Pyro draws them.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x = vae.likelihood.prepare(x, generator)
    z_loc, z_scale = vae.encoder(x)  # (rows, z_dim) each
    eps = torch.randn(z_loc.shape, generator=generator, device=x.device, dtype=z_loc.dtype)
    return _log_weights(vae, x, z_loc + z_scale * eps, z_loc, z_scale)


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
    return _log_weights(vae, x, z, *vae.encoder(x))


def _log_weights(vae: VAE, x: torch.Tensor, z: torch.Tensor, z_loc: torch.Tensor,
                 z_scale: torch.Tensor) -> torch.Tensor:
    # q(z | x) is Normal(z_loc, z_scale), the encoder's output for x, passed in so it is computed once.
    # Summed in the order Pyro's trace sums its sites (model: latent, obs; then the guide's latent),
    # so the result is bit for bit Trace_ELBO's.
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)
    log_q = Normal(z_loc, z_scale).log_prob(z).sum(-1)
    return log_prior + log_likelihood(vae, x, z) - log_q


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
            parts.append(torch.logsumexp(_log_weights(vae, x, z_loc + z_scale * eps, z_loc, z_scale), dim=0))
            done += 1
            if progress:
                progress(done / steps)
        bound = torch.logsumexp(torch.stack(parts), dim=0).double() - math.log(k)
        out[start:start + x.shape[0]] = bound.cpu().numpy()
    return out
