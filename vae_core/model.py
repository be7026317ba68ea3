"""The VAE of Pyro's "Variational Autoencoders" tutorial, reconfigurable as the tutorial says it can be.

    from vae_core.config import Config
    from vae_core.model import VAE
    vae = VAE(Config())                      # the tutorial's: 784 -> 400 softplus -> 50, Bernoulli
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)   # x: (batch, 784) in [0, 1]
    VAE(Config(hidden=(200, 200), activation="tanh", likelihood="binarized"))   # Burda et al.'s VAE

Unlike the tutorial, `model` and `guide` do not register the networks in
Pyro's global param store: the weights are ordinary parameters of this
`nn.Module` instance, optimised by a torch optimizer, so two VAEs in one
process (one training, one being inspected) never share or clobber weights.
The observation model is `vae.likelihood` (vae_core.likelihoods); nothing
here assumes a Bernoulli.
"""

from __future__ import annotations

import contextlib

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from vae_core.config import Config
from vae_core.likelihoods import make_likelihood

ACTIVATION_MODULES = {"softplus": nn.Softplus, "relu": nn.ReLU, "tanh": nn.Tanh}


def hidden_stack(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers from sizes[0] through sizes[-1], each followed by the activation."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATION_MODULES[activation]()]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """q(z | x): image -> (z_loc, z_scale) of a diagonal Normal."""

    def __init__(self, x_dim: int, hidden: tuple[int, ...], z_dim: int, activation: str = "softplus") -> None:
        super().__init__()
        self.hidden = hidden_stack([x_dim, *hidden], activation)
        self.loc = nn.Linear(hidden[-1], z_dim)
        self.log_scale = nn.Linear(hidden[-1], z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_loc, log_scale = self.loc_and_log_scale(x)
        return z_loc, torch.exp(log_scale)  # (B, z), (B, z)

    def loc_and_log_scale(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_loc and log z_scale, (B, z) each: the fused training step's log q(z | x) needs the log."""
        h = self.hidden(x)  # (B, hidden[-1])
        return self.loc(h), self.log_scale(h)


class Decoder(nn.Module):
    """p(x | z)'s parameter: latent code -> loc_img, one value in (0, 1) per pixel."""

    def __init__(self, z_dim: int, hidden: tuple[int, ...], x_dim: int, activation: str = "softplus") -> None:
        super().__init__()
        self.hidden = hidden_stack([z_dim, *reversed(hidden)], activation)  # the encoder's layers mirrored
        self.img = nn.Linear(hidden[0], x_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))  # (B, x_dim), in (0, 1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """The output before its sigmoid, (B, x_dim): the fused training step scores pixels from it."""
        return self.img(self.hidden(z))


class VAE(nn.Module):
    """Decoder and likelihood as the model p(x, z), encoder as the guide q(z | x)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.x_dim, config.hidden, config.z_dim, config.activation)
        self.decoder = Decoder(config.z_dim, config.hidden, config.x_dim, config.activation)
        self.likelihood = make_likelihood(config)

    def model(self, x: torch.Tensor, beta: float = 1.0) -> None:
        """p(z) p(x | z) with z ~ Normal(0, I); `beta` weights the latent's terms (1: the ELBO)."""
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros((x.shape[0], self.config.z_dim))
            z_scale = x.new_ones((x.shape[0], self.config.z_dim))
            with _weighted(beta):
                z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decoder(z)
            # The tutorial's Bernoulli takes grey pixels with its support check off (see likelihoods).
            pyro.sample("obs", self.likelihood.distribution(loc_img), obs=x)

    def guide(self, x: torch.Tensor, beta: float = 1.0) -> None:
        """q(z | x) = Normal(z_loc(x), z_scale(x))."""
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x)
            with _weighted(beta):
                pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    @torch.no_grad()
    def reconstruct_img(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder mean at one z drawn from the guide q(z | x), as the tutorial does; the draw comes from
        `generator` (None: torch's process-wide RNG, for a script; the app's threads pass their own)."""
        z_loc, z_scale = self.encoder(x)
        eps = torch.randn(z_loc.shape, generator=generator, device=z_loc.device, dtype=z_loc.dtype)
        return self.decode(z_loc + z_scale * eps)  # at a Normal(z_loc, z_scale) draw

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The image p(x | z) means: (n, x_dim) in [0, 1]."""
        return self.likelihood.mean(self.decoder(z))


def _weighted(beta: float):
    """Scale the latent's log p(z) and log q(z | x) by beta: the ELBO's KL term becomes beta x KL (beta-VAE)."""
    return contextlib.nullcontext() if beta == 1.0 else poutine.scale(scale=beta)
