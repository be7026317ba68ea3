"""vae_core.latent on the shipped, fully trained run and the real test set: codes, neighbours, paths, maps, drawings."""

import numpy as np
import pytest

from vae_core import latent
from vae_core import checkpoint as ckpt
from vae_core import runs

PATH = runs.checkpoint_path(runs.DEFAULT_ROOT, "tutorial")


@pytest.fixture(scope="module")
def shipped():
    return ckpt.load_state(PATH).vae.eval()


@pytest.fixture(scope="module")
def codes(shipped, mnist):
    return latent.encode(shipped, mnist.test_images)


def test_codes_are_the_guides_loc_and_positive_scale(shipped, codes, mnist):
    assert codes.loc.shape == codes.scale.shape == (10000, 50)
    assert (codes.scale > 0).all()
    loc, scale = shipped.encoder(mnist.test_images[:3].reshape(3, -1))
    np.testing.assert_allclose(codes.loc[:3], loc.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(codes.scale[:3], scale.detach().numpy(), atol=1e-6)


def test_codes_are_encoded_in_batches_without_changing_them(shipped, codes, mnist):
    small = latent.encode(shipped, mnist.test_images[:300], batch_size=64)
    assert small.loc.dtype == small.scale.dtype == np.float32
    np.testing.assert_allclose(small.loc, codes.loc[:300], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(small.scale, codes.scale[:300], rtol=1e-5, atol=1e-6)


def test_neighbours_are_the_nearest_codes_in_order_without_the_digit_itself(codes, mnist):
    idx, dist = latent.neighbours(codes.loc, codes.loc[0], k=8, exclude=0)
    brute = np.argsort(np.linalg.norm(codes.loc - codes.loc[0], axis=1))[1:9]  # [0] is the digit itself
    assert list(idx) == list(brute) and 0 not in idx
    assert (np.diff(dist) >= 0).all() and dist[0] > 0
    labels = mnist.test_labels.numpy()
    assert (labels[idx] == labels[0]).sum() >= 6  # a trained VAE keeps a 7's neighbours mostly 7s


@pytest.mark.parametrize("k", [0, 10000, -1])
def test_neighbours_refuse_k_out_of_range(codes, k):
    with pytest.raises(ValueError, match="k must be between 1 and 9999"):
        latent.neighbours(codes.loc, codes.loc[0], k=k, exclude=0)


def test_paths_start_and_end_at_the_codes_and_slerp_keeps_the_norm(codes):
    a, b = codes.loc[3], codes.loc[7]
    for kind in latent.PATH_KINDS:
        z = latent.path(a, b, steps=9, kind=kind)
        assert z.shape == (9, 50)
        np.testing.assert_allclose(z[0], a, atol=1e-5)
        np.testing.assert_allclose(z[-1], b, atol=1e-5)
    rng = np.random.default_rng(0)
    p, q = rng.standard_normal(50), rng.standard_normal(50)  # two typical prior draws, norm about 7
    norms = {kind: np.linalg.norm(latent.path(p, q, 9, kind), axis=1) for kind in latent.PATH_KINDS}
    ends = min(np.linalg.norm(p), np.linalg.norm(q))
    assert norms["linear"][4] < 0.8 * ends  # the straight line dips towards the origin
    assert norms["slerp"].min() >= 0.99 * ends  # the great circle does not


def test_slerp_of_parallel_codes_is_the_line_and_bad_arguments_are_refused():
    a = np.ones(4, np.float32)
    np.testing.assert_allclose(latent.path(a, 2 * a, 3, "slerp"), latent.path(a, 2 * a, 3, "linear"))
    with pytest.raises(ValueError, match="at least 2"):
        latent.path(a, a, 1)
    with pytest.raises(ValueError, match="linear, slerp"):
        latent.path(a, a, 3, "cubic")


def test_a_coordinate_traversal_changes_one_coordinate_to_each_value(codes):
    z = codes.loc[5]
    values = np.linspace(-3, 3, 7)
    grid = latent.traversal(z, np.eye(50)[[4, 9]], values)
    assert grid.shape == (2, 7, 50)
    np.testing.assert_allclose(grid[0, :, 4], values, atol=1e-6)
    np.testing.assert_allclose(np.delete(grid[0], 4, axis=1), np.tile(np.delete(z, 4), (7, 1)), atol=1e-6)
    np.testing.assert_allclose(grid[1, :, 9], values, atol=1e-6)


def test_principal_directions_are_unit_and_ordered(codes):
    u, variance = latent.principal_directions(codes.loc, 3)
    np.testing.assert_allclose(u @ u.T, np.eye(3), atol=1e-5)
    assert (np.diff(variance) <= 0).all()
    with pytest.raises(ValueError, match="k must be between 1 and 50"):
        latent.principal_directions(codes.loc, 51)


def test_pca_projects_on_the_widest_axes():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 5)) * np.array([10.0, 5.0, 0.1, 0.1, 0.1])
    xy = latent.pca_2d(points)
    assert xy.shape == (500, 2)
    assert np.corrcoef(np.abs(xy[:, 0]), np.abs(points[:, 0]))[0, 1] > 0.99


def test_a_map_shows_2d_codes_as_they_are_else_a_kept_tsne_map_else_pca(codes):
    flat = codes.loc[:, :2]  # two-dimensional codes: each coordinate as its prior quantile, never T-SNE
    xy, method = latent.map_points(flat, tsne=np.zeros((10000, 2), np.float32))
    assert method == "z_loc"
    np.testing.assert_allclose(xy, latent.prior_quantiles(flat))
    tsne = np.random.default_rng(0).standard_normal((10000, 2)).astype(np.float32)
    xy, method = latent.map_points(codes.loc, tsne)
    assert method == "T-SNE" and xy is tsne
    xy, method = latent.map_points(codes.loc, None)
    assert method == "PCA"
    np.testing.assert_allclose(xy, latent.pca_2d(codes.loc))
    assert {"z_loc", "T-SNE", "PCA"} == set(latent.MAP_METHODS)


def test_a_new_code_is_placed_among_its_neighbours_on_the_map(codes):
    xy = np.random.default_rng(0).standard_normal((10000, 2)).astype(np.float32)
    (spot,) = latent.place(codes.loc, xy, codes.loc[11], k=8)
    idx, _ = latent.neighbours(codes.loc, codes.loc[11], k=8)
    np.testing.assert_allclose(spot, xy[idx].mean(axis=0), atol=1e-6)


def test_a_drawing_is_made_like_mnist_cropped_scaled_to_20_and_centred_by_mass():
    ink = np.zeros((280, 280), np.float32)
    ink[20:220, 200:240] = 1.0  # a tall bar in the top right corner: 200 x 40
    x = latent.mnist_style(ink)
    assert x.shape == (28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    rows, cols = np.nonzero(x > 0.05)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 <= 5  # the long side fits 20
    mass = np.indices(x.shape).reshape(2, -1) @ x.ravel() / x.sum()
    np.testing.assert_allclose(mass, [14, 14], atol=0.6)  # centred, as MNIST's digits are


def test_real_test_digits_drawn_ten_times_larger_come_back_as_mnist_made_them(mnist):
    for digit in mnist.test_images[:10].reshape(10, 28, 28).numpy():
        big = np.kron(digit, np.ones((10, 10), np.float32))
        assert np.corrcoef(latent.mnist_style(big).ravel(), digit.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("ink, message", [(np.zeros((50, 50)), "empty"), (np.zeros((5, 5, 3)), "one grey image")])
def test_an_empty_or_coloured_drawing_is_refused(ink, message):
    with pytest.raises(ValueError, match=message):
        latent.mnist_style(ink)


def _png(array: np.ndarray, mode: str = "L") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_photo_of_dark_ink_on_paper_reads_like_white_ink_on_black(mnist):
    digit = (mnist.test_images[0].reshape(28, 28).numpy() * 255).astype(np.uint8)
    paper = 255 - np.kron(digit, np.ones((6, 6), np.uint8))  # dark on white, 168 x 168
    on_black = latent.ink_from_picture(_png(np.kron(digit, np.ones((6, 6), np.uint8))))
    np.testing.assert_allclose(latent.ink_from_picture(_png(paper)), on_black, atol=1 / 255)
    assert np.corrcoef(latent.mnist_style(on_black).ravel(), digit.ravel())[0, 1] > 0.99


def test_a_canvas_drawn_white_on_black_is_ink():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[2:5, 3, :3] = 255
    ink = latent.ink_from_canvas(rgba)
    assert ink.shape == (10, 10) and ink[3, 3] == 1.0 and ink.sum() == 3.0


@pytest.mark.parametrize("data, message", [
    (b"not a picture at all", "cannot be read as a picture"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "cannot be read as a picture"),
    (b"\x00" * (5 * 2**20 + 1), "up to 5 MB"),
    (_png(np.zeros((4, 4), np.uint8)), "at least 8 x 8"),
    (_png(np.zeros((1, 5000), np.uint8)), "up to 4096 on a side"),
])
def test_a_bad_upload_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        latent.ink_from_picture(data)


def test_a_transparent_png_counts_transparent_pixels_as_paper():
    rgba = np.zeros((40, 40, 4), np.uint8)  # all transparent...
    rgba[10:30, 18:22] = (0, 0, 0, 255)  # ...but a black bar
    ink = latent.ink_from_picture(_png(rgba, "RGBA"))
    assert ink[20, 20] == 1.0 and ink[0, 0] == 0.0 and ink.sum() == 80


def _bar_picture(mode: str, fmt: str) -> bytes:
    """A dark vertical bar on a light 60 x 60 page, saved in an unusual image mode."""
    import io

    from PIL import Image

    light, dark = {"I;16": (65535, 0), "CMYK": ((0, 0, 0, 0), (0, 0, 0, 255)), "P": (0, 1)}[mode]
    picture = Image.new(mode, (60, 60), light)
    if mode == "P":
        picture.putpalette([255, 255, 255, 0, 0, 0])
    for y in range(10, 50):
        for x in range(28, 32):
            picture.putpixel((x, y), dark)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("mode, fmt", [("I;16", "PNG"), ("CMYK", "JPEG"), ("P", "PNG")])
def test_pictures_in_unusual_modes_read_as_the_same_ink(mode, fmt):
    ink = latent.ink_from_picture(_bar_picture(mode, fmt))
    assert ink.shape == (60, 60) and (ink > 0.5).sum() == 160 and ink[0, 0] == 0.0


def test_the_prior_grid_sits_at_the_priors_quantiles_top_row_highest():
    grid, q = latent.prior_grid(5)
    assert grid.shape == (5, 5, 2) and np.allclose(q, [0.05, 0.275, 0.5, 0.725, 0.95])
    from statistics import NormalDist

    expected = [NormalDist().inv_cdf(p) for p in q]
    np.testing.assert_allclose(grid[0, :, 0], expected, atol=1e-5)  # z_1 rises left to right
    np.testing.assert_allclose(grid[:, 0, 1], expected[::-1], atol=1e-5)  # z_2 falls top to bottom
    with pytest.raises(ValueError, match="at least 2"):
        latent.prior_grid(1)
