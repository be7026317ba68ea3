"""A timeline's maps as an animated GIF to share: the points coloured by digit, the run, epoch and ELBO written in.

    from vae_core import timeline_gif
    data = timeline_gif.animation(xy, labels, epochs, elbos, run="tutorial", colours=DIGIT_COLOURS)  # GIF bytes
    Image.open(io.BytesIO(data)).n_frames == len(epochs)

Drawn with Pillow alone, point by point, on axes fixed over all frames, so that
a point's motion in the GIF is its motion on the map. No torch, no Plotly.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 480  # pixels per side of each frame
BAND = 44  # pixels of the text band over the map
FRAME_MS = 450  # each epoch on screen, milliseconds
LAST_MS = 1500  # the last epoch stays longer before the animation loops
RADIUS = 1.6  # a point's radius in pixels: 2,000 points stay apart on 480 pixels


def animation(xy: np.ndarray, labels: np.ndarray, epochs: np.ndarray, elbos: list[float | None], run: str,
              colours: tuple[str, ...], method: str = "", size: int = SIZE) -> bytes:
    """An animated GIF of the maps `xy` (T, n, 2) at `epochs` (T,), point i coloured by colours[labels[i]], each
    frame titled with the run, its epoch and ELBO (`elbos`, (T,), None where unknown) and `method`; the bytes."""
    if len(xy) == 0:
        raise ValueError("there are no frames to animate")
    frames = [_frame(points, labels, frame_title(run, int(epoch), elbo, method), colours, _scale(xy, size), size)
              for points, epoch, elbo in zip(xy, epochs, elbos)]
    out = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_MS]
    # Each frame whole (disposal 1, no optimisation): Pillow would otherwise merge frames that look alike,
    # and a reader would count fewer frames than epochs.
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   disposal=1, optimize=False)
    return out.getvalue()


def frame_title(run: str, epoch: int, elbo: float | None, method: str = "") -> str:
    """The text over one frame (the Timeline's maps are titled alike)."""
    figure = f" · ELBO {elbo:.1f}" if elbo is not None else ""
    return f"run {run} · epoch {epoch}{figure}" + (f"\n{method}" if method else "")


def _scale(xy: np.ndarray, size: int):
    """A function mapping points (n, 2) to pixels of the map area under the text band, the same for every frame."""
    flat = xy.reshape(-1, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    span = float((high - low).max()) or 1.0  # one scale for both axes: the map keeps its shape
    centre = (low + high) / 2
    side = size - BAND - 8  # the map's square, 8 pixels off the bottom
    middle = np.array([size / 2, BAND + side / 2])

    def to_pixels(points: np.ndarray) -> np.ndarray:
        unit = (points - centre) / span * np.array([1.0, -1.0])  # within [-0.5, 0.5]; pixel rows grow downwards
        return middle + unit * side

    return to_pixels


def _frame(points: np.ndarray, labels: np.ndarray, title: str, colours: tuple[str, ...], to_pixels,
           size: int) -> Image.Image:
    """One frame: a white square, the title at its top, the points drawn digit by digit."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.multiline_text((10, 6), title, fill="black", font=ImageFont.load_default(size=15), spacing=4)
    pixels = to_pixels(points)
    order = np.random.default_rng(0).permutation(len(points))  # no digit always drawn over the others
    for (x, y), digit in zip(pixels[order], labels[order]):
        draw.ellipse((x - RADIUS, y - RADIUS, x + RADIUS, y + RADIUS), fill=colours[int(digit)])
    return image
