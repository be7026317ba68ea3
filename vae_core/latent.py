"""Taking the latent space apart: codes and their spread, neighbours, paths, traversals, 2-D maps, drawn digits.

    from vae_core import latent
    codes = latent.encode(vae, mnist.test_images)          # loc, scale: (10000, z_dim) float32
    idx, dist = latent.neighbours(codes.loc, codes.loc[7], k=8, exclude=7)   # (8,) int64, (8,) float32
    z = latent.path(codes.loc[3], codes.loc[7], steps=16, kind="slerp")      # (16, z_dim)
    z = latent.traversal(codes.loc[3], np.eye(z_dim)[:5], np.linspace(-3, 3, 9))   # (5, 9, z_dim)
    xy, method = latent.map_points(codes.loc, tsne)        # (10000, 2): z_loc, T-SNE (None: not made) or PCA
    x = latent.mnist_style(ink)                            # (28, 28) float32 in [0, 1], as MNIST was made

Every function takes and returns numpy arrays, draws nothing and touches no process-wide state; decode codes with
`analysis.decode`, and see vae_core.objectives for their KL and active units. Distances are Euclidean between
z_loc vectors.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vae_core.config import MNIST_SIDE
from vae_core.model import VAE

PATH_KINDS = ("linear", "slerp")
MEANS_NAME, SCALES_NAME = "test-means", "test-scales"  # cache names of the test set's codes: z_loc, z_scale
MAP_METHODS = ("z_loc", "T-SNE", "PCA")  # what a map of the codes shows, as map_points names it
# How MNIST was made (LeCun et al.): each digit scaled to fit a 20 x 20 box, keeping its
# aspect ratio, then centred by its centre of mass in the 28 x 28 image.
DIGIT_BOX = 20
MAX_UPLOAD_BYTES = 5 * 2**20
MAX_UPLOAD_SIDE = 4096  # pixels: a larger picture of one digit is a mistake, or a decompression bomb


@dataclass(frozen=True)
class Codes:
    """The guide's q(z | x) for each image: its mean and standard deviation, both (n, z_dim)."""
    loc: np.ndarray
    scale: np.ndarray


@torch.no_grad()
def encode(vae: VAE, images: torch.Tensor, batch_size: int = 2048) -> Codes:
    """z_loc and z_scale of every image (any shape with n first), in batches."""
    x = images.reshape(images.shape[0], -1)
    device = next(vae.parameters()).device
    parts = [vae.encoder(x[i:i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)]
    return Codes(torch.cat([p[0] for p in parts]).cpu().numpy(), torch.cat([p[1] for p in parts]).cpu().numpy())


def neighbours(loc: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of `loc` (n, z_dim) nearest to `query` (z_dim,), nearest first, leaving out row `exclude`."""
    available = loc.shape[0] - (exclude is not None)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available}, got {k}")
    dist = np.linalg.norm(loc - query.reshape(1, -1), axis=1)  # (n,)
    if exclude is not None:
        dist[exclude] = np.inf
    nearest = np.argpartition(dist, k - 1)[:k]
    order = nearest[np.argsort(dist[nearest], kind="stable")]
    return order.astype(np.int64), dist[order].astype(np.float32)


def path(z_a: np.ndarray, z_b: np.ndarray, steps: int, kind: str = "linear") -> np.ndarray:
    """`steps` codes from z_a to z_b, both ends included; shape (steps, z_dim).

    "linear" walks the straight line. "slerp" walks the great circle (White 2016,
    "Sampling Generative Networks"), which keeps the norm near that of the ends: a
    straight line between two typical prior draws passes through the unlikely
    region near the origin.
    """
    if kind not in PATH_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PATH_KINDS)}, got {kind!r}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends), got {steps}")
    a, b = np.asarray(z_a, np.float64).ravel(), np.asarray(z_b, np.float64).ravel()
    t = np.linspace(0.0, 1.0, steps)[:, None]  # (steps, 1)
    cos = a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if kind == "linear" or np.sin(omega) < 1e-6:  # parallel ends: the circle is the line
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def traversal(z: np.ndarray, directions: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes with their component along each unit direction set to each value; shape (rows, values, z_dim).

    With the coordinate axes as directions, row d holds z with z[d] replaced by each value.
    """
    z = np.asarray(z, np.float32).ravel()
    u = np.asarray(directions, np.float32)  # (rows, z_dim), unit rows
    v = np.asarray(values, np.float32)  # (values,)
    along = u @ z  # (rows,): where z sits along each direction now
    return z + (v[None, :, None] - along[:, None, None]) * u[:, None, :]


def principal_directions(loc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` leading principal directions of the codes, (k, z_dim) unit rows, and each one's variance (k,)."""
    if not 1 <= k <= min(loc.shape):
        raise ValueError(f"k must be between 1 and {min(loc.shape)}, got {k}")
    centred = loc.astype(np.float64) - loc.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:k].astype(np.float32), (s[:k] ** 2 / (loc.shape[0] - 1)).astype(np.float32)


def pca_2d(points: np.ndarray) -> np.ndarray:
    """Projection of `points` (n, d) on their two leading principal axes; shape (n, 2), float32."""
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def map_points(loc: np.ndarray, tsne: np.ndarray | None) -> tuple[np.ndarray, str]:
    """The 2-D map of the codes `loc` (n, z_dim) and its method, one of MAP_METHODS: 2-d codes as they are (each
    coordinate as its prior quantile), else the T-SNE map `tsne` (n, 2) when one is kept, else PCA (instant)."""
    if loc.shape[1] == 2:
        return prior_quantiles(loc), "z_loc"
    return (tsne, "T-SNE") if tsne is not None else (pca_2d(loc), "PCA")


def prior_grid(n: int, low: float = 0.05, high: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """For a 2-d latent space: codes at an n x n grid of the prior's quantiles (Kingma & Welling 2013,
    Fig. 4), shape (n, n, 2), row 0 at the top (z_2's highest quantile), and the quantiles (n,) themselves."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    q = np.linspace(low, high, n)
    z = torch.distributions.Normal(0.0, 1.0).icdf(torch.from_numpy(q)).numpy()  # (n,) prior quantiles
    z1, z2 = np.meshgrid(z, z[::-1])  # columns: z_1 rising; rows: z_2 falling, as an image is drawn
    return np.stack([z1, z2], axis=-1).astype(np.float32), q


def prior_quantiles(z: np.ndarray) -> np.ndarray:
    """Each coordinate of the codes `z` (..., d) as its quantile under the prior N(0, 1), in (0, 1)."""
    return torch.distributions.Normal(0.0, 1.0).cdf(torch.from_numpy(np.asarray(z, np.float64))).numpy()


def place(loc: np.ndarray, xy: np.ndarray, queries: np.ndarray, k: int = 8) -> np.ndarray:
    """Where new codes (m, z_dim) fall on a 2-D map `xy` (n, 2) of `loc` (n, z_dim): the mean map
    position of each one's `k` nearest codes; shape (m, 2)."""
    return np.stack([xy[neighbours(loc, q, k)[0]].mean(axis=0) for q in np.atleast_2d(queries)])


def mnist_style(ink: np.ndarray) -> np.ndarray:
    """A drawing as MNIST's digits were made; `ink` (H, W) in [0, 1], 1 where drawn. Shape (28, 28), float32.

    Crops to the ink's bounding box, scales it to fit 20 x 20 keeping its aspect
    ratio (antialiased, hence grey edges), and centres its centre of mass in 28 x 28.
    """
    ink = np.asarray(ink, np.float32)
    if ink.ndim != 2:
        raise ValueError(f"a drawing must be one grey image (H, W), got shape {ink.shape}")
    rows, cols = np.nonzero(ink > 0.05)
    if rows.size == 0:
        raise ValueError("the drawing is empty: draw a digit first")
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = DIGIT_BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))  # PIL: (width, height)
    box = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), np.float32).clip(0.0, 1.0)
    mass = box.sum()
    if mass <= 0:
        raise ValueError("the drawing is empty: draw a digit first")
    grid_y, grid_x = np.indices(box.shape)
    centre = np.array([(grid_y * box).sum(), (grid_x * box).sum()]) / mass  # (row, column) of the centre of mass
    # MNIST's centres of mass sit near pixel (14, 14); the box stays inside the image.
    top, left = np.round(MNIST_SIDE / 2 - centre).astype(int).clip(0, [MNIST_SIDE - box.shape[0],
                                                                       MNIST_SIDE - box.shape[1]])
    out = np.zeros((MNIST_SIDE, MNIST_SIDE), np.float32)
    out[top:top + box.shape[0], left:left + box.shape[1]] = box
    return out


def ink_from_canvas(rgba: np.ndarray) -> np.ndarray:
    """A canvas drawn white on black, (H, W, 4) uint8 RGBA, as ink in [0, 1]; shape (H, W)."""
    rgba = np.asarray(rgba, np.float32)
    return rgba[..., :3].mean(axis=-1) / 255.0 * (rgba[..., 3] / 255.0)


def ink_from_picture(data: bytes) -> np.ndarray:
    """An uploaded picture of one digit (PNG, JPEG, GIF...) as ink in [0, 1], shape (H, W); ValueError says
    what is wrong. Dark ink on a light page is inverted, as MNIST's digits are white on black."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is {len(data) / 2**20:.1f} MB; pictures up to {MAX_UPLOAD_BYTES // 2**20} MB "
                         "are read: crop it to the digit, or save it smaller")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if max(picture.size) > MAX_UPLOAD_SIDE:
                raise ValueError(f"the picture is {picture.size[0]} x {picture.size[1]} pixels; up to "
                                 f"{MAX_UPLOAD_SIDE} on a side are read: crop it to the digit")
            picture.load()
            if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
                flat = Image.new("RGBA", picture.size, "white")  # transparent pixels count as paper
                picture = Image.alpha_composite(flat, picture.convert("RGBA"))
            grey = np.asarray(picture.convert("L"), np.float32) / 255.0
    except UnidentifiedImageError as exc:  # PIL's words name its in-memory copy (<_io.BytesIO …>), not the file
        raise ValueError("this file cannot be read as a picture: it is not a PNG, JPEG or GIF file, or it is "
                         "damaged; upload a picture of one digit in one of those formats") from exc
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"this file cannot be read as a picture ({exc}): upload a PNG, JPEG or GIF of one "
                         f"digit") from exc
    if grey.ndim != 2 or min(grey.shape) < 8:
        raise ValueError(f"the picture is {grey.shape[1] if grey.ndim == 2 else '?'} pixels wide and "
                         f"{grey.shape[0]} high; at least 8 x 8 are needed to see a digit")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 0.5:  # a light page: dark ink on paper
        grey, border = 1.0 - grey, 1.0 - border
    paper = float(np.median(border))  # the page's own shade counts as no ink
    return np.clip((grey - paper) / max(1.0 - paper, 1e-6), 0.0, 1.0)
