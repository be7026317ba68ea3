"""One dataclass with every size and hyper-parameter of the tutorial's VAE.

    from vae_core.config import Config
    cfg = Config(epochs=5, limit=2000)   # validated on construction
    Config.from_dict(cfg.to_dict()) == cfg

The defaults are those of Pyro's "Variational Autoencoders" tutorial.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A configuration value is out of range; the message says what is allowed.

    `field` names the Config field and `problem` says what is wrong with it
    ("must be between 1 and 10000, got 0"), so a form can put the problem
    beside its own label; str() reads "epochs must be between ...".
    """

    def __init__(self, message: str, field: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem or message

    @classmethod
    def of(cls, field: str, problem: str) -> ConfigError:
        """The error of one field."""
        return cls(f"{field} {problem}", field, problem)


DEVICES = ("cpu", "cuda")
# MNIST's digits are 28 x 28 pixels; vae_core.data checks the files say so.
MNIST_SIDE = 28


@dataclass(frozen=True)
class Config:
    # MNIST digits are 28 x 28 grey images, flattened to 784 inputs; fixed by the data, not a choice.
    image_height: int = MNIST_SIDE
    image_width: int = MNIST_SIDE
    z_dim: int = 50
    hidden_dim: int = 400
    lr: float = 1.0e-3
    batch_size: int = 256
    epochs: int = 100
    # The test ELBO is estimated at epoch 0, every `test_every` epochs and at the last.
    test_every: int = 5
    seed: int = 0
    device: str = "cpu"
    # JitTrace_ELBO instead of Trace_ELBO; measured here it brings no reliable gain.
    jit: bool = False
    # Train on the first `limit` training images only (None: all 60,000), for quick tries.
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("image_height", "image_width"):
            if getattr(self, name) != MNIST_SIDE:
                raise ConfigError.of(name, f"must be {MNIST_SIDE}, got {getattr(self, name)!r}: MNIST's images "
                                           f"are {MNIST_SIDE} x {MNIST_SIDE} pixels, and the size comes from the data")
        _check_int("z_dim", self.z_dim, 1, 4096)
        _check_int("hidden_dim", self.hidden_dim, 1, 65536)
        _check_int("batch_size", self.batch_size, 1, 60000)
        _check_int("epochs", self.epochs, 1, 10000)
        _check_int("test_every", self.test_every, 1, 10000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if self.limit is not None:
            _check_int("limit", self.limit, 1, 60000)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise ConfigError.of("lr", f"must be a number, got {self.lr!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise ConfigError.of("lr", f"must be more than 0 and at most 1, got {self.lr!r} (the tutorial uses 1e-3)")
        if self.device not in DEVICES:
            raise ConfigError.of("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not isinstance(self.jit, bool):
            raise ConfigError.of("jit", f"must be true or false, got {self.jit!r}")

    @property
    def x_dim(self) -> int:
        """Number of pixels of one flattened image."""
        return self.image_height * self.image_width

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, for checkpoints and JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Rebuild a config, refusing unknown fields by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**values)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError.of(name, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError.of(name, f"must be between {low} and {high}, got {value}")
