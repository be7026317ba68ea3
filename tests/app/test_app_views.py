"""Home, Samples, Reconstructions and the Latent map in AppTest, on a small real checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import (LATENT_MAP, N_TEST, RECONSTRUCTIONS, RUN, SAMPLES, TRAIN, TSNE_CACHE, app, button,
                               captions, figures, messages, plotly_values, run_info, view)
from ui.runs import RUN_KEY, store_array


# ---------------------------------------------------------------- home


def test_home_renders_its_title(root):
    at = app()
    assert not at.exception
    assert messages(at.title) == ["See a VAE learn"]


def test_home_sidebar_lists_the_run_with_its_epoch(root):
    at = app()
    picker = at.sidebar.selectbox(key=RUN_KEY)
    assert picker.label == "Checkpoint"
    assert len(picker.options) == 1
    assert picker.options[0].startswith(f"{RUN} · epoch 2/2")
    assert picker.value == RUN


def test_home_sidebar_says_there_are_no_runs_in_an_empty_folder(empty_root):
    at = app()
    assert not at.exception
    assert len(at.sidebar.selectbox) == 0
    assert "No trained runs yet." in messages(at.sidebar.caption)


# ---------------------------------------------------------------- every model view


@pytest.mark.parametrize("page", [SAMPLES, RECONSTRUCTIONS, TRAIN])
def test_view_renders_without_exception_with_a_checkpoint(root, page):
    at = view(page)
    assert not at.exception
    assert not at.error
    assert len(at.title) == 1


@pytest.mark.parametrize("page", [SAMPLES, RECONSTRUCTIONS, LATENT_MAP])
def test_view_without_a_model_says_so_instead_of_failing(empty_root, page):
    at = view(page)
    assert not at.exception
    assert len(at.info) == 1
    assert "no trained model" in at.info[0].value
    assert not at.image and not at.get("plotly_chart")


# ---------------------------------------------------------------- samples


def test_samples_show_64_images_of_the_run_by_default(root):
    at = view(SAMPLES)
    assert captions(at) == ["64 samples"]
    assert f"Run {RUN}, epoch 2, seed 0." in at.caption[0].value
    assert at.get("download_button")


def test_samples_slider_sets_the_number_of_images(root):
    at = view(SAMPLES)
    at.slider(key="samples_n").set_value(100).run()
    assert not at.exception
    assert captions(at) == ["100 samples"]


def test_samples_seed_box_sets_the_seed(root):
    at = view(SAMPLES)
    at.number_input(key="samples_seed").set_value(5).run()
    assert not at.exception
    assert "seed 5." in at.caption[0].value


def test_new_samples_button_moves_to_the_next_seed(root):
    at = view(SAMPLES)
    at.button(key="samples_new").click().run()
    assert not at.exception
    assert "seed 1." in at.caption[0].value


# ---------------------------------------------------------------- reconstructions


def test_reconstructions_show_six_random_test_digits_by_default(root):
    at = view(RECONSTRUCTIONS)
    assert len(at.image) == 6
    assert all(c.startswith("test #") and c.endswith(" nats") for c in captions(at))
    assert f"Run {RUN}, epoch 2." in at.caption[0].value


def test_reconstructions_how_many_slider_sets_the_number_of_digits(root):
    at = view(RECONSTRUCTIONS)
    at.slider(key="rec_count").set_value(2).run()
    assert len(at.image) == 2


def test_reconstructions_by_digit_show_only_that_digit(root):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By digit").run()
    at.selectbox(key="rec_digit").set_value(3).run()
    assert len(at.image) == 6
    assert all(" · digit 3 · " in c for c in captions(at))


def by_index(text: str) -> AppTest:
    """Reconstructions of the test images whose indices the user typed."""
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input(text).run()
    return at


def test_reconstructions_by_index_show_one_image_per_index(root, mnist):
    at = by_index("0, 7, 42")
    assert not at.error
    labels = mnist.test_labels
    assert [c.split(" · ELBO")[0] for c in captions(at)] == [
        f"test #{i} · digit {int(labels[i])}" for i in (0, 7, 42)]


@pytest.mark.parametrize("text, expected", [
    ("a, b", ["whole numbers separated by commas", "got `a, b`"]),
    ("3, 10000", [f"between 0 and {N_TEST - 1}", "these are not: 10000."]),
])
def test_reconstructions_by_index_refuse_bad_indices_and_say_what_is_allowed(root, text, expected):
    at = by_index(text)
    assert not at.exception and not at.image
    (error,) = messages(at.error)
    assert all(part in error for part in expected)


def test_reconstructions_by_index_do_not_glue_space_separated_numbers(root):
    at = by_index("3 7")
    assert not any(c.startswith("test #37 ") for c in captions(at))


# ---------------------------------------------------------------- latent map


@pytest.mark.slow
def test_latent_map_computes_tsne_and_keeps_it_on_disk(root):
    at = view(LATENT_MAP)
    assert not at.exception
    (figure,) = figures(at)
    assert figure["layout"]["title"]["text"].startswith("T-SNE of ")
    assert [t["name"] for t in figure["data"]] == [str(d) for d in range(10)]
    assert len({t["marker"]["color"] for t in figure["data"]}) == 10
    assert len(list((root / RUN / "cache").glob(f"{TSNE_CACHE}-*.npy"))) == 1


def stored_map(root: Path, xy: np.ndarray) -> AppTest:
    store_array(run_info(root), TSNE_CACHE, xy)
    return view(LATENT_MAP)


def test_latent_map_draws_one_trace_per_digit(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    assert not at.exception
    (figure,) = figures(at)
    assert [t["name"] for t in figure["data"]] == [str(d) for d in range(10)]
    assert sum(len(plotly_values(t["x"])) for t in figure["data"]) == N_TEST


def test_latent_map_gives_each_digit_its_own_colour(root, quick_tsne):
    (figure,) = figures(stored_map(root, quick_tsne))
    assert len({t["marker"]["color"] for t in figure["data"]}) == 10


def test_latent_map_title_names_the_run_and_epoch(root, quick_tsne):
    (figure,) = figures(stored_map(root, quick_tsne))
    title = figure["layout"]["title"]["text"]
    assert title.startswith("T-SNE of ")
    assert f"run {RUN} · epoch 2" in title


def test_latent_map_plots_the_stored_tsne_points(root, quick_tsne, mnist):
    (figure,) = figures(stored_map(root, quick_tsne))
    zeros = next(t for t in figure["data"] if t["name"] == "0")
    expected = quick_tsne[mnist.test_labels.numpy() == 0]
    assert np.allclose(plotly_values(zeros["x"]), expected[:, 0])
    assert np.allclose(plotly_values(zeros["y"]), expected[:, 1])


def test_latent_map_after_a_cancelled_tsne_shows_pca_and_offers_to_compute(root):
    at = app()
    # What the page's "Cancel T-SNE" button leaves in the session for this run and setting.
    at.session_state["map_cancelled"] = {(RUN, TSNE_CACHE)}
    at.switch_page(LATENT_MAP)
    at.run()
    assert not at.exception
    (figure,) = figures(at)
    assert figure["layout"]["title"]["text"].startswith("PCA of ")
    assert "T-SNE was cancelled" in at.warning[0].value
    assert button(at, "Compute T-SNE")
    assert not list((root / RUN / "cache").glob(f"{TSNE_CACHE}-*.npy"))
