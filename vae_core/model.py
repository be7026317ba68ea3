"""The VAE of Pyro's "Variational Autoencoders" tutorial.

    from vae_core.config import Config
    from vae_core.model import VAE
    vae = VAE(Config())
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, x)   # x: (batch, 784) in [0, 1]

Unlike the tutorial, `model` and `guide` do not register the networks in
Pyro's global param store: the weights are ordinary parameters of this
`nn.Module` instance, optimised by a torch optimizer, so two VAEs in one
process (one training, one being inspected) never share or clobber weights.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

from vae_core.config import Config


class Encoder(nn.Module):
    """q(z | x): image -> (z_loc, z_scale) of a diagonal Normal."""

    def __init__(self, x_dim: int, hidden_dim: int, z_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(x_dim, hidden_dim)
        self.loc = nn.Linear(hidden_dim, z_dim)
        self.log_scale = nn.Linear(hidden_dim, z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.softplus(self.hidden(x))  # (B, hidden)
        return self.loc(h), torch.exp(self.log_scale(h))  # (B, z), (B, z)


class Decoder(nn.Module):
    """p(x | z): latent code -> per-pixel Bernoulli means."""

    def __init__(self, z_dim: int, hidden_dim: int, x_dim: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(z_dim, hidden_dim)
        self.img = nn.Linear(hidden_dim, x_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.softplus(self.hidden(z))  # (B, hidden)
        return torch.sigmoid(self.img(h))  # (B, x_dim), in (0, 1)


class VAE(nn.Module):
    """Decoder as the model p(x, z), encoder as the guide q(z | x)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.x_dim, config.hidden_dim, config.z_dim)
        self.decoder = Decoder(config.z_dim, config.hidden_dim, config.x_dim)

    def model(self, x: torch.Tensor) -> None:
        """p(z) p(x | z) with z ~ Normal(0, I) and a Bernoulli on each grey pixel."""
        with pyro.plate("data", x.shape[0]):
            z_loc = x.new_zeros((x.shape[0], self.config.z_dim))
            z_scale = x.new_ones((x.shape[0], self.config.z_dim))
            z = pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))
            loc_img = self.decoder(z)
            # Pixels are grey values in [0, 1], not binarised, so the Bernoulli's
            # support check is switched off, as in the tutorial.
            pyro.sample("obs", dist.Bernoulli(loc_img, validate_args=False).to_event(1), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        """q(z | x) = Normal(z_loc(x), z_scale(x))."""
        with pyro.plate("data", x.shape[0]):
            z_loc, z_scale = self.encoder(x)
            pyro.sample("latent", dist.Normal(z_loc, z_scale).to_event(1))

    @torch.no_grad()
    def reconstruct_img(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder mean at one z drawn from the guide q(z | x), as the tutorial does."""
        z_loc, z_scale = self.encoder(x)
        eps = torch.randn(z_loc.shape, generator=generator, device=z_loc.device, dtype=z_loc.dtype)
        return self.decoder(z_loc + z_scale * eps)  # a Normal(z_loc, z_scale) draw


def training_bytes(config: Config) -> int:
    """Rough memory a training run of `config` needs, in bytes, counted before anything is allocated.

    Weights, their gradients and Adam's two moments (4 float32 copies of every
    parameter), plus a batch's activations forward and backward.
    """
    x, h, z = config.x_dim, config.hidden_dim, config.z_dim
    params = (x * h + h) + 2 * (h * z + z) + (z * h + h) + (h * x + x)  # encoder + decoder
    activations = config.batch_size * (2 * x + 4 * h + 6 * z)  # (B, .) tensors kept for backward, about
    return 4 * (4 * params + 2 * activations)
