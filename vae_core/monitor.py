"""What a training process writes into its run folder for others to watch (the readers: vae_core.runs).

    from vae_core.monitor import RunMonitor
    monitor = RunMonitor(folder, state, test_images, test_labels, start_over=True)   # a new run
    monitor.on_epoch_end(state)                # the CLI's callbacks call it and on_batch
    monitor.record_frame(state)                # at a resume: the checkpoint's own frame, again
    monitor.finish("finished", "trained 3 epochs")

status.json, history.json and preview.npz are replaced atomically as training
goes (vae_core.runs names them and says what each holds), and after each tested
epoch a timeline frame (vae_core.timeline): the codes of its fixed subset of test
digits, KL per dimension and the active units over the whole test set. A frame
comes from the encoder's deterministic outputs and draws no random number, so
recording leaves the training RNG stream, the losses and exact resume as they
were. The previews and frames are made with torch, imported only in the training
process: the app imports nothing here.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vae_core import timeline
from vae_core.files import SaveError, atomic_write
from vae_core.runs import (HISTORY_FILE, PREVIEW_DIGITS, PREVIEW_FILE, PREVIEW_SAMPLES, PREVIEW_SEED, STATUS_FILE,
                           write_json)

if TYPE_CHECKING:
    import torch

    from vae_core.train import TrainState


def timeline_frame(vae, epoch: int, test_images: torch.Tensor, indices: np.ndarray,
                   labels: np.ndarray) -> timeline.Frame:
    """The frame of `vae` after `epoch` epochs: the codes of test digits `indices` (n,), of digits `labels`
    (n,), and KL per dimension and active units over all of `test_images` (n_test, ...)."""
    from vae_core import latent, objectives  # torch: only in the training process

    codes = latent.encode(vae, test_images)  # (n_test, z_dim) each: the encoder's outputs, no RNG drawn
    return timeline.Frame(epoch, codes.loc[indices], codes.scale[indices].mean(axis=1),
                          objectives.kl_per_dimension(codes.loc, codes.scale),
                          int(objectives.active_units(codes.loc).sum()), indices, labels)


class RunMonitor:
    """Writes status, history, previews and timeline frames into `folder` as training goes (the trainer's
    callbacks call it)."""

    def __init__(self, folder: Path, state: TrainState, test_images: torch.Tensor, test_labels: torch.Tensor,
                 start_over: bool = False, every_s: float = 0.5) -> None:
        """`test_images` (10,000, ...) and `test_labels` (10,000,): the test set the frames encode;
        `start_over`: a new run, whose first saved epoch removes any frames an overwritten run left."""
        self.folder = folder
        self.epochs = state.config.epochs
        self.preview_images = test_images[:PREVIEW_DIGITS]
        self.test_images = test_images
        self.indices = timeline.subset(np.asarray(test_labels))  # (2000,) the same digits in every run
        self.labels = np.asarray(test_labels)[self.indices]
        self.start_over = start_over
        self.frame_trouble = ""  # why a frame was not kept, said once
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
        if self.start_over:  # the new run's first epoch is saved: the overwritten run's frames are no longer its
            timeline.prune(self.folder, 0)
            self.start_over = False
        self.record_frame(state)
        self.status.update(epoch=state.epoch, batch=0)
        self._write_status()

    def record_frame(self, state: TrainState) -> None:
        """The timeline frame of `state.epoch`, if that epoch was tested; a frame the disk will not keep is
        said once (the status message, stderr) and training goes on."""
        tested = state.history.test_epochs
        if not (tested and tested[-1] == state.epoch - 1):
            return
        frame = timeline_frame(state.vae, state.epoch, self.test_images, self.indices, self.labels)
        try:
            timeline.write_frame(self.folder, frame)
        except SaveError as exc:
            if not self.frame_trouble:
                self.frame_trouble = (f"the timeline frame of epoch {state.epoch} was not kept ({exc.strerror}); "
                                      f"training goes on, and the Timeline view skips epochs without a frame")
                print(f"warning: {self.frame_trouble}", file=sys.stderr)
                self.status["message"] = self.frame_trouble

    def mapping(self, fraction: float) -> None:
        """Progress of the latent map computed after the last epoch, 0 to 1, for the Train page."""
        if time.time() - self.last_write >= self.every_s or fraction >= 1.0:
            self.status.update(map=fraction, eta_s=None)
            self._write_status()

    def finish(self, state: str, message: str = "") -> None:
        """Record how the run ended: finished, stopped or failed, with why."""
        self.status.pop("map", None)
        if self.frame_trouble:
            message = f"{message}; {self.frame_trouble}" if message else self.frame_trouble
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
