"""The observation model p(x | z): one object per choice of `Config.likelihood`.

    from vae_core.likelihoods import make_likelihood
    lik = make_likelihood(config)                 # an nn.Module: the Gaussian's scales are weights
    x = lik.prepare(images, generator)            # the data as this likelihood sees it (binarized: 0/1 draws)
    lik.distribution(loc_img).log_prob(x)         # (n,) nats per image; loc_img = decoder(z), (n, x_dim) in (0, 1)
    lik.mean(loc_img)                             # the image to show: the distribution's mean

The decoder always ends in a sigmoid, as the tutorial's does; each likelihood
reads its output its own way. Numbers under different likelihoods are not
comparable: `vae_core.config.LIKELIHOOD_NOTES` says, for each, what its log-likelihood is.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions.utils import clamp_probs
from torch.nn import functional as F

from vae_core.config import LIKELIHOOD_NOTES, Config

# The Gaussian's scale never goes below this: grey values are 1/255 apart, and a narrower density
# would reward an exactness the data cannot have (blank border pixels would push it towards 0).
GAUSSIAN_MIN_SCALE = 1.0 / 255.0



class Likelihood(nn.Module):
    """p(x | z) given the decoder's output loc_img (n, x_dim) in (0, 1)."""
    name = ""

    def prepare(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The images as this likelihood scores them; most take the grey pixels as they are.

        Draws (binarized) come from `generator`; None means torch's process-wide RNG, which only a
        training process may use (its stream is checkpointed): the server's threads pass their own.
        """
        return x

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        """p(x | z) with an event of one whole image."""
        raise NotImplementedError

    def mean(self, loc_img: torch.Tensor) -> torch.Tensor:
        """The image to show: E[x | z], (n, x_dim) in [0, 1]."""
        return loc_img


class Bernoulli(Likelihood):
    """The tutorial's: a Bernoulli on each grey pixel, validation off since the values are not 0 or 1."""
    name = "bernoulli"

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        return dist.Bernoulli(loc_img, validate_args=False).to_event(1)


class Binarized(Bernoulli):
    """A Bernoulli on pixels re-binarized at random at every use (Burda et al. 2015)."""
    name = "binarized"

    def prepare(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(x, generator=generator)  # each pixel 1 with its grey value as probability


def cb_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda), the continuous Bernoulli's log-normaliser, from the logit eta of lambda.

    C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) = eta / tanh(eta / 2): even in eta, 2 at eta = 0,
    where 0 / 0 is avoided by taking |eta| at least 1e-3 (log C moves by less than 1e-7 there, and
    its slope, eta / 6, is under 2e-4).
    """
    a = logits.abs().clamp(min=1e-3)
    return torch.log(a / torch.tanh(a * 0.5))


class _ContinuousBernoulli(dist.ContinuousBernoulli):
    """torch's distribution with a faster log_prob: measured on a training batch here, its log_prob and
    gradient took 20 ms against this one's 4 ms, and were further from a float64 reference (bench/likelihoods.py)."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        p = clamp_probs(self.probs)  # as torch's own: a sigmoid can round to 0 or 1 in float32
        log_1mp = torch.log1p(-p)
        logits = torch.log(p) - log_1mp
        return torch.addcmul(log_1mp, value, logits) + cb_log_norm(logits)  # x log p + (1 - x) log(1 - p) + log C


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli of Loaiza-Ganem & Cunningham 2019: Bernoulli's form, normalised on [0, 1]."""
    name = "continuous-bernoulli"

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        return _ContinuousBernoulli(probs=loc_img, validate_args=False).to_event(1)

    def mean(self, loc_img: torch.Tensor) -> torch.Tensor:
        # Its mean is not its parameter: lambda = 0.9 has mean 0.67, which is what a sample looks like.
        return dist.ContinuousBernoulli(probs=loc_img, validate_args=False).mean


class Gaussian(Likelihood):
    """Normal(loc_img, scale) per pixel; the scale is learned, one per pixel, independent of z."""
    name = "gaussian"

    def __init__(self, x_dim: int) -> None:
        super().__init__()
        self.raw_scale = nn.Parameter(torch.zeros(x_dim))  # scale = min + softplus(raw): 0.70 at the start

    def scale(self) -> torch.Tensor:
        """The learned scale of each pixel, (x_dim,)."""
        return GAUSSIAN_MIN_SCALE + F.softplus(self.raw_scale)

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        return dist.Normal(loc_img, self.scale(), validate_args=False).to_event(1)


def make_likelihood(config: Config) -> Likelihood:
    """The likelihood `config.likelihood` names."""
    kinds = {kind.name: kind for kind in (Bernoulli, Binarized, ContinuousBernoulli)}
    if config.likelihood == Gaussian.name:
        return Gaussian(config.x_dim)
    return kinds[config.likelihood]()


# The literature's figures on dynamically binarized MNIST for a VAE like ours, nats per image (log p(x) estimates).
BURDA_2015 = {"VAE": -86.76, "IWAE (k = 50)": -84.78}  # published: k is their number of samples
BURDA_SETTINGS = ("Burda et al. 2015, Table 1: one stochastic layer of 50 units, "  # published: their network
                  "two deterministic layers of 200 (tanh), dynamic binarization, trained 3,280 epochs, log p(x) "
                  "estimated with 5,000 samples")


def note(likelihood: str) -> str:
    """What a figure under `likelihood` means, and what it may be compared with, in one paragraph."""
    if likelihood == Binarized.name:
        papers = ", ".join(f"{name} {value:.2f} nats".replace("-", "−") for name, value in BURDA_2015.items())
        return (f"Likelihood {likelihood}: {LIKELIHOOD_NOTES[likelihood]}. Comparable with the literature: {BURDA_SETTINGS}: "
                f"{papers}.")
    return (f"Likelihood {likelihood}: {LIKELIHOOD_NOTES[likelihood]}. Figures under different likelihoods cannot be compared"
            + (" (Burda et al. 2015 report −86.76 nats for dynamically binarized MNIST; train with likelihood "
               "binarized to compare)." if likelihood == Bernoulli.name else "."))
