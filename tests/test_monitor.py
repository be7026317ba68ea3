"""The trainer's writer (vae_core.monitor) and its stop flag while training: what the app reads (vae_core.runs)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import tiny_config
from vae_core import monitor, runs
from vae_core.train import Callbacks, fit, new_state


class _Watch(Callbacks):
    """Reads the preview the monitor wrote after each epoch."""

    def __init__(self, folder, inner: monitor.RunMonitor) -> None:
        self.folder, self.inner, self.seen = folder, inner, []

    def on_epoch_end(self, state) -> None:
        self.inner.on_epoch_end(state)
        self.seen.append(int(runs.read_preview(self.folder)["epochs_done"]))


def test_the_preview_digits_are_redrawn_after_every_epoch_not_only_test_epochs(tmp_path, small_mnist):
    state = new_state(tiny_config(epochs=3, test_every=100))  # tested after epochs 1 and 3 only
    watch = _Watch(tmp_path, monitor.RunMonitor(tmp_path, state, small_mnist.test_images))
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
