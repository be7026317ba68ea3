"""The trainer's writer (vae_core.monitor) and its stop flag while training: what the app reads (vae_core.runs)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from vae_core import latent, monitor, objectives, runs, timeline
from vae_core.files import SaveError
from vae_core.train import Callbacks, fit, new_state


class _Watch(Callbacks):
    """Reads the preview the monitor wrote after each epoch."""

    def __init__(self, folder, inner: monitor.RunMonitor) -> None:
        self.folder, self.inner, self.seen = folder, inner, []

    def on_epoch_end(self, state) -> None:
        self.inner.on_epoch_end(state)
        self.seen.append(int(runs.read_preview(self.folder)["epochs_done"]))


def test_the_preview_digits_are_redrawn_after_every_epoch_not_only_test_epochs(tmp_path, small_mnist, mnist):
    state = new_state(tiny_config(epochs=3, test_every=100))  # tested after epochs 1 and 3 only
    watch = _Watch(tmp_path, monitor.RunMonitor(tmp_path, state, mnist.test_images, mnist.test_labels))
    fit(state, small_mnist, callbacks=watch)
    assert watch.seen == [1, 2, 3]


class _StopDuring(Callbacks):
    """Presses Stop (writes the request) at one moment of the first epoch."""

    def __init__(self, folder, moment: str) -> None:
        self.folder, self.moment = folder, moment

    def on_test(self, epoch: int, test_loss: float) -> None:
        if self.moment == "test pass":
            runs.request_stop(self.folder, os.getpid())

    def on_epoch_end(self, state) -> None:
        if self.moment == "checkpoint write":
            runs.request_stop(self.folder, os.getpid())


@pytest.mark.parametrize("moment", ["test pass", "checkpoint write"])
def test_a_stop_pressed_during_a_test_pass_or_a_checkpoint_write_stops_before_the_next_step(
        tmp_path, small_mnist, moment):
    state = new_state(tiny_config(epochs=3, test_every=1))
    fit(state, small_mnist, callbacks=_StopDuring(tmp_path, moment), should_stop=runs.StopRequest(tmp_path))
    assert state.epoch == 1 and len(state.history.train_loss) == 1  # the finished epoch is kept


class _Monitored(Callbacks):
    """The monitor's share of the CLI's callbacks, without the checkpoint."""

    def __init__(self, inner: monitor.RunMonitor) -> None:
        self.inner = inner

    def on_epoch_end(self, state) -> None:
        self.inner.on_epoch_end(state)


def _train(folder, mnist, small_mnist, **config):
    """A short run on 1,024 digits, its monitor encoding the whole test set into `folder`'s timeline."""
    state = new_state(tiny_config(**config))
    fit(state, small_mnist, callbacks=_Monitored(monitor.RunMonitor(folder, state, mnist.test_images,
                                                                    mnist.test_labels, start_over=True)))
    return state


def test_each_tested_epoch_leaves_a_timeline_frame_of_the_encoders_codes(tmp_path, small_mnist, mnist):
    state = _train(tmp_path, mnist, small_mnist, epochs=3, test_every=2)  # tested after epochs 1 and 3
    line = timeline.read_timeline(tmp_path)
    assert line.epochs.tolist() == [1, 3] and line.loc.shape == (2, 2000, 50) and line.kl.shape == (2, 50)
    codes = latent.encode(state.vae, mnist.test_images)  # the final weights: the last frame's
    indices = timeline.subset(mnist.test_labels.numpy())
    assert np.array_equal(line.indices, indices) and np.array_equal(line.labels, mnist.test_labels.numpy()[indices])
    assert np.array_equal(line.loc[-1], codes.loc[indices].astype(np.float16).astype(np.float32))
    assert np.array_equal(line.scale[-1], codes.scale[indices].mean(axis=1).astype(np.float16).astype(np.float32))
    assert np.array_equal(line.kl[-1], objectives.kl_per_dimension(codes.loc, codes.scale).astype(np.float32))
    assert line.active[-1] == objectives.active_units(codes.loc).sum()


def test_recording_frames_leaves_the_losses_and_weights_as_an_unrecorded_run(tmp_path, small_mnist, mnist, trained):
    state = _train(tmp_path, mnist, small_mnist, epochs=3)  # the `trained` run's settings, a frame every epoch
    assert timeline.frame_epochs(tmp_path) == [1, 2, 3]
    assert state.history.train_loss == trained.history.train_loss
    assert state.history.test_loss == trained.history.test_loss
    for a, b in zip(state.vae.parameters(), trained.vae.parameters()):
        assert torch.equal(a, b)


def test_a_new_run_removes_an_older_runs_frames_once_it_has_saved_an_epoch(tmp_path, small_mnist, mnist):
    _train(tmp_path, mnist, small_mnist, epochs=3, test_every=1)  # the old run: frames 1, 2, 3
    state = new_state(tiny_config(epochs=1, seed=1))
    new = monitor.RunMonitor(tmp_path, state, mnist.test_images, mnist.test_labels, start_over=True)
    old = timeline.read_timeline(tmp_path)
    assert old.epochs.tolist() == [1, 2, 3]  # kept while the old run can still come back (no epoch saved yet)
    fit(state, small_mnist, callbacks=_Monitored(new))
    line = timeline.read_timeline(tmp_path)
    assert line.epochs.tolist() == [1] and not np.array_equal(line.loc[0], old.loc[0])


def test_a_frame_the_disk_will_not_keep_is_said_once_and_training_goes_on(tmp_path, small_mnist, mnist,
                                                                           monkeypatch, capsys):
    def full_disk(folder, frame):
        path = timeline.frame_path(folder, frame.epoch)
        raise SaveError(errno.ENOSPC, f"no space left on device while saving {path}")

    monkeypatch.setattr(timeline, "write_frame", full_disk)
    state = new_state(tiny_config(epochs=2))
    watch = monitor.RunMonitor(tmp_path, state, mnist.test_images, mnist.test_labels)
    fit(state, small_mnist, callbacks=_Monitored(watch))
    watch.finish("finished", "trained 2 epochs")
    assert state.epoch == 2 and timeline.frame_epochs(tmp_path) == []
    message = runs.read_status(tmp_path)["message"]
    assert message.startswith("trained 2 epochs; the timeline frame of epoch 1 was not kept (no space left on device")
    assert capsys.readouterr().err.count("was not kept") == 1
