"""What a checkpoint of a config weighs, counted without building the model (no torch).

    from vae_core.sizes import parameter_count, checkpoint_bytes
    parameter_count(Config())        # 688,884 weights and biases: the tutorial's VAE
    checkpoint_bytes(Config())       # (fewest, most) bytes its checkpoint.pt may take

The app estimates a run's memory from these (vae_core.memory), vae_core.checkpoint
refuses a file far larger than its config allows before reading it, and a
run.json is trusted only while what it says fits the checkpoint (plausible).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from vae_core.config import Config
from vae_core.likelihoods import LIKELIHOODS

# Nats per image a listed loss may take: the untrained tutorial model starts near 543, no likelihood here
# scores an image much above 784 x ln(255 / sqrt(2 pi)) = 3,600 nats (the Gaussian's scale is at least
# 1/255), and even a beta of 1,000 on a poor code stays well inside; a run.json beyond names no real run.
_LOSS_RANGE = (-1e5, 1e7)
# Bytes a checkpoint holds beyond its float32 weights and Adam's two moments: the pickled config and
# history (about 1 MB at 10,000 epochs), RNG states and the archive's records.
_CHECKPOINT_SLACK = 16 << 20
# The pickled record holds each epoch's train loss and seconds: 2 bytes each at the least (a small int;
# a float takes 9), so its size bounds the epochs a checkpoint can have run.
_RECORD_BYTES_PER_EPOCH = 4


def parameter_count(config: Config) -> int:
    """Weights and biases of the VAE `config` describes, counted without building it (torch-free)."""
    x, z, sizes = config.x_dim, config.z_dim, list(config.hidden)

    def stack(widths: list[int]) -> int:  # Linear layers from widths[0] through widths[-1]
        return sum(a * b + b for a, b in zip(widths, widths[1:]))

    return (stack([x, *sizes]) + 2 * (sizes[-1] * z + z)  # encoder, and its z_loc and z_scale heads
            + stack([z, *reversed(sizes), x])  # decoder
            + LIKELIHOODS[config.likelihood].weights(x))  # the likelihood's own (the Gaussian's scales)


def checkpoint_bytes(config: Config) -> tuple[int, int]:
    """The fewest and most bytes a checkpoint of `config` takes: its float32 weights alone (saved before a
    first step) up to the weights and Adam's two moments, plus the slack its history and records need."""
    n = parameter_count(config)
    return 4 * n, 3 * 4 * n + _CHECKPOINT_SLACK


def _record_bytes(path: Path) -> int:
    """Size of the checkpoint's pickled record (config, history, epoch), from its zip directory alone."""
    with zipfile.ZipFile(path) as archive:  # reads the directory at the file's end, not the tensors
        return next(item.file_size for item in archive.infolist() if item.filename.endswith("/data.pkl"))


def plausible(config: Config, epoch: Any, losses: tuple[Any, ...], path: Path, size: int) -> bool:
    """Whether what a run.json says could be true of the checkpoint at `path`, of `size` bytes: else the
    checkpoint itself is read (a run.json can name the file's size, mtime and hash and still lie)."""
    least, most = checkpoint_bytes(config)
    return (isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= config.epochs
            and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and _LOSS_RANGE[0] <= v <= _LOSS_RANGE[1]) for v in losses)  # NaN fails
            and least <= size <= most and _record_bytes(path) >= _RECORD_BYTES_PER_EPOCH * epoch)
