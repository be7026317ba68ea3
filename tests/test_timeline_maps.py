"""Maps of a timeline that stay continuous across epochs (vae_core.timeline_maps), on real recorded frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.timeline_frames import THREE_EPOCHS, record
from vae_core import timeline, timeline_maps
from vae_core.objectives import Cancelled

EVERY = 7  # every 7th digit of the 2,000: 286 points, a T-SNE of under a second


@pytest.fixture(scope="module")
def line(tmp_path_factory, mnist) -> timeline.Timeline:
    """The frames of a real run recorded after each of 3 short epochs."""
    folder = tmp_path_factory.mktemp("recorded") / "run"
    record(folder, mnist, THREE_EPOCHS)
    return timeline.read_timeline(folder)


def test_pca_frames_give_each_epoch_two_coordinates_per_digit(line):
    assert timeline_maps.pca_frames(line.loc).shape == (3, 10 * timeline.PER_DIGIT, 2)


def test_pca_frames_project_every_epoch_on_the_same_axes(line):
    together = timeline_maps.pca_frames(line.loc)
    again = timeline_maps.pca_frames(np.concatenate([line.loc, line.loc[-1:]]))  # the last epoch twice
    np.testing.assert_allclose(again[-1], again[-2], atol=1e-5)  # one projection: the same codes, the same points
    assert together.shape[0] + 1 == again.shape[0]


def test_aligned_tsne_moves_points_less_between_epochs_than_independent_maps(line):
    loc = line.loc[:, ::EVERY]
    aligned = timeline_maps.aligned_tsne(loc)
    independent = timeline_maps.independent_tsne(loc)
    assert aligned.shape == independent.shape == (3, loc.shape[1], 2)
    assert timeline_maps.mean_displacement(aligned) < timeline_maps.mean_displacement(independent)


def test_aligned_tsne_stops_when_asked(line):
    reports = []
    with pytest.raises(Cancelled):
        timeline_maps.aligned_tsne(line.loc[:, ::EVERY], progress=reports.append, should_stop=lambda: bool(reports))
    assert len(reports) == 1  # it stopped at the first check after its first report


def test_a_map_that_only_shifts_and_grows_has_no_displacement(line):
    xy = timeline_maps.pca_frames(line.loc)[-1]
    assert timeline_maps.mean_displacement(np.stack([xy, 3 * xy + 5])) == pytest.approx(0.0, abs=1e-4)
    assert timeline_maps.mean_displacement(np.stack([xy, xy[::-1]])) > 0.5  # the same cloud, its points swapped
