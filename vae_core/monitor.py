"""What a training process writes into its run folder for others to watch (the readers: vae_core.runs).

    from vae_core.monitor import RunMonitor
    monitor = RunMonitor(folder, state, test_images)   # the CLI's callbacks call its on_batch, on_epoch_end
    monitor.finish("finished", "trained 3 epochs")

status.json, history.json and preview.npz are replaced atomically as training
goes (vae_core.runs names them and says what each holds). The previews are
drawn with torch, imported only in the training process: the app imports
nothing here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vae_core.files import atomic_write
from vae_core.runs import (HISTORY_FILE, PREVIEW_DIGITS, PREVIEW_FILE, PREVIEW_SAMPLES, PREVIEW_SEED, STATUS_FILE,
                           write_json)

if TYPE_CHECKING:
    import torch

    from vae_core.train import TrainState


class RunMonitor:
    """Writes status, history and previews into `folder` as training goes (the trainer's callbacks call it)."""

    def __init__(self, folder: Path, state: TrainState, preview_images: torch.Tensor,
                 every_s: float = 0.5) -> None:
        self.folder = folder
        self.epochs = state.config.epochs
        self.preview_images = preview_images[:PREVIEW_DIGITS]
        self.every_s = every_s
        self.started = time.time()
        self.last_write = 0.0
        self.images_done = 0  # this session, for the speed
        self.epoch_images = 0
        self.status: dict[str, Any] = {"state": "running", "pid": os.getpid(), "started": self.started,
                                       "epoch": state.epoch, "epochs": self.epochs, "batch": 0, "batches": 0,
                                       "config": state.config.to_dict(),
                                       "images_per_s": None, "eta_s": None, "message": ""}
        self._write_status()
        write_json(folder / HISTORY_FILE, state.history.to_dict())
        self._write_preview(state)

    def on_batch(self, epoch: int, batch: int, n_batches: int, images: int, loss: float) -> None:
        self.epoch_images = images
        now = time.time()
        if now - self.last_write < self.every_s:
            return
        seen = self.images_done + images
        speed = seen / max(now - self.started, 1e-9)
        n_train = images * n_batches / (batch + 1)  # close enough before the last batch
        left = (self.epochs - epoch) * n_train - images
        self.status.update(epoch=epoch, batch=batch + 1, batches=n_batches, images_per_s=speed,
                           eta_s=left / speed if speed > 0 else None, loss=loss)
        self._write_status()

    def on_epoch_end(self, state: TrainState) -> None:
        self.images_done += self.epoch_images
        write_json(self.folder / HISTORY_FILE, state.history.to_dict())
        self._write_preview(state)  # 16 samples and 8 reconstructions: cheap beside an epoch
        self.status.update(epoch=state.epoch, batch=0)
        self._write_status()

    def mapping(self, fraction: float) -> None:
        """Progress of the latent map computed after the last epoch, 0 to 1, for the Train page."""
        if time.time() - self.last_write >= self.every_s or fraction >= 1.0:
            self.status.update(map=fraction, eta_s=None)
            self._write_status()

    def finish(self, state: str, message: str = "") -> None:
        """Record how the run ended: finished, stopped or failed, with why."""
        self.status.pop("map", None)
        self.status.update(state=state, message=message, eta_s=None, ended=time.time())
        self._write_status()

    def _write_status(self) -> None:
        self.last_write = time.time()
        self.status["updated"] = self.last_write
        write_json(self.folder / STATUS_FILE, self.status)

    def _write_preview(self, state: TrainState) -> None:
        from vae_core.analysis import prior_samples, reconstructions  # torch: only in the training process

        vae = state.vae
        was_training = vae.training
        vae.eval()
        rec = reconstructions(vae, self.preview_images, k=1, seed=PREVIEW_SEED)
        arrays = {"samples": prior_samples(vae, PREVIEW_SAMPLES, seed=PREVIEW_SEED).numpy(),
                  "originals": self.preview_images.reshape(rec.at_loc.shape).cpu().numpy(),
                  "reconstructions": rec.draws[:, 0].numpy(),
                  "epochs_done": np.array(state.epoch)}
        vae.train(was_training)
        atomic_write(self.folder / PREVIEW_FILE, lambda f: np.savez(f, **arrays))
