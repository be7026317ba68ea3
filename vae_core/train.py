"""The SVI loop: config + data + callbacks + stop flag -> history. No I/O.

    from vae_core.train import new_state, fit, Callbacks
    state = new_state(Config(epochs=3, limit=2000))
    history = fit(state, load_mnist(), callbacks=Callbacks(), should_stop=lambda: False)
    history.train_loss[0], history.test_loss[0]      # nats per image, as the tutorial prints

Losses are the negative ELBO per image (with beta != 1 the train loss weights its
KL term by beta, during a KL warm-up by kl_weight's share of beta, and with free
bits it floors each dimension's KL; the test loss is always the ELBO's): the
train loss of an epoch is the sum of the per-batch losses over the epoch divided
by the number of images (the weights change during the epoch, as in the
tutorial); the test loss is a one-sample estimate over the whole test set at
epoch 0, every `test_every` epochs and at the last epoch. Everything a resumed
run needs (weights, optimizer, history, epoch, RNG states) is in `TrainState`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from vae_core.adam import Adam
from vae_core.config import Config
from vae_core.errors import DeviceError, DivergedError
from vae_core.history import History  # torch-free, read by the app too; imported from here as well
from vae_core.data import MNISTTensors, batches
from vae_core import objectives
from vae_core.model import VAE


# Steps between reads of the losses from a GPU: each read waits for the device to finish its queued work.
CUDA_READBACK_STEPS = 25
# Training images the ELBO's parts are measured on at a test epoch: a fixed subset keeps the cost
# near that of the test pass (the whole training set would add about 2.5 s to every test epoch).
SPLIT_TRAIN_IMAGES = 10_000


@dataclass
class TrainState:
    config: Config
    vae: VAE
    optimizer: Adam
    history: History
    epoch: int  # epochs completed; the next one to run
    rng: dict[str, torch.Tensor]  # torch CPU RNG, shuffle generator, CUDA RNG when used
    # CPU threads the run trains with: kept, since some shapes' float sums round apart on another count
    threads: int | None = None


class Callbacks:
    """Hooks the trainer calls; subclass and override what you need."""

    def on_batch(self, epoch: int, batch: int, n_batches: int, images: int, loss: float) -> None:
        """After each step: `images` seen so far this epoch, `loss` per image of this batch."""

    def on_test(self, epoch: int, test_loss: float) -> None:
        """After each test-set evaluation."""

    def on_epoch_end(self, state: TrainState) -> None:
        """After each completed epoch (and its test, if any); a good moment to checkpoint."""


def resolve_device(name: str) -> torch.device:
    """torch.device for `name`, or a DeviceError that says what to do instead."""
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for, but this machine has no usable CUDA GPU "
                          "(torch.cuda.is_available() is False); use device 'cpu'.")
    return torch.device(name)


def new_state(config: Config) -> TrainState:
    """A fresh run: weights initialised from `config.seed`, Adam with the config's lr."""
    torch.manual_seed(config.seed)
    vae = VAE(config)
    shuffle = torch.Generator().manual_seed(config.seed)
    rng = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    return TrainState(config, vae, make_optimizer(vae, config), History(), 0, rng)


def make_optimizer(vae: VAE, config: Config) -> Adam:
    """Adam over the VAE's own parameters with the config's learning rate; torch's fused kernel for the fused step."""
    # pyro.optim.Adam({"lr": 1e-3}) of the tutorial is torch's Adam with default betas; vae_core.adam computes
    # exactly its steps without importing torch._dynamo (1.7 s of every training process's start).
    return Adam(vae.parameters(), lr=config.lr, fused=config.step == "fused")


def is_test_epoch(config: Config, epoch: int) -> bool:
    """True where the tutorial (and the last epoch) reports a test loss."""
    return epoch % config.test_every == 0 or epoch == config.epochs - 1


def kl_weight(config: Config, epoch: int) -> float:
    """The KL term's weight in 0-based `epoch`: beta, or during a warm-up of N epochs beta * (epoch + 1) / N
    (Bowman et al. 2016: beta/N in the first epoch, beta from epoch N on)."""
    if config.warmup == 0:
        return config.beta
    return config.beta * min(1.0, (epoch + 1) / config.warmup)


def fit(state: TrainState, data: MNISTTensors, callbacks: Callbacks | None = None,
        should_stop: Callable[[], bool] = lambda: False, readback_every: int | None = None) -> History:
    """Train from `state.epoch` to `config.epochs`; a stop abandons the current epoch.

    The losses are read back from the device every `readback_every` steps (default: every step on the CPU,
    where it costs nothing, and every CUDA_READBACK_STEPS on a GPU, where each read waits for the GPU to catch
    up); callbacks.on_batch then hears of those steps, and a non-finite loss among them is a DivergedError
    naming its step. Read back every step, a diverging step is caught before it changes the weights; read
    back later, the steps after it have been taken too, but neither they nor the epoch are ever saved.
    """
    cfg = state.config
    callbacks = callbacks or Callbacks()
    device = resolve_device(cfg.device)
    state.vae.to(device)
    _move_optimizer_state(state.optimizer, device)
    data = data.limit(cfg.limit).to(device)
    weight, loss_fn = None, None  # made again when a warm-up changes the weight (JitTrace_ELBO bakes it in)
    prepare = state.vae.likelihood.prepare  # binarized: fresh 0/1 pixels from the run's RNG at every use
    n_train = data.train_images.shape[0]
    n_batches = -(-n_train // cfg.batch_size)
    readback = readback_every or (CUDA_READBACK_STEPS if device.type == "cuda" else 1)
    shuffle = torch.Generator()
    _restore_rng(state.rng, shuffle, device)

    for epoch in range(state.epoch, cfg.epochs):
        start = time.perf_counter()
        if kl_weight(cfg, epoch) != weight:
            weight = kl_weight(cfg, epoch)
            loss_fn = objectives.training_loss(state.vae, weight, step=cfg.step, jit=cfg.jit, free_bits=cfg.free_bits)
        total, seen = 0.0, 0
        pending: list[tuple[int, int, torch.Tensor]] = []  # (step, images, loss) not yet read back
        for b, x in enumerate(batches(data.train_images, cfg.batch_size, shuffle)):
            if should_stop():
                return state.history
            state.optimizer.zero_grad(set_to_none=True)
            x = prepare(x)
            with _diverged_if_degenerate(state.vae, x, epoch + 1, b + 1):
                loss = loss_fn(x)  # summed over the batch, like SVI.step
            if readback == 1 and not math.isfinite(value := loss.item()):  # before it spoils the weights further
                raise DivergedError(epoch + 1, b + 1, value)
            loss.backward()
            state.optimizer.step()
            pending.append((b, x.shape[0], loss.detach()))
            if len(pending) == readback or b == n_batches - 1:
                values = torch.stack([loss for _, _, loss in pending]).tolist()  # one wait for the device
                for (step, images, _), value in zip(pending, values):
                    if not math.isfinite(value):
                        raise DivergedError(epoch + 1, step + 1, value)
                    total += value
                    seen += images
                    callbacks.on_batch(epoch, step, n_batches, seen, value / images)
                pending.clear()
        if not _all_finite(state.vae):  # the epoch's last step spoilt the weights: never test or save them
            raise DivergedError(epoch + 1, n_batches, float("nan"))
        with _diverged_if_degenerate(state.vae, data.test_images, epoch + 1, n_batches):
            test_loss = (objectives.test_loss(state.vae, data.test_images, cfg.batch_size, seed=cfg.seed + epoch)
                         if is_test_epoch(cfg, epoch) else None)
        state.history.train_loss.append(total / n_train)
        if test_loss is not None:
            state.history.test_epochs.append(epoch)
            state.history.test_loss.append(test_loss)
            _record_split(state, data, epoch)
            callbacks.on_test(epoch, test_loss)
        state.history.epoch_seconds.append(time.perf_counter() - start)
        state.epoch = epoch + 1
        state.rng = _capture_rng(shuffle, device)
        callbacks.on_epoch_end(state)
    return state.history


def _record_split(state: TrainState, data: MNISTTensors, epoch: int) -> None:
    """The ELBO's two parts on the training and the test images, into the history."""
    h, cfg = state.history, state.config
    h.split_epochs.append(epoch)
    for images, reconstruction, kl in ((data.train_images[:SPLIT_TRAIN_IMAGES], h.train_reconstruction, h.train_kl),
                                       (data.test_images, h.test_reconstruction, h.test_kl)):
        parts = objectives.mean_parts(state.vae, images, cfg.batch_size * 8, seed=cfg.seed + epoch)
        reconstruction.append(parts[0])
        kl.append(parts[1])


# The test loss fit reports at a test epoch: one-sample -ELBO per image (the estimator lives with the others).
def _all_finite(vae: VAE) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in vae.parameters())


@contextlib.contextmanager
def _diverged_if_degenerate(vae: VAE, x: torch.Tensor, epoch: int, step: int) -> Iterator[None]:
    """A ValueError inside the block becomes DivergedError when the weights, or the codes they give `x`, are
    no longer usable numbers; any other ValueError (a bug) passes as it is.

    At a high learning rate a step can leave finite weights whose log-scales are in the hundreds:
    exp() then gives z_scale 0 or inf, and Pyro's check of Normal(z_loc, z_scale) raises before
    any loss exists to be seen as NaN (seen at lr 0.1 to 1).
    """
    try:
        yield
    except ValueError as exc:
        if not _degenerate(vae, x):
            raise
        raise DivergedError(epoch, step, float("nan")) from exc


@torch.no_grad()
def _degenerate(vae: VAE, x: torch.Tensor) -> bool:
    """True when the weights are not finite, or the guide's codes of `x` are not (or a scale is not above 0)."""
    if not _all_finite(vae):
        return True
    z_loc, z_scale = vae.encoder(x)  # (B, z_dim) each
    return not bool(torch.isfinite(z_loc).all() and torch.isfinite(z_scale).all() and (z_scale > 0).all())


def _capture_rng(shuffle: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    rng = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def _restore_rng(rng: dict[str, torch.Tensor], shuffle: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    shuffle.set_state(rng["shuffle"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def _move_optimizer_state(optimizer: Adam, device: torch.device) -> None:
    for per_param in optimizer.state.values():
        for key, value in per_param.items():
            # Adam's `step` counter stays on the CPU unless capturable.
            if torch.is_tensor(value) and key != "step":
                per_param[key] = value.to(device)
