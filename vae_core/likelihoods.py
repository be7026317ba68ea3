"""The observation model p(x | z): one class per choice of `Config.likelihood`, holding all its facts.

    from vae_core.likelihoods import LIKELIHOODS, make_likelihood
    kind = LIKELIHOODS["binarized"]               # the class: name, help, note, pixels, binarizes, reference
    kind.note, kind.describe()                    # what its figures are; and with what they compare
    lik = make_likelihood(config)                 # an nn.Module: the Gaussian's scales are weights
    x = lik.prepare(images, generator)            # the data as this likelihood sees it (binarized: 0/1 draws)
    lik.distribution(loc_img).log_prob(x)         # (n,) nats per image; loc_img = decoder(z), (n, x_dim) in (0, 1)
    lik.mean(loc_img)                             # the image to show: the distribution's mean

A new likelihood is one class below and its entry in LIKELIHOODS: the Config's
choices and help, the CLI's flag, the Train form, Home and the tests all read
the registry. The decoder always ends in a sigmoid, as the tutorial's does;
each likelihood reads its output its own way. Numbers under different
likelihoods are not comparable: each class's `note` says what its log-likelihood is.

This module loads without torch (vae_core.TORCH_FREE), so that the config, the
CLI's parser and Home read the facts before torch loads (2 s here): the math
imports torch inside its methods, and make_likelihood mixes torch's Module into
the class on first use.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyro.distributions as dist
    import torch

    from vae_core.config import Config

# The Gaussian's scale never goes below this: grey values are 1/255 apart, and a narrower density
# would reward an exactness the data cannot have (blank border pixels would push it towards 0).
GAUSSIAN_MIN_SCALE = 1.0 / 255.0
# The literature's figures on dynamically binarized MNIST for a VAE like ours, nats per image (log p(x) estimates).
BURDA_2015 = {"VAE": -86.76, "IWAE (k = 50)": -84.78}  # published: k is their number of samples
BURDA_SETTINGS = ("Burda et al. 2015, Table 1: one stochastic layer of 50 units, "  # published: their network
                  "two deterministic layers of 200 (tanh), dynamic binarization, trained 3,280 epochs, log p(x) "
                  "estimated with 5,000 samples")


def _nats(value: float) -> str:
    return f"{value:.2f} nats".replace("-", "−")  # a typographic minus, as the pages print figures


class Likelihood:
    """p(x | z) given the decoder's output loc_img (n, x_dim) in (0, 1), and the words that explain it."""
    name = ""  # Config.likelihood's value, the CLI's and the form's choice
    help = ""  # the form's and the CLI's words after "name: "
    note = ""  # what its log p(x | z) is, after "Likelihood name: " (CLI, Train, Evaluate, Compare, Draw)
    pixels = ""  # Home's diagram: what the decoder's sigmoid output parameterises
    binarizes = False  # scores pixels drawn 0 or 1 from their grey values, afresh at every use
    reference: dict[str, float] = {}  # published figures comparable with its own, nats per image
    reference_source = ""  # where `reference` comes from and under which settings
    unlike = ""  # said after "cannot be compared", when a reference elsewhere might be mistaken for its own
    intro = ""  # Home's sentence on a run of it, where "This run's likelihood is <name>: <note>." will not do

    def __init__(self, x_dim: int) -> None:
        super().__init__()  # torch's Module, mixed in by make_likelihood

    @classmethod
    def describe(cls) -> str:
        """What a figure under this likelihood means, and what it may be compared with, in one paragraph."""
        if cls.reference:
            figures = ", ".join(f"{name} {_nats(value)}" for name, value in cls.reference.items())
            return (f"Likelihood {cls.name}: {cls.note}. Comparable with the literature: {cls.reference_source}: "
                    f"{figures}.")
        return f"Likelihood {cls.name}: {cls.note}. Figures under different likelihoods cannot be compared{cls.unlike}."

    @classmethod
    def home(cls) -> str:
        """Home's sentence on a run of this likelihood."""
        return cls.intro or f"This run's likelihood is {cls.name}: {cls.note}."

    @classmethod
    def weights(cls, x_dim: int) -> int:
        """How many numbers it learns beside the networks' (counted without torch)."""
        return 0

    def prepare(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The images as this likelihood scores them: the grey pixels as they are, or 0/1 draws if it binarizes.

        Draws come from `generator`; None means torch's process-wide RNG, which only a training
        process may use (its stream is checkpointed): the server's threads pass their own.
        """
        if not self.binarizes:
            return x
        import torch

        return torch.bernoulli(x, generator=generator)  # each pixel 1 with its grey value as probability

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        """p(x | z) with an event of one whole image."""
        raise NotImplementedError

    def mean(self, loc_img: torch.Tensor) -> torch.Tensor:
        """The image to show: E[x | z], (n, x_dim) in [0, 1]."""
        return loc_img

    def log_prob_logits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) of each image from the decoder's output before its sigmoid, logits (..., n, x_dim) and x
        (n, x_dim) -> (..., n): what the fused training step and the importance-weighted bound score. The same
        numbers as distribution(sigmoid(logits)).log_prob(x), which this default computes; a class may do it in
        fewer kernels, up to float rounding."""
        import torch

        return self.distribution(torch.sigmoid(logits)).log_prob(x)


class Bernoulli(Likelihood):
    """The tutorial's: a Bernoulli on each grey pixel, validation off since the values are not 0 or 1."""
    name = "bernoulli"
    help = "the tutorial's, on grey pixels."
    note = ("a Bernoulli on grey pixels, as the tutorial: not a normalised density on [0, 1] (it drops a normaliser "
            "of at least ln 2 per pixel, 543 nats per image), and not the dynamically binarized MNIST log-likelihood "
            "that papers report")
    pixels = "Bernoulli pixel means"
    unlike = (f" (Burda et al. 2015 report {_nats(BURDA_2015['VAE'])} for dynamically binarized MNIST; train with "
              f"likelihood binarized to compare)")
    intro = ("The pixels are grey values under a Bernoulli, so this ELBO is not a log-likelihood of dynamically "
             "binarized MNIST.")

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        import pyro.distributions as dist

        return dist.Bernoulli(loc_img, validate_args=False).to_event(1)

    def log_prob_logits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum x log p + (1 - x) log(1 - p) = sum x logits - softplus(logits), where the distribution goes through
        p = sigmoid(logits) and back: 0.64 s against 0.17 s per epoch here."""
        from torch.nn import functional as F

        logits = clamp_logits_(logits)
        return -F.softplus(logits).addcmul_(x, logits, value=-1.0).sum(-1)  # in place: softplus keeps its input


class Binarized(Bernoulli):
    """A Bernoulli on pixels re-binarized at random at every use (Burda et al. 2015)."""
    name = "binarized"
    help = "pixels drawn 0 or 1 afresh at every use (Burda et al. 2015)."
    note = ("a Bernoulli on pixels drawn 0 or 1 afresh at every use (dynamic binarization): the dynamically binarized "
            "MNIST log-likelihood that papers report (MNIST thresholded once scores higher)")
    binarizes = True
    reference, reference_source = BURDA_2015, BURDA_SETTINGS
    intro = ""  # the general sentence, not the tutorial's


def clamp_logits_(logits: torch.Tensor) -> torch.Tensor:
    """The logits clamped, in place (a decoder's fresh output: its product's gradient does not need it), where
    torch's Bernoulli clamps its probabilities, finfo.eps from 0 and 1 (|logit| at most 15.94 in float32): scored
    from the logits, a saturated sigmoid then gives the numbers, and no gradient, it gives through the
    probabilities. Unclamped, a trained tutorial run's batch scored 0.01 nats per image apart and its gradients
    up to 8 % apart: 45 % of its pixels' logits lie beyond the clamp."""
    import math

    import torch

    eps = torch.finfo(logits.dtype).eps
    bound = math.log1p(-eps) - math.log(eps)
    return logits.clamp_(-bound, bound)


def cb_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda), the continuous Bernoulli's log-normaliser, from the logit eta of lambda.

    C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda) = eta / tanh(eta / 2): even in eta, 2 at eta = 0,
    where 0 / 0 is avoided by taking |eta| at least 1e-3 (log C moves by less than 1e-7 there, and
    its slope, eta / 6, is under 2e-4).
    """
    import torch

    a = logits.abs().clamp(min=1e-3)
    return torch.log(a / torch.tanh(a * 0.5))


@functools.cache
def _fast_continuous_bernoulli() -> type:
    """torch's distribution with a faster log_prob, made on first use: measured on a training batch here, its
    log_prob and gradient took 20 ms against this one's 4 ms, and were further from a float64 reference
    (bench/likelihoods.py)."""
    import pyro.distributions as dist
    import torch
    from torch.distributions.utils import clamp_probs

    class FastContinuousBernoulli(dist.ContinuousBernoulli):
        def log_prob(self, value: torch.Tensor) -> torch.Tensor:
            p = clamp_probs(self.probs)  # as torch's own: a sigmoid can round to 0 or 1 in float32
            log_1mp = torch.log1p(-p)
            logits = torch.log(p) - log_1mp
            return torch.addcmul(log_1mp, value, logits) + cb_log_norm(logits)  # x log p + (1 - x) log(1 - p) + log C

    return FastContinuousBernoulli


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli of Loaiza-Ganem & Cunningham 2019: Bernoulli's form, normalised on [0, 1]."""
    name = "continuous-bernoulli"
    help = "the proper density on [0, 1] (Loaiza-Ganem & Cunningham 2019)."
    note = "the continuous Bernoulli, a normalised density on grey pixels in [0, 1] (Loaiza-Ganem & Cunningham 2019)"
    pixels = "continuous Bernoulli λ"

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        return _fast_continuous_bernoulli()(probs=loc_img, validate_args=False).to_event(1)

    def log_prob_logits(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x log p + (1 - x) log(1 - p) + log C with log(1 - p) = -softplus(logits): no sigmoid and back."""
        from torch.nn import functional as F

        logits = clamp_logits_(logits)
        return (cb_log_norm(logits) - F.softplus(logits).addcmul_(x, logits, value=-1.0)).sum(-1)

    def mean(self, loc_img: torch.Tensor) -> torch.Tensor:
        import pyro.distributions as dist

        # Its mean is not its parameter: lambda = 0.9 has mean 0.67, which is what a sample looks like.
        return dist.ContinuousBernoulli(probs=loc_img, validate_args=False).mean


class Gaussian(Likelihood):
    """Normal(loc_img, scale) per pixel; the scale is learned, one per pixel, independent of z."""
    name = "gaussian"
    help = "a learned scale per pixel."
    note = ("a Gaussian per pixel with a learned scale (one per pixel, at least 1/255): a density, positive where it "
            "is narrow")
    pixels = "Gaussian means, learned scales"

    def __init__(self, x_dim: int) -> None:
        import torch

        super().__init__(x_dim)
        self.raw_scale = torch.nn.Parameter(torch.zeros(x_dim))  # scale = min + softplus(raw): 0.70 at the start

    @classmethod
    def weights(cls, x_dim: int) -> int:
        """One scale per pixel."""
        return x_dim

    def scale(self) -> torch.Tensor:
        """The learned scale of each pixel, (x_dim,)."""
        from torch.nn import functional as F

        return GAUSSIAN_MIN_SCALE + F.softplus(self.raw_scale)

    def distribution(self, loc_img: torch.Tensor) -> dist.TorchDistribution:
        import pyro.distributions as dist

        return dist.Normal(loc_img, self.scale(), validate_args=False).to_event(1)


# The one list of likelihoods, in the order the form and the CLI offer them: a new one is its class and an entry here.
LIKELIHOODS: dict[str, type[Likelihood]] = {kind.name: kind for kind in (
    Bernoulli,
    Binarized,
    ContinuousBernoulli,
    Gaussian,
)}


def make_likelihood(config: Config) -> Likelihood:
    """The likelihood `config.likelihood` names, as a torch Module of `config.x_dim` pixels."""
    return _as_module(LIKELIHOODS[config.likelihood])(config.x_dim)


@functools.cache
def _as_module(kind: type[Likelihood]) -> type:
    """`kind` with torch's Module mixed in, so its weights (the Gaussian's scales) are the VAE's, saved under
    "likelihood." in a checkpoint; pickled (to the app's child processes) as its kind and state."""
    from torch import nn

    def reduce(module: Any, protocol: int) -> tuple:
        return _rebuild, (kind, module.__getstate__())

    return type(kind.__name__, (kind, nn.Module), {"__reduce_ex__": reduce, "__doc__": kind.__doc__})


def _rebuild(kind: type[Likelihood], state: dict) -> Likelihood:
    """A pickled likelihood again, from its kind and state."""
    cls = _as_module(kind)
    module = cls.__new__(cls)
    module.__setstate__(state)
    return module
