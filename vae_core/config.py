"""One dataclass with every size and hyper-parameter of the tutorial's VAE.

    from vae_core.config import Config, parse_value, FIELDS
    cfg = Config(epochs=5, limit=2000)                 # validated on construction
    Config.from_dict(cfg.to_dict()) == cfg
    Config(hidden=parse_value("hidden", "200,200"))    # text from a flag or a form, checked by field
    FIELDS["beta"].help, FIELDS["z_dim"].low           # what the CLI and the Train form read

The defaults are those of Pyro's "Variational Autoencoders" tutorial. Each
field's metadata (label, help, range or choices) drives the checks here, the
CLI's flags, the Train page's job command and its form: a new field is one
edit below.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vae_core.likelihoods import LIKELIHOODS


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
# How a training step computes its loss and update; a run saved before the choice existed trained with "trace".
STEPS = ("fused", "trace")
STEP_BEFORE_CHOICE = "trace"
ACTIVATIONS = ("softplus", "relu", "tanh")
# MNIST's digits are 28 x 28 pixels; vae_core.data checks the files say so.
MNIST_SIDE = 28
# The project's data/ folder, holding the shipped MNIST/raw files.
DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
MNIST_TRAIN_IMAGES = 60_000
MAX_LAYERS = 8


@dataclass(frozen=True)
class Spec:
    """What a user may set a field to, and the words that explain it."""
    label: str
    text: str  # what the field is: its help, which adds each choice's own words where the choices are a registry
    kind: type  # int, float, str, bool, or tuple (of whole numbers)
    low: float | None = None
    high: float | None = None
    # The allowed values: a tuple, or a registry (name -> class with a `help`) read whenever asked, so that a
    # likelihood registered in vae_core.likelihoods is a choice of the Config, the CLI and the form alike.
    choices: Collection[str] = ()
    cli: bool = True  # a flag of `train` and part of the job command
    why: str = ""  # why the range is what it is, told with a refusal when it is not obvious
    # A number's `low` is excluded (an lr or a beta of 0 learns nothing), unless 0 means "off" (free bits).
    low_allowed: bool = False

    @property
    def help(self) -> str:
        """The words of the CLI's flag and the form's widget: the field's text, then each registered choice's."""
        if isinstance(self.choices, Mapping):
            return " ".join([self.text, *(f"{name}: {kind.help}" for name, kind in self.choices.items())])
        return self.text


def _f(default: Any, label: str, help: str, kind: type, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(label, help, kind, **spec)})


@dataclass(frozen=True)
class Config:
    # MNIST digits are 28 x 28 grey images, flattened to 784 inputs; fixed by the data, not a choice.
    image_height: int = _f(MNIST_SIDE, "Image height", "Pixels; fixed by MNIST.", int, cli=False)
    image_width: int = _f(MNIST_SIDE, "Image width", "Pixels; fixed by MNIST.", int, cli=False)
    epochs: int = _f(100, "Epochs", "Passes over the training images; the tutorial trains 100.", int,
                     low=1, high=10_000)
    # Train on the first `limit` training images only (None: all 60,000), for quick tries.
    limit: int | None = _f(None, "Subset", "Train on the first N training images only; 0 means all 60,000.", int,
                           low=1, high=MNIST_TRAIN_IMAGES)
    lr: float = _f(1.0e-3, "Learning rate", "Adam's step size; the tutorial uses 0.001.", float, low=0, high=1)
    batch_size: int = _f(256, "Batch size", "Images per step; the tutorial uses 256.", int, low=1, high=60_000)
    # The test ELBO is estimated at epoch 0, every `test_every` epochs and at the last.
    test_every: int = _f(5, "Test every", "Epochs between estimates of the test ELBO (it is also estimated after "
                                          "the first and the last epoch).", int, low=1, high=10_000)
    # At least 2: Home, the Latent map and Interpolate place codes in a plane (a 1-d code crashed them).
    z_dim: int = _f(50, "Latent dimensions", "z_dim, the size of the code z, 2 to 4096; the tutorial uses 50, and 2 "
                                             "gives a map without T-SNE.", int, low=2, high=4096,
                    why="the views map codes in two dimensions: use at least 2")
    # Hidden layers of the encoder, mirrored by the decoder: the tutorial has one of 400 units.
    hidden: tuple[int, ...] = _f((400,), "Hidden layers", "Units of each hidden layer, comma-separated: the "
                                                         "tutorial's is 400; Burda et al. use 200,200. The "
                                                         "decoder mirrors the encoder.", tuple, low=1, high=65_536)
    activation: str = _f("softplus", "Activation", "Non-linearity of the hidden layers; the tutorial's is "
                                                   "softplus.", str, choices=ACTIVATIONS)
    # The tutorial's Bernoulli; each choice's help, note and math are its class in vae_core.likelihoods.
    likelihood: str = _f("bernoulli", "Likelihood", "p(x | z).", str, choices=LIKELIHOODS)
    # Weight on the KL term of the training loss (beta-VAE, Higgins et al. 2017); 1 is the ELBO.
    beta: float = _f(1.0, "β (KL weight)", "Weight on the KL term of the training loss (β-VAE); 1 trains on "
                                           "the ELBO. Test figures are always the ELBO.", float, low=0, high=1000)
    # KL warm-up (Bowman et al. 2016): the KL weight rises linearly to beta over the first `warmup` epochs.
    warmup: int = _f(0, "KL warm-up (epochs)", "KL warm-up (Bowman et al. 2016): over the first N epochs the KL "
                                               "term's weight rises linearly from β/N to β, then stays β; 0 turns "
                                               "it off. Test figures are always the ELBO.", int, low=0, high=10_000,
                     why="0 turns warm-up off")
    # Free bits (Kingma et al. 2016): nats per latent dimension of KL left unpenalised; 0 is the plain objective.
    free_bits: float = _f(0.0, "Free bits (nats)", "Free bits (Kingma et al. 2016): a latent dimension's KL, "
                                                   "averaged over the batch, is not penalised below this many "
                                                   "nats; 0 turns it off. Test figures are always the ELBO.",
                          float, low=0, high=10, low_allowed=True, why="0 turns free bits off")
    seed: int = _f(0, "Seed", "Seeds the weights, the shuffling and the sampling.", int, low=0, high=2**63 - 1)
    device: str = _f("cpu", "Device", "Where to train.", str, choices=DEVICES)
    # The training step. "fused": the ELBO in plain torch from the decoder's logits (vae_core.objectives.fused_loss,
    # tested equal to Trace_ELBO step by step up to float rounding) and torch's fused Adam: about 1.4x faster here
    # (bench/epoch.py). "trace": Pyro's Trace_ELBO and a per-tensor Adam, bit for bit as every run before the choice.
    step: str = _f("fused", "Training step", "fused: the ELBO written in plain torch from the decoder's logits and "
                                             "torch's fused Adam, equal to Pyro's Trace_ELBO up to float rounding "
                                             "and about 1.4x faster; trace: Pyro's Trace_ELBO itself, as runs "
                                             "trained before this choice.", str, choices=STEPS)
    # JitTrace_ELBO instead of Trace_ELBO; measured here it brings no reliable gain.
    jit: bool = _f(False, "JitTrace_ELBO", "Compile the loss with Pyro's JIT; measured here it brings no "
                                           "reliable gain.", bool)

    def __post_init__(self) -> None:
        for name in ("image_height", "image_width"):
            if getattr(self, name) != MNIST_SIDE:
                raise ConfigError.of(name, f"must be {MNIST_SIDE}, got {getattr(self, name)!r}: MNIST's images "
                                           f"are {MNIST_SIDE} x {MNIST_SIDE} pixels, and the size comes from the data")
        if isinstance(self.hidden, list):  # JSON and checkpoints hold lists
            object.__setattr__(self, "hidden", tuple(self.hidden))
        for name in FIELDS:
            if name not in ("image_height", "image_width"):
                check_field(name, getattr(self, name))
        # What one field allows may depend on another: these checks come once every field is checked on its own.
        if self.jit and self.step != "trace":
            raise ConfigError.of("jit", "needs the training step trace: it compiles Pyro's Trace_ELBO, which the "
                                        "fused step does not run")

    @property
    def x_dim(self) -> int:
        """Number of pixels of one flattened image."""
        return self.image_height * self.image_width

    def objective(self) -> str:
        """What the run trains on where it is not the ELBO, in a few words; "" for the ELBO itself."""
        parts = [f"β = {self.beta:g}"] if self.beta != 1.0 else []
        if self.warmup:
            parts.append(f"KL warm-up over {self.warmup} epochs")
        if self.free_bits:
            parts.append(f"free bits of {self.free_bits:g} nats")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields, for checkpoints and JSON (hidden as a list)."""
        values = dataclasses.asdict(self)
        values["hidden"] = list(self.hidden)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Rebuild a config, refusing unknown fields by name; a run saved before a field existed gets its default,
        but for `step`: trace, the step it trained with."""
        values = dict(values)
        if "hidden_dim" in values and "hidden" not in values:  # saved when the network had one hidden layer
            values["hidden"] = (values.pop("hidden_dim"),)
        values.setdefault("step", STEP_BEFORE_CHOICE)  # it trained with Trace_ELBO: a resume must go on so
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
        return cls(**values)


FIELDS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in dataclasses.fields(Config)}
# Fields a resumed run may change: they do not alter the model (a lower lr rescues a diverged run).
RESUMABLE_OVERRIDES = ("epochs", "device", "jit", "lr")


def flag(name: str) -> str:
    """The `train` flag of a Config field: --batch-size for batch_size."""
    return "--" + name.replace("_", "-")


def train_flags(config: Config, names: Collection[str] | None = None) -> list[str]:
    """The `train` flags that set `config`'s fields `names` (default: every field the CLI takes)."""
    args: list[str] = []
    for name in names if names is not None else [n for n, spec in FIELDS.items() if spec.cli]:
        value = getattr(config, name)
        if FIELDS[name].kind is bool:
            args += [flag(name)] if value else []
        else:
            args += [flag(name), format_value(name, value)]
    return args


def parse_value(name: str, text: str) -> Any:
    """A field's value from text (a flag, a form): ConfigError names the field and what is allowed."""
    spec, text = FIELDS[name], str(text).strip()
    try:
        if spec.kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if spec.kind is tuple:
            return tuple(int(part) for part in text.split(","))  # int() refuses "" and takes " 200"
        if spec.kind is int:
            value = int(text)
            return None if name == "limit" and value == 0 else value
        if spec.kind is float:
            return float(text)
        return text
    except ValueError:
        noun = {bool: "true or false", int: "a whole number", float: "a number",
                tuple: "whole numbers of units separated by commas, such as 400 or 200,200"}[spec.kind]
        raise ConfigError.of(name, f"must be {noun}, got {text!r}") from None


def format_value(name: str, value: Any) -> str:
    """The text parse_value reads back as `value`: the job command's flags are made of it."""
    if FIELDS[name].kind is tuple:
        return ",".join(str(v) for v in value)
    if name == "limit" and value is None:
        return "0"  # 0 is "all images" in the CLI and the form alike
    return repr(value) if isinstance(value, float) else str(value)


def check_field(name: str, value: Any) -> None:
    """ConfigError unless `value` is one the field allows on its own (a form names every wrong field at once)."""
    if not (name == "limit" and value is None):  # None: all images
        _check(name, FIELDS[name], value)


def _check(name: str, spec: Spec, value: Any) -> None:
    if spec.choices:
        if value not in tuple(spec.choices):  # a tuple: an unhashable value (a list from JSON) is just not one
            raise ConfigError.of(name, f"must be one of {', '.join(spec.choices)}, got {value!r}")
    elif spec.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError.of(name, f"must be true or false, got {value!r}")
    elif spec.kind is tuple:
        if not isinstance(value, tuple) or not 1 <= len(value) <= MAX_LAYERS:
            raise ConfigError.of(name, f"must list 1 to {MAX_LAYERS} layers of units, such as 400 or 200,200; "
                                       f"got {value!r}")
        for units in value:
            _check_int(name, units, int(spec.low), int(spec.high), each=True)
    elif spec.kind is int:
        _check_int(name, value, int(spec.low), int(spec.high), why=spec.why)
    else:
        _check_float(name, value, spec)


def _check_float(name: str, value: Any, spec: Spec) -> None:
    """Above `low` (or at it, where the spec allows it) and at most `high`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError.of(name, f"must be a number, got {value!r}")
    low, high = spec.low, spec.high
    if spec.low_allowed:
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError.of(name, f"must be between {low:g} and {high:g}, got {value!r} ({spec.why})")
    elif not (math.isfinite(value) and low < value <= high):
        default = Config.__dataclass_fields__[name].default
        raise ConfigError.of(name, f"must be more than {low:g} and at most {high:g}, got {value!r} "
                                   f"(the tutorial's is {default:g})")


def _check_int(name: str, value: Any, low: int, high: int, each: bool = False, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError.of(name, f"must be {'whole numbers' if each else 'a whole number'}, got {value!r}")
    if not low <= value <= high:
        allowed = f"must have {low} to {high} units in each layer" if each else f"must be between {low} and {high}"
        raise ConfigError.of(name, f"{allowed}, got {value}" + (f" ({why})" if why else ""))
