"""The A/B pair and what the latent-space views hand out, in AppTest on a small real run.

Use as A / Use as B answer on screen (a toast, a lasting line, letters on the
map); the map's PNG and Interpolate's downloads say what they show; Draw's
upload limit is one number; Interpolate's slerp says what it does to the
codes' length.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from tests.app.helpers import (LATENT_MAP, TSNE_CACHE, button, figures, messages, plotly_values, run_info,
                               stored_map, view)
from ui.figures import grid, labelled_rows, map_png
from vae_core import checkpoint as ckpt
from vae_core import latent, run_cache, runs

INTERPOLATE, DRAW = "pages/interpolate.py", "pages/draw.py"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def number_input(at, key: str):
    return next(w for w in at.number_input if w.key == key)


def download(at, label: str):
    return next(b for b in at.get("download_button") if b.label == label)


def upload_a_zero(at, mnist) -> None:
    digit = (mnist.test_images[3].reshape(28, 28).numpy() * 255).astype(np.uint8)  # test #3 is a 0
    at.file_uploader[0].set_value(("zero.png", png(255 - np.kron(digit, np.ones((8, 8), np.uint8))), "image/png"))
    at.run()


# ---------------------------------------------------------------- Use as A / Use as B


def test_use_as_a_on_the_map_is_confirmed_by_a_toast_and_a_line_that_stays(root, quick_tsne, mnist):
    labels = mnist.test_labels.numpy()
    at = stored_map(root, quick_tsne)
    at.session_state["map_picked"] = 42  # what clicking test digit 42 leaves
    at.run()
    button(at, "Use as A").click()
    at.run()
    assert messages(at.toast) == [f"A is now test #42 (a {labels[42]})"]
    assert f"A is now test #42 (a {labels[42]}) · B is test #1 (a {labels[1]})" in messages(at.caption)
    at.run()  # the next rerun (another click, a slider): the toast has gone, the line still says what A is
    assert not at.toast
    assert f"A is test #42 (a {labels[42]}) · B is test #1 (a {labels[1]})" in messages(at.caption)


def test_use_as_a_on_draw_is_confirmed_by_a_toast_and_a_line_that_stays(root, mnist):
    at = view(DRAW)
    upload_a_zero(at, mnist)
    button(at, "Use as A").click()
    at.run()
    assert messages(at.toast) == ["A is now your drawing"]
    assert f"A is now your drawing · B is test #1 (a {mnist.test_labels[1]})" in messages(at.caption)


def test_a_and_b_are_lettered_on_the_latent_map_at_their_digits(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    at.session_state["pair_a"], at.session_state["pair_b"] = 42, 7
    at.session_state["map_picked"] = 5
    at.run()
    (fig,) = figures(at)
    (marks,) = [t for t in fig["data"] if t.get("name") == "A and B"]
    assert marks["text"] == ["A", "B"]
    xy = np.stack([plotly_values(marks["x"]), plotly_values(marks["y"])], axis=1)
    np.testing.assert_allclose(xy, quick_tsne[[42, 7]], rtol=1e-6)
    assert marks["customdata"] == [42, 7]  # a click on a letter picks its digit
    (ring,) = [t for t in fig["data"] if t.get("name") == "picked"]
    assert ring["marker"]["symbol"] != marks["marker"].get("symbol", "circle")  # the pick is an open ring, A/B discs


def test_a_drawing_used_as_a_is_lettered_among_its_nearest_codes_on_the_map(root, quick_tsne, mnist):
    path = root / "small" / "checkpoint.pt"
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), quick_tsne)  # the map, without waiting
    at = view(DRAW)
    upload_a_zero(at, mnist)
    button(at, "Use as A").click()
    at.run()
    vae = ckpt.load_state(path).vae.eval()
    z_loc = latent.encode(vae, torch.from_numpy(at.session_state["drawing"])[None]).loc
    expected = latent.place(latent.encode(vae, mnist.test_images).loc, quick_tsne, z_loc)[0]
    at.switch_page(LATENT_MAP).run()
    (fig,) = figures(at)
    (marks,) = [t for t in fig["data"] if t.get("name") == "A and B"]
    assert marks["text"] == ["A", "B"] and marks["customdata"][0] is None  # no test digit to pick
    np.testing.assert_allclose([plotly_values(marks["x"])[0], plotly_values(marks["y"])[0]], expected, atol=1e-4)


# ---------------------------------------------------------------- the map's PNG


def test_the_map_offers_a_png_named_by_run_epoch_perplexity_and_seed(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    assert not at.exception
    button_ = download(at, "Download the map as PNG")
    name = f"latent-map-small-e{run_info(root).epoch}-tsne-p30-s0.png"
    assert name in button_.help
    assert button_.proto.HasField("deferred_file_id")  # drawn on the server only when someone asks for it


def test_the_map_png_is_square_and_carries_its_title(quick_tsne, mnist):
    title = "T-SNE (perplexity 30, seed 0) · run small · epoch 2"
    picture = Image.open(io.BytesIO(map_png(quick_tsne, mnist.test_labels.numpy(), title,
                                            {"A": quick_tsne[42], "B": quick_tsne[7]})))
    assert picture.info["Title"] == title
    width, height = picture.size
    assert width >= 1000 and width <= height <= 1.1 * width  # the points' square, the title and legend
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    assert (pixels == (0, 0, 0)).all(axis=1).sum() > 500  # the black A and B discs (the digits' colours are not black)


# ---------------------------------------------------------------- Interpolate


def test_interpolate_names_its_downloads_by_run_epoch_a_and_b(root):
    at = view(INTERPOLATE)
    number_input(at, "pair_a").set_value(123)
    number_input(at, "pair_b").set_value(456)
    at.run()
    stem = f"interpolate-small-e{run_info(root).epoch}-a123-b456"
    assert f"{stem}.png" in download(at, "Strip as PNG (linear over slerp)").help
    assert f"{stem}.gif" in download(at, "Slerp as an animated GIF (there and back)").help


def test_the_interpolation_png_names_its_rows_beside_them(mnist):
    rows = {"linear": mnist.test_images[:12].reshape(-1, 28, 28).numpy(),
            "slerp": mnist.test_images[12:24].reshape(-1, 28, 28).numpy()}
    strip = labelled_rows(rows, "run small · epoch 2 · from A, test #0 (a 7), to B, test #1 (a 2)", scale=4)
    bare = [grid(images, nrow=12, scale=4) for images in rows.values()]
    top = strip.shape[0] - sum(b.shape[0] for b in bare)  # the title's band
    label_width = strip.shape[1] - bare[0].shape[1]
    assert top > 0 and label_width > 0
    assert (strip[:top] < 128).any()  # the title is written
    for band, images in zip(np.split(strip[top:], 2), bare):
        np.testing.assert_array_equal(band[:, label_width:], images)  # the strip itself, untouched
        assert (band[:, :label_width] < 128).any()  # its name, on its left


def test_interpolate_states_the_codes_length_along_slerp_and_the_line(root, mnist):
    at = view(INTERPOLATE)
    vae = ckpt.load_state(root / "small" / "checkpoint.pt").vae.eval()
    z_a, z_b = latent.encode(vae, mnist.test_images[:2]).loc  # A and B: test #0 and #1 by default
    expected = [np.linalg.norm(z_a), np.linalg.norm(z_b)] + [
        np.linalg.norm(latent.path(z_a, z_b, 3, kind)[1]) for kind in ("slerp", "linear")]
    (caption,) = [c for c in messages(at.caption) if c.startswith("The codes' length")]
    assert [float(x) for x in re.findall(r"\d+\.\d\d", caption)] == pytest.approx(expected, abs=0.006)
    assert "equal length" in caption  # slerp keeps the length only then
    (slerp,) = [m.value for m in at.markdown if m.value.startswith("**Spherical")]
    assert "keeps the codes' length" not in slerp


# ---------------------------------------------------------------- Draw's upload


def test_the_upload_limit_is_one_number_on_the_label_and_the_drop_zone(root):
    at = view(DRAW)
    (uploader,) = at.file_uploader
    limit_mb = latent.MAX_UPLOAD_BYTES // 2**20
    assert uploader.proto.max_upload_size_mb == limit_mb  # what the drop zone says ("Limit 5MB per file")
    assert f"up to {limit_mb} MB" in uploader.label


def test_a_gif_upload_is_read_by_its_first_frame(root, mnist):
    digit = (mnist.test_images[3].reshape(28, 28).numpy() * 255).astype(np.uint8)  # test #3 is a 0
    frames = [Image.fromarray(np.kron(digit, np.ones((8, 8), np.uint8))), Image.new("L", (224, 224), 0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])  # a blank second frame
    at = view(DRAW)
    at.file_uploader[0].set_value(("zero.gif", buffer.getvalue(), "image/gif"))
    at.run()
    assert not at.exception and not at.error and not at.warning
    assert [m.label for m in at.metric] == ["ELBO"]
    assert "GIF" in at.file_uploader[0].label


def test_an_upload_that_is_no_picture_is_named_by_its_file_name_only(root):
    at = view(DRAW)
    at.file_uploader[0].set_value(("notes.png", b"hello, not a picture", "image/png"))
    at.run()
    (error,) = messages(at.error)
    assert error.startswith("notes.png: This file cannot be read as a picture")
    assert "BytesIO" not in error and " at 0x" not in error
