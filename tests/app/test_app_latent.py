"""The latent-space workbench in AppTest: Traverse, Interpolate and Draw on a small real run."""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
from PIL import Image

from tests.app.helpers import (LATENT_MAP, N_TEST, RUN, TSNE_CACHE, app, button, captions, figures, finish, messages,
                               plotly_values, stored_map, view)
from ui.picker import RUN_KEY
from ui.settings import DRAWN, TEST
from vae_core import checkpoint as ckpt
from vae_core import latent, run_cache, runs
from vae_core.config import Config
from vae_core.train import fit, new_state

TRAVERSE, INTERPOLATE, DRAW = "pages/traverse.py", "pages/interpolate.py", "pages/draw.py"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def widget(at, kind: str, key: str):
    return next(w for w in at.get(kind) if w.key == key)


# ---------------------------------------------------------------- Latent map


def test_the_test_codes_are_encoded_once_per_checkpoint_version_by_home_the_map_its_reruns_and_interpolate(
        bare_root, quick_tsne):
    from ui.runs import open_run

    root = bare_root  # nothing kept: the views must encode the codes, and once
    path = runs.checkpoint_path(root, RUN)
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), quick_tsne)  # no T-SNE to wait for
    batch = inspect.signature(latent.encode).parameters["batch_size"].default  # the 10,000 test digits go through the encoder in batches of this many
    last = []  # one entry per encoding of the whole test set: its last, partial batch
    open_run(RUN).vae.encoder.register_forward_hook(  # the very model the views load: cached per version
        lambda module, args, out: last.append(1) if args[0].shape[0] == N_TEST % batch else None)
    at = app()  # Home: its thumbnails need the codes too
    at.switch_page(LATENT_MAP).run()  # then the map
    at.run()  # a rerun, as a click makes
    at.switch_page(INTERPOLATE).run()
    assert not at.exception and figures(at)
    assert len(last) == 1


def test_a_picked_point_shows_its_neighbours_and_becomes_a_or_b(root, quick_tsne, mnist):
    at = stored_map(root, quick_tsne)
    at.session_state["map_picked"] = 42  # what clicking test digit 42 leaves
    at.run()
    labels = mnist.test_labels.numpy()
    assert [h.value for h in at.subheader] == [f"Test #42, a {labels[42]}"]
    neighbours = [c for c in captions(at) if c.startswith("#")]
    assert len(neighbours) == 8 and not any(c.startswith("#42 ") for c in neighbours)
    distances = [float(c.rsplit(" · ", 1)[1]) for c in neighbours]
    assert distances == sorted(distances)
    (figure,) = figures(at)
    assert "mean z_scale" in figure["data"][0]["hovertemplate"]  # the encoder's uncertainty, on hover
    button(at, "Use as B").click()
    at.run()
    assert at.session_state.pair_b == 42 and at.session_state.pair_b_from == TEST
    at.switch_page(INTERPOLATE).run()
    assert "to B, test #42" in " ".join(c.value for c in at.caption)


def test_a_box_selection_shows_its_digits_and_their_counts(root, quick_tsne, mnist):
    at = stored_map(root, quick_tsne)
    chosen = list(range(0, 300, 2))  # 150 digits: more than the 100 drawn
    at.session_state["map_selected"] = chosen
    at.run()
    assert not at.exception
    assert [h.value for h in at.subheader] == ["150 digits selected"]
    counts = np.bincount(mnist.test_labels.numpy()[chosen], minlength=10)
    assert " · ".join(f"{d}: {n}" for d, n in enumerate(counts) if n) in messages(at.caption)
    assert "the first 100 of them, by test index" in captions(at)


# ---------------------------------------------------------------- Traverse


def test_traverse_draws_one_row_per_dimension_ordered_by_kl_and_counts_active_units(root):
    at = view(TRAVERSE)
    assert not at.exception
    (kl,) = figures(at)
    assert " of 50 units active" in kl["layout"]["title"]["text"]
    labels = [m.value for m in at.markdown if m.value.startswith("**dimension")]
    assert len(labels) == 10  # the default number of rows
    kls = [float(label.split("KL ")[1].split("**")[0]) for label in labels]
    assert kls == sorted(kls, reverse=True)
    assert all("digit: " in label and " ± " in label for label in labels)  # the digit's posterior on each row
    assert len(at.image) == 1 + 10  # the digit, then a strip per row


def test_traverse_rows_slider_principal_directions_and_the_prior_mean(root):
    at = view(TRAVERSE)
    widget(at, "slider", "trav_rows_shown").set_value(3)
    widget(at, "radio", "trav_along").set_value("Principal directions")
    widget(at, "radio", "trav_from").set_value("The prior mean (z = 0)")
    at.run()
    assert not at.exception
    labels = [m.value for m in at.markdown if m.value.startswith("**direction")]
    assert len(labels) == 3 and all("prior: " in label for label in labels)
    assert widget(at, "number_input", "trav_index").disabled
    assert len(at.image) == 3  # no digit to show: three strips


# ---------------------------------------------------------------- Interpolate


def test_interpolate_shows_a_linear_and_a_slerp_strip_exports_and_the_path_on_the_map(root):
    at = view(INTERPOLATE)
    assert not at.exception
    assert [m.value.split(":")[0] for m in at.markdown if m.value.startswith("**")] == ["**Linear", "**Spherical (slerp, White 2016)"]
    assert len(at.image) == 2
    assert {b.label for b in at.get("download_button")} == {"Strip as PNG (linear over slerp)",
                                                           "Slerp as an animated GIF (there and back)"}
    (fig,) = figures(at)
    paths = [t for t in fig["data"] if t.get("mode") == "lines+markers+text"]
    assert len(paths) == 2 and all(len(plotly_values(t["x"])) == 12 for t in paths)  # 12 steps by default


def test_interpolate_refuses_a_equal_to_b_and_a_drawing_that_does_not_exist(root):
    at = view(INTERPOLATE)
    widget(at, "number_input", "pair_b").set_value(0)
    at.run()
    assert [w.value for w in at.warning][0].startswith("A and B are the same image (test #0")
    widget(at, "number_input", "pair_b").set_value(5)
    widget(at, "radio", "pair_a_from").set_value(DRAWN)
    at.run()
    assert messages(at.info)[0].startswith("There is no drawing yet")
    assert not at.image


def test_interpolate_random_pair_takes_digits_of_the_chosen_classes(root, mnist):
    at = view(INTERPOLATE)
    widget(at, "selectbox", "pair_a_digit").set_value(3)
    widget(at, "selectbox", "pair_b_digit").set_value(8)
    button(at, "Pick a random pair").click()
    at.run()
    labels = mnist.test_labels.numpy()
    a, b = at.session_state.pair_a, at.session_state.pair_b
    assert 0 <= a < N_TEST and labels[a] == 3 and labels[b] == 8


# ---------------------------------------------------------------- Draw


def test_draw_reads_an_uploaded_digit_places_it_and_hands_it_to_interpolate(root, mnist):
    at = view(DRAW)
    assert messages(at.info)[-1].startswith("Draw a digit above, or upload a picture")
    digit = (mnist.test_images[3].reshape(28, 28).numpy() * 255).astype(np.uint8)  # a 0
    at.file_uploader[0].set_value(("zero.png", png(255 - np.kron(digit, np.ones((8, 8), np.uint8))), "image/png"))
    at.run()
    assert not at.exception and not at.error
    (metric,) = at.metric
    assert metric.label == "ELBO" and metric.value.endswith(" nats")
    assert any("of the 10,000 test digits" in c.value for c in at.caption)
    neighbours = [c for image in at.image for c in image.captions if c.startswith("#")]
    assert len(neighbours) == 8 and sum(" · a 0 · " in c for c in neighbours) >= 4
    (fig,) = figures(at)
    assert any(t.get("name") == "your digit" for t in fig["data"])

    button(at, "Use as A").click()
    at.run()
    assert at.session_state.pair_a_from == DRAWN and at.session_state.pair_b_from == TEST
    at.switch_page(INTERPOLATE).run()
    assert not at.exception and len(at.image) == 2
    assert "From A, your drawing, to B, test #1" in " ".join(c.value for c in at.caption)


def test_draw_shows_the_last_digit_again_after_a_page_switch(root, mnist):
    at = view(DRAW)
    at.session_state["drawing"] = mnist.test_images[3].reshape(28, 28).numpy()  # what an earlier visit kept
    at.run()
    assert "your last digit, kept for this session" in " ".join(messages(at.caption))
    assert len(at.metric) == 1 and not at.info


@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"hello, not a picture", "notes.png: This file cannot be read as a picture"),
    ("huge.png", b"\x00" * (5 * 2**20 + 10), "huge.png: The file is 5.0 MB"),
])
def test_draw_says_what_is_wrong_with_a_bad_upload(root, name, data, message):
    at = view(DRAW)
    at.file_uploader[0].set_value((name, data, "image/png"))
    at.run()
    assert not at.exception
    (error,) = messages(at.error)
    assert error.startswith(message)


def test_draw_says_a_blank_picture_is_empty(root):
    at = view(DRAW)
    at.file_uploader[0].set_value(("blank.png", png(np.full((50, 50), 255, np.uint8)), "image/png"))
    at.run()
    assert not at.exception
    assert messages(at.warning) == ["The drawing is empty: draw a digit first."]


# ---------------------------------------------------------------- a run with two latent dimensions


@pytest.fixture
def flat(root, mnist) -> str:
    """A real run with z_dim 2 beside the small one: its codes are a map already."""
    state = new_state(Config(epochs=1, limit=1024, batch_size=128, z_dim=2))
    fit(state, mnist)
    ckpt.save_state(state, runs.checkpoint_path(root, "flat"))
    return "flat"


def on(run: str, page: str):
    at = app()
    at.session_state[RUN_KEY] = run
    at.switch_page(page)
    return at.run()


def test_a_two_dimensional_run_is_mapped_as_it_is_without_t_sne(flat):
    from ui import tasks

    at = on(flat, LATENT_MAP)
    assert not at.exception
    (fig,) = figures(at)
    assert fig["layout"]["title"]["text"] == "z_loc · run flat · epoch 1"
    assert not tasks.pool().tasks()  # no T-SNE started
    assert not [s for s in at.slider if s.key == "map_perplexity"]
    assert "as its quantile under the prior" in " ".join(messages(at.caption))
    (manifold,) = [i for i in at.image if any("prior's quantiles 5% to 95%" in c for c in i.captions)]
    xs = plotly_values(fig["data"][0]["x"])
    assert ((0 < xs) & (xs < 1)).all()  # the codes as prior quantiles: the decoded grid's square


def test_a_two_dimensional_run_is_traversed_interpolated_and_drawn_on(flat, mnist):
    at = on(flat, TRAVERSE)
    assert not at.exception
    (kl,) = figures(at)
    assert " of 2 units active" in kl["layout"]["title"]["text"]
    assert len([m for m in at.markdown if m.value.startswith("**dimension")]) == 2  # all there are
    widget(at, "radio", "trav_along").set_value("Principal directions")
    at.run()
    assert not at.exception and len([m for m in at.markdown if m.value.startswith("**direction")]) == 2
    at.switch_page(INTERPOLATE).run()
    assert not at.exception and len(at.image) == 2
    at.switch_page(DRAW).run()
    digit = (mnist.test_images[3].reshape(28, 28).numpy() * 255).astype(np.uint8)
    at.file_uploader[0].set_value(("zero.png", png(digit), "image/png"))
    at.run()
    assert not at.exception and len(at.metric) == 1


# ---------------------------------------------------------------- Evaluate

EVALUATE = "pages/evaluate.py"


def test_evaluate_estimates_log_px_in_the_background_beside_the_elbo(root, mnist):
    from ui import tasks
    from vae_core import objectives

    at = view(EVALUATE)
    assert not at.exception
    assert "not the dynamically binarized MNIST log-likelihood that papers report" in messages(at.info)[0]
    widget(at, "number_input", "eval_images").set_value(100)
    widget(at, "number_input", "eval_k").set_value(10)
    at.run()
    button(at, "Estimate log p(x) with K = 10 on 100 images").click()
    at.run()
    (task,) = tasks.pool().tasks()
    finish(task)
    at.run()
    assert not at.exception
    elbo, bound, gap = (float(m.value.split(" ")[0]) for m in at.metric)
    vae = ckpt.load_state(root / "small" / "checkpoint.pt").vae.eval()
    expected = objectives.iwae_bound(vae, mnist.test_images[:100], k=10, seed=0).mean()
    assert bound == pytest.approx(expected, abs=0.006) and bound > elbo and gap == pytest.approx(bound - elbo, abs=0.011)
    # Another setting: the estimate just made is listed as kept for this checkpoint, with its settings.
    widget(at, "number_input", "eval_k").set_value(100)
    at.run()
    kept = at.dataframe[0].value
    assert kept[["K", "test images", "seed"]].values.tolist() == [[10, 100, 0]]
    assert kept["log p(x) ≥"].iloc[0] == pytest.approx(bound, abs=0.006)


def test_evaluate_puts_a_binarized_runs_figures_beside_the_literatures(empty_root, small_mnist):
    from vae_core.config import Config
    from vae_core.train import fit, new_state

    state = new_state(Config(epochs=1, likelihood="binarized", hidden=(32,)))
    fit(state, small_mnist)
    ckpt.save_state(state, runs.checkpoint_path(empty_root, "tutorial"))
    at = view(EVALUATE)
    info = messages(at.info)[0]
    assert info.startswith("Likelihood binarized:") and "VAE −86.76 nats, IWAE (k = 50) −84.78 nats" in info


def test_evaluate_can_be_cancelled_and_keeps_nothing(root, monkeypatch):
    from ui import tasks

    monkeypatch.setenv("VAE_CONFIRM_SECONDS", "1e9")  # started at once, however slow this machine
    at = view(EVALUATE)
    widget(at, "number_input", "eval_k").set_value(5000)
    at.run()
    button(at, "Estimate log p(x) with K = 5,000 on 1,000 images").click()
    at.run()
    (task,) = tasks.pool().tasks()
    button(at, "Cancel").click()
    at.run()
    finish(task)
    at.run()
    assert task.cancelled and not list((root / "small" / "cache").glob("iwae-*"))
    assert messages(at.warning) == ["The estimate was cancelled: nothing was kept."]
    assert button(at, "Estimate log p(x) with K = 5,000 on 1,000 images")  # it can be started again
