"""The timeline's animation as a GIF (vae_core.timeline_gif), drawn from real recorded frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.timeline_frames import THREE_EPOCHS, record
from ui.figures import DIGIT_COLOURS
from vae_core import timeline, timeline_gif, timeline_maps


@pytest.fixture(scope="module")
def gif(tmp_path_factory, mnist) -> tuple[timeline.Timeline, bytes]:
    """A real run's 3 recorded frames and their PCA maps as a GIF."""
    folder = tmp_path_factory.mktemp("recorded") / "run"
    record(folder, mnist, THREE_EPOCHS)
    line = timeline.read_timeline(folder)
    return line, timeline_gif.animation(timeline_maps.pca_frames(line.loc), line.labels, line.epochs,
                                        [-200.0, None, -150.0], "run", DIGIT_COLOURS, "PCA")


def test_the_gif_is_an_animation_of_one_frame_per_recorded_epoch(gif):
    line, data = gif
    image = Image.open(io.BytesIO(data))
    assert image.format == "GIF" and image.is_animated
    assert image.n_frames == len(line.epochs)


def test_the_gif_frames_show_the_points_moving(gif):
    _, data = gif
    image = Image.open(io.BytesIO(data))
    frames = []
    for k in range(image.n_frames):
        image.seek(k)
        frames.append(np.asarray(image.convert("RGB"), dtype=np.int16))
    assert all(np.abs(a - b).sum() > 0 for a, b in zip(frames[:-1], frames[1:]))


def test_the_gif_colours_points_by_digit(gif):
    _, data = gif
    image = Image.open(io.BytesIO(data))
    image.seek(image.n_frames - 1)
    colours = {tuple(c) for c in np.asarray(image.convert("RGB")).reshape(-1, 3)}
    wanted = {tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5)) for hex_ in DIGIT_COLOURS}
    assert wanted <= colours
