"""What a training process leaves in its run folder for the app: previews, stop requests."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.conftest import tiny_config
from vae_core import monitor
from vae_core.train import Callbacks, fit, new_state


class _Watch(Callbacks):
    """Reads the preview the monitor wrote after each epoch."""

    def __init__(self, folder, inner: monitor.RunMonitor) -> None:
        self.folder, self.inner, self.seen = folder, inner, []

    def on_epoch_end(self, state) -> None:
        self.inner.on_epoch_end(state)
        self.seen.append(int(monitor.read_preview(self.folder)["epochs_done"]))


def test_the_preview_digits_are_redrawn_after_every_epoch_not_only_test_epochs(tmp_path, small_mnist):
    state = new_state(tiny_config(epochs=3, test_every=100))  # tested after epochs 1 and 3 only
    watch = _Watch(tmp_path, monitor.RunMonitor(tmp_path, state, small_mnist.test_images))
    fit(state, small_mnist, callbacks=watch)
    assert watch.seen == [1, 2, 3]


def test_an_old_preview_counting_from_0_reads_as_epochs_done(tmp_path):
    np.savez(tmp_path / monitor.PREVIEW_FILE, samples=np.zeros((16, 28, 28)), originals=np.zeros((8, 28, 28)),
             reconstructions=np.zeros((8, 28, 28)), epoch=np.array(99))
    assert monitor.read_preview(tmp_path)["epochs_done"] == 100


def test_a_stop_request_is_for_one_process_and_stays_seen(tmp_path):
    flag = monitor.StopRequest(tmp_path)
    assert not flag()
    monitor.request_stop(tmp_path, pid=os.getpid() + 1)  # another process's request
    assert not flag()
    monitor.request_stop(tmp_path, pid=os.getpid())
    assert flag()
    monitor.clear_stop(tmp_path)
    assert flag()  # a stop once seen is not taken back


class _StopDuring(Callbacks):
    """Presses Stop (writes the request) at one moment of the first epoch."""

    def __init__(self, folder, moment: str) -> None:
        self.folder, self.moment = folder, moment

    def on_test(self, epoch: int, test_loss: float) -> None:
        if self.moment == "test pass":
            monitor.request_stop(self.folder, os.getpid())

    def on_epoch_end(self, state) -> None:
        if self.moment == "checkpoint write":
            monitor.request_stop(self.folder, os.getpid())


@pytest.mark.parametrize("moment", ["test pass", "checkpoint write"])
def test_a_stop_pressed_during_a_test_pass_or_a_checkpoint_write_stops_before_the_next_step(
        tmp_path, small_mnist, moment):
    state = new_state(tiny_config(epochs=3, test_every=1))
    fit(state, small_mnist, callbacks=_StopDuring(tmp_path, moment), should_stop=monitor.StopRequest(tmp_path))
    assert state.epoch == 1 and len(state.history.train_loss) == 1  # the finished epoch is kept


def _preview(**arrays) -> dict:
    """A preview as the trainer writes it, with `arrays` in place of its own."""
    return {"samples": np.zeros((16, 28, 28), np.float32), "originals": np.zeros((8, 28, 28), np.float32),
            "reconstructions": np.zeros((8, 28, 28), np.float32), "epochs_done": np.array(3), **arrays}


@pytest.mark.parametrize("case, arrays", [
    ("string samples", {"samples": np.full((16, 28, 28), "7")}),
    ("20,000 samples", {"samples": np.zeros((20_000, 28, 28), np.float32)}),
    ("64 MB of zeros beside the arrays", {"padding": np.zeros(64 << 20, np.uint8)}),
])
def test_a_preview_of_the_wrong_shape_dtype_or_size_is_no_preview_and_is_not_decompressed(tmp_path, case, arrays):
    import tracemalloc

    np.savez_compressed(tmp_path / monitor.PREVIEW_FILE, **_preview(**arrays))
    tracemalloc.start()
    try:
        assert monitor.read_preview(tmp_path) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # bytes: judged from the archive's entry sizes and array headers, never expanded
