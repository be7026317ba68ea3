"""vae_core.timeline: the fixed subset, frames written and read back, pruned, and damaged ones skipped."""

import numpy as np
import pytest

from vae_core import timeline
from vae_core.timeline import Frame


def _frame(epoch: int, z_dim: int = 5, n: int = 20) -> Frame:
    rng = np.random.default_rng(epoch)
    return Frame(epoch, rng.normal(size=(n, z_dim)), rng.uniform(0.1, 1, n), rng.uniform(0, 3, z_dim),
                 int(epoch % z_dim), np.arange(n) * 3, np.arange(n) % 10)


def test_the_subset_holds_200_of_each_digit_and_is_the_same_every_time(mnist):
    labels = mnist.test_labels.numpy()
    picked = timeline.subset(labels)
    assert picked.shape == (2000,) and np.all(np.diff(picked) > 0)
    assert np.bincount(labels[picked]).tolist() == [200] * 10
    assert np.array_equal(picked, timeline.subset(labels.copy()))


def test_frames_are_read_back_in_epoch_order_as_written(tmp_path):
    for epoch in (10, 1, 5):
        timeline.write_frame(tmp_path, _frame(epoch))
    line = timeline.read_timeline(tmp_path)
    assert line.epochs.tolist() == [1, 5, 10] and line.loc.shape == (3, 20, 5) and line.z_dim == 5
    first = _frame(1)
    assert np.allclose(line.loc[0], first.loc, atol=2e-3)  # float16 on disk
    assert np.allclose(line.kl[0], first.kl) and line.active.tolist() == [1, 0, 0]
    assert line.labels.tolist() == first.labels.tolist() and line.skipped == ()


def test_prune_keeps_the_frames_up_to_a_checkpoints_epoch_and_a_new_start_removes_all(tmp_path):
    for epoch in (1, 5, 10):
        timeline.write_frame(tmp_path, _frame(epoch))
    timeline.prune(tmp_path, after=5)
    assert timeline.frame_epochs(tmp_path) == [1, 5]
    timeline.prune(tmp_path, after=0)
    assert timeline.frame_epochs(tmp_path) == [] and timeline.read_timeline(tmp_path) is None


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "another latent size", "epoch mismatch"])
def test_a_damaged_or_foreign_frame_is_skipped_and_named(tmp_path, damage):
    for epoch in (1, 5, 10):
        timeline.write_frame(tmp_path, _frame(epoch))
    path = timeline.frame_path(tmp_path, 5)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "not a zip":
        path.write_text("hello")
    elif damage == "another latent size":
        timeline.write_frame(tmp_path, _frame(5, z_dim=7))
    else:
        timeline.write_frame(tmp_path, _frame(6))
        timeline.frame_path(tmp_path, 6).rename(path)
    line = timeline.read_timeline(tmp_path)
    assert line.epochs.tolist() == [1, 10]
    assert len(line.skipped) == 1 and line.skipped[0].startswith("epoch-0005.npz: ")
