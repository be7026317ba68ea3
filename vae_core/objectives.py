"""The estimators: the training and test losses, one-sample ELBOs and their parts, the IWAE bound, KL per unit.

    from vae_core import objectives
    loss = objectives.training_loss(vae, 1.0)(x)              # what a training step minimises (fused_loss)
    loss = objectives.training_loss(vae, 1.0, step="trace")(x)   # the same through Pyro's Trace_ELBO
    loss = objectives.training_loss(vae, 0.5, free_bits=0.25)(x)  # warm-up's weight, free bits
    test = objectives.test_loss(vae, images, 256, seed=0)    # float: -ELBO per image, as the tutorial prints
    elbo = objectives.one_sample_elbos(vae, x, seed=0)      # (n,) Pyro's Trace_ELBO terms, nats per image
    est = objectives.elbo_estimate(vae, x, ids=idx, seed=0)  # mean, se: (n,) nats per image, 64 draws each
    all_ = objectives.elbo_of_all(vae, images, draws=16, seed=0)   # (10000,) float32, the test set's ELBOs
    parts = objectives.elbo_parts(vae, x, seed=0)           # elbo = reconstruction - kl, (n,) each
    log_px = objectives.iwae_bound(vae, x, k=1000, seed=0)  # (n,) float64, nats per image
    kl = objectives.kl_per_dimension(codes.loc, codes.scale)   # (z_dim,) nats per image
    active = objectives.active_units(codes.loc)             # (z_dim,) bool

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
code. Only training_loss and test_loss go through Pyro (Trace_ELBO, and JitTrace_ELBO
with a param store swapped in), and training's fused_loss and free_bits_loss draw from torch's
global RNG as Pyro's guide does: training runs in a process of its own.

All take images as (n, x_dim) in [0, 1]. Images go through the run's likelihood
(vae.likelihood: prepared, then scored), and the numbers mean what its
likelihood's note (its class's `note` in vae_core.likelihoods) says: with the tutorial's Bernoulli on
grey pixels they are not the dynamically binarized MNIST log-likelihoods papers report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyro
import torch
from pyro.infer import JitTrace_ELBO, Trace_ELBO
from torch.distributions import Normal

from vae_core.data import batches
from vae_core.model import VAE

# Importance samples drawn at once per image batch: memory is about
# IWAE_CHUNK x IWAE_BATCH x 784 floats (31 MB) whatever K is.
IWAE_CHUNK = 100
IWAE_BATCH = 100
TEST_ELBO_DRAWS = 16  # one-sample ELBOs averaged per test image, for the test set's distribution
TEST_ELBOS_NAME = f"test-elbos-{TEST_ELBO_DRAWS}"  # its cache name
# Burda et al. 2015 (IWAE), section 5.2: a unit is active when Cov_x(E_q[u]) exceeds 10^-2.
ACTIVE_VARIANCE = 0.01


class Cancelled(Exception):
    """An estimate stopped because its caller asked it to."""


@dataclass(frozen=True)
class ElboParts:
    """Each image's ELBO and its two parts, nats: elbo = reconstruction - kl, each (n,)."""
    elbo: torch.Tensor
    reconstruction: torch.Tensor  # E_q[log p(x | z)], estimated with one z ~ q(z | x)
    kl: torch.Tensor  # KL(q(z | x) || p(z)), exact for two diagonal Normals


@dataclass(frozen=True)
class ElboEstimate:
    mean: torch.Tensor  # (n,): mean of the one-sample ELBOs, nats per image
    se: torch.Tensor  # (n,): its standard error, the draws' std / sqrt(draws)


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
def one_sample_elbos(vae: VAE, x: torch.Tensor, seed: int,
                     codes: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Pyro's one-sample ELBO, log p(x, z) - log q(z | x) at one z ~ q(z | x), of each row of x; shape (rows,).

    The same numbers as Trace_ELBO's trace of vae.model and vae.guide after torch.manual_seed(seed)
    (tests/test_objectives.py), drawn from this call's own generator: the likelihood's data first
    (binarized pixels), then the guide's noise, in the order Pyro draws them. `codes`, the encoder's
    (z_loc, z_scale) for x, saves encoding x again; only for a likelihood that does not binarize.
    """
    if codes is not None and vae.likelihood.binarizes:
        raise ValueError("codes cannot be shared by draws of a binarizing likelihood: each draw binarizes anew")
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x = vae.likelihood.prepare(x, generator)
    z_loc, z_scale = codes if codes is not None else vae.encoder(x)  # (rows, z_dim) each
    eps = torch.randn(z_loc.shape, generator=generator, device=x.device, dtype=z_loc.dtype)
    return _log_weights(vae, x, z_loc + z_scale * eps, z_loc, z_scale)


def training_loss(vae: VAE, beta: float, *, step: str = "fused", jit: bool = False,
                  free_bits: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training loss of a batch, summed over it as SVI.step: the negative ELBO, its KL term weighted by
    beta (a run's β, or its warm-up share of it). `step` "fused": fused_loss; "trace": Pyro's Trace_ELBO
    (JitTrace_ELBO with `jit`); with free_bits > 0, free_bits_loss whatever the step."""
    if free_bits > 0:
        return lambda x: free_bits_loss(vae, x, beta, free_bits)
    if step == "fused":
        return lambda x: fused_loss(vae, x, beta)
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


def fused_loss(vae: VAE, x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Trace_ELBO's differentiable loss of vae.model and vae.guide on the prepared batch x (n, x_dim), summed over
    it, in plain torch: -(log p(x | z) + beta (log p(z) - log q(z | x))) at one z ~ q(z | x).

    The same estimator, drawn the same way: z = z_loc + z_scale * eps with eps from torch's global RNG as the
    guide's rsample draws it, so with one seed the two agree up to float rounding, value and gradients
    (tests/test_objectives.py: fresh and trained runs, and step by step over a training run). It is faster for
    what it leaves out: Pyro's trace of both programs, and the pixels' sigmoid and back (the likelihood scores
    the decoder's logits, clamped where torch clamps a Bernoulli's probabilities).
    """
    z_loc, log_scale = vae.encoder.loc_and_log_scale(x)  # (n, z_dim) each
    eps = torch.randn(z_loc.shape, dtype=z_loc.dtype, device=z_loc.device)
    z = z_loc + torch.exp(log_scale) * eps
    log_px = vae.likelihood.log_prob_logits(vae.decoder.logits(z), x).sum()
    return -(log_px + beta * _log_prior_over_q(z, eps, log_scale).sum())


def _log_prior_over_q(z: torch.Tensor, eps: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(z) - log q(z | x) at z = z_loc + z_scale * eps, (..., n, z_dim) -> (..., n): the sum over dimensions
    of log z_scale + eps^2 / 2 - z^2 / 2, the Normals' 2 pi terms cancelling."""
    return (log_scale + 0.5 * (eps * eps - z * z)).sum(-1)


def free_bits_loss(vae: VAE, x: torch.Tensor, weight: float, free_bits: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016), summed over the batch x (n, x_dim), prepared:
    -sum_n log p(x | z) + weight * n * sum_d max(free_bits, mean_n KL_d), with the exact Gaussian KL.

    A dimension whose batch-mean KL is below `free_bits` nats adds a constant: its KL is not pushed down.
    z is drawn by rsample from q(z | x) with torch's global RNG, as Pyro's guide draws it in training.
    """
    z_loc, z_scale = vae.encoder(x)  # (n, z_dim) each
    z = Normal(z_loc, z_scale).rsample()
    kl = kl_to_prior(z_loc, z_scale).mean(dim=0)  # (z_dim,) nats, the batch's mean
    return -log_likelihood(vae, x, z).sum() + weight * x.shape[0] * torch.clamp(kl, min=free_bits).sum()


@torch.no_grad()
def test_loss(vae: VAE, images: torch.Tensor, batch_size: int, seed: int) -> float:
    """One-sample estimate of the negative ELBO per image over `images` (beta 1, whatever the run's).

    It draws from its own seeded RNG, so evaluating never shifts the training
    RNG stream: a run tested at more epochs (say, resumed ones) trains the same.
    """
    device = images.device
    elbo = Trace_ELBO()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        total = sum(elbo.loss(vae.model, vae.guide, vae.likelihood.prepare(x)) for x in batches(images, batch_size))
    return total / images.shape[0]


@torch.no_grad()
def elbo_parts(vae: VAE, x: torch.Tensor, seed: int) -> ElboParts:
    """Each image's reconstruction term (one draw), KL term (exact) and their difference, the ELBO."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    x = vae.likelihood.prepare(x, generator)
    z_loc, z_scale = vae.encoder(x)  # (n, z_dim) each
    z = z_loc + z_scale * torch.randn(z_loc.shape, generator=generator, device=x.device, dtype=x.dtype)
    reconstruction = log_likelihood(vae, x, z)
    kl = kl_to_prior(z_loc, z_scale).sum(-1)
    return ElboParts(reconstruction - kl, reconstruction, kl)


def kl_to_prior(z_loc: torch.Tensor, z_scale: torch.Tensor) -> torch.Tensor:
    """KL(Normal(z_loc, z_scale) || Normal(0, 1)) of each coordinate, exact; the shape of z_loc, nats."""
    return 0.5 * (z_loc ** 2 + z_scale ** 2 - 1.0) - torch.log(z_scale)


def kl_per_dimension(z_loc: np.ndarray, z_scale: np.ndarray) -> np.ndarray:
    """KL(q(z_d | x) || N(0, 1)) of each dimension d, averaged over the codes (n, z_dim); shape (z_dim,), nats."""
    kl = kl_to_prior(torch.from_numpy(np.asarray(z_loc, np.float64)), torch.from_numpy(np.asarray(z_scale, np.float64)))
    return kl.mean(dim=0).numpy()


def active_units(z_loc: np.ndarray, threshold: float = ACTIVE_VARIANCE) -> np.ndarray:
    """Which dimensions are active: the variance of z_loc (n, z_dim) over the images exceeds `threshold`; (z_dim,) bool."""
    return z_loc.astype(np.float64).var(axis=0) > threshold


@torch.no_grad()
def elbo_estimate(vae: VAE, images: torch.Tensor, ids: Sequence[int], seed: int, draws: int = 64) -> ElboEstimate:
    """Each image's ELBO in nats: the mean of `draws` one-sample estimates, and its standard error.

    The draws z ~ q(z | x) come from the image's own RNG, seeded by (seed, ids[i]).
    """
    if draws < 2:
        raise ValueError(f"draws must be at least 2 (a standard error needs two), got {draws}")
    x = _flat(vae, images)  # (n, x_dim)
    per_draw = torch.stack([one_sample_elbos(vae, one.expand(draws, -1), image_seed(seed, int(index)))
                            for one, index in zip(x, ids, strict=True)])  # (n, draws)
    return ElboEstimate(per_draw.mean(dim=1).cpu(), (per_draw.std(dim=1) / draws ** 0.5).cpu())


@torch.no_grad()
def elbo_of_all(vae: VAE, images: torch.Tensor, draws: int, seed: int, batch_size: int = 2000) -> np.ndarray:
    """Each image's ELBO in nats, the mean of `draws` one-sample estimates; shape (n,), float32.

    Made for a distribution over many images: the draws come from one RNG per batch and draw.
    """
    x = _flat(vae, images)  # (n, x_dim)
    parts = []
    for i in range(0, x.shape[0], batch_size):
        batch = x[i:i + batch_size]
        # Pixels scored as they are draw nothing before the guide: one encoding serves every draw, the same
        # numbers as encoding at each (the likelihood's elementwise work, not the encoder, is most of the
        # time: about 10 % less); binarized pixels differ by draw, so they cannot.
        codes = None if vae.likelihood.binarizes else vae.encoder(batch)
        parts.append(torch.stack([one_sample_elbos(vae, batch, image_seed(seed + d, i), codes)
                                  for d in range(draws)]).mean(dim=0))
    return torch.cat(parts).cpu().numpy().astype(np.float32)


def _flat(vae: VAE, images: torch.Tensor) -> torch.Tensor:
    return images.reshape(images.shape[0], -1).to(next(vae.parameters()).device)  # (n, x_dim) on the model's device


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
    Image batch b draws from an RNG seeded by (seed, b's first index). Each sample is
    scored as fused_loss scores it, from the decoder's logits: log_weights up to float
    rounding, in half the time (bench/iwae.py).
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
        z_loc, log_scale = vae.encoder.loc_and_log_scale(x)
        z_scale = torch.exp(log_scale)
        parts = []  # per chunk: logsumexp of its weights, (n,)
        for first in range(0, k, IWAE_CHUNK):
            if should_stop():
                raise Cancelled()
            size = min(IWAE_CHUNK, k - first)
            eps = torch.randn((size, *z_loc.shape), generator=generator, device=device, dtype=z_loc.dtype)
            z = z_loc + z_scale * eps  # (size, n, z_dim)
            # The fused step's arithmetic: the pixels scored from the logits (most of the work after the decoder's
            # products), equal to log_weights up to float rounding.
            log_w = vae.likelihood.log_prob_logits(vae.decoder.logits(z), x) + _log_prior_over_q(z, eps, log_scale)
            parts.append(torch.logsumexp(log_w, dim=0))
            done += 1
            if progress:
                progress(done / steps)
        bound = torch.logsumexp(torch.stack(parts), dim=0).double() - math.log(k)
        out[start:start + x.shape[0]] = bound.cpu().numpy()
    return out
