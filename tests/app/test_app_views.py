"""Home, Samples, Reconstructions and the Latent map in AppTest, on a small real checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import (LATENT_MAP, N_TEST, RECONSTRUCTIONS, RUN, SAMPLES, TRAIN, TSNE_CACHE, app, button,
                               captions, figures, finish, messages, plotly_values, stored_map, training, view)
from ui import tasks
from ui.picker import PICKER_KEY
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs


# ---------------------------------------------------------------- home


def test_home_renders_its_title(root):
    at = app()
    assert not at.exception
    assert messages(at.title) == ["See a VAE learn"]


def test_home_sidebar_lists_the_run_with_its_epoch(root):
    at = app()
    picker = at.sidebar.selectbox(key=PICKER_KEY)
    assert picker.label == "Checkpoint"
    assert len(picker.options) == 1
    assert picker.options[0].startswith(f"{RUN} · epoch 2/2")
    assert picker.value == RUN


def test_an_unreadable_run_is_named_with_its_reason_and_the_others_still_listed(root):
    bad = root / "bad" / "checkpoint.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"garbage")
    at = app()
    assert not at.exception
    (warning,) = messages(at.sidebar.warning)
    assert warning.startswith("Run bad cannot be read") and "truncated or not a checkpoint file" in warning
    assert at.sidebar.selectbox(key=PICKER_KEY).options[0].startswith(f"{RUN} · epoch 2/2")


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


def rows(at: AppTest) -> list[str]:
    """Captions of the digit rows, below the column header (the first image)."""
    return [caption for image in at.image[1:] for caption in image.captions]


def shown(at: AppTest) -> list[int]:
    """Test-set indices of the rows, from their captions `test #i · ...`."""
    return [int(caption.split(" · ")[0].removeprefix("test #")) for caption in rows(at)]


def test_reconstructions_show_six_random_test_digits_by_default(root):
    at = view(RECONSTRUCTIONS)
    assert len(at.image) == 1 + 6
    assert all(c.startswith("test #") and c.endswith(" nats") for c in rows(at))
    assert f"Run {RUN}, epoch 2." in at.caption[0].value


def test_reconstructions_label_the_columns_above_the_rows(root):
    at = view(RECONSTRUCTIONS)
    at.slider(key="rec_k").set_value(2).run()
    (header,) = at.image[0].proto.imgs
    assert header.alt == "Columns: input, draw 1, draw 2, mean at z_loc" and not header.caption


def test_reconstructions_caption_each_elbo_as_a_mean_with_its_standard_error(root):
    at = view(RECONSTRUCTIONS)
    assert "average of 64 one-sample estimates" in at.caption[0].value
    assert "higher is better" in at.caption[0].value
    for caption in rows(at):
        mean, plus_minus, se, unit = caption.split(" · ELBO ")[1].split()
        assert plus_minus == "±" and unit == "nats" and float(mean) < 0 < float(se)


def test_reconstructions_how_many_slider_sets_the_number_of_digits(root):
    at = view(RECONSTRUCTIONS)
    at.slider(key="rec_count").set_value(2).run()
    assert len(rows(at)) == 2


def test_reconstructions_by_digit_show_only_that_digit(root):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By digit").run()
    at.selectbox(key="rec_digit").set_value(3).run()
    assert len(rows(at)) == 6
    assert all(" · digit 3 · " in c for c in rows(at))


def test_reconstructions_by_digit_do_not_pick_the_random_positions_in_its_pool(root, mnist):
    at = view(RECONSTRUCTIONS)
    random = np.array(shown(at))
    at.radio(key="rec_how").set_value("By digit").run()
    at.selectbox(key="rec_digit").set_value(3).run()
    pool = np.flatnonzero(mnist.test_labels.numpy() == 3)
    # Where each pick sits, as a fraction of its pool: one shared stream puts them at the same fractions.
    by_digit = np.searchsorted(pool, shown(at)) / len(pool)
    assert not np.allclose(np.sort(by_digit), np.sort(random / N_TEST), atol=0.02)


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
    assert [c.split(" · ELBO")[0] for c in rows(at)] == [
        f"test #{i} · digit {int(labels[i])}" for i in (0, 7, 42)]


def test_reconstructions_by_index_give_an_image_the_same_elbo_whatever_else_is_shown(root):
    alone = rows(by_index("9999"))
    among = rows(by_index("7 42,,9999"))
    assert among[2] == alone[0]
    assert len(set(rows(by_index("5, 5, 5")))) == 1


def test_reconstructions_by_index_hide_how_many_and_keep_it_for_later(root):
    at = view(RECONSTRUCTIONS)
    at.slider(key="rec_count").set_value(2).run()
    at.radio(key="rec_how").set_value("By index").run()
    assert "rec_count" not in [slider.key for slider in at.slider]
    at.radio(key="rec_how").set_value("Random").run()
    assert len(rows(at)) == 2


@pytest.mark.parametrize("text, expected", [
    ("a, b", ["whole numbers separated by commas", "got `a, b`"]),
    ("3, 10000", [f"between 0 and {N_TEST - 1}", "these are not: 10000."]),
])
def test_reconstructions_by_index_refuse_bad_indices_and_say_what_is_allowed(root, text, expected):
    at = by_index(text)
    assert not at.exception and not at.image
    (error,) = messages(at.error)
    assert all(part in error for part in expected)


@pytest.mark.parametrize("text", ["", " , "])
def test_reconstructions_by_index_ask_for_at_least_one_index_when_none_is_typed(root, text):
    at = by_index(text)
    assert not at.exception and not at.image
    (error,) = messages(at.error)
    assert "at least one index" in error and "`0, 7, 42`" in error


def test_reconstructions_by_index_do_not_glue_space_separated_numbers(root):
    at = by_index("3 7")
    assert not any(c.startswith("test #37 ") for c in rows(at))


# ---------------------------------------------------------------- latent map


def tsne_tasks() -> list:
    return tasks.pool().tasks()


def wait_until(condition, polls: int = 4000) -> None:
    """Poll without a wall-clock limit, just a bounded number of polls."""
    for _ in range(polls):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the condition never held")


def title(at: AppTest) -> str:
    (figure,) = figures(at)
    return figure["layout"]["title"]["text"]


@pytest.mark.slow
def test_latent_map_computes_tsne_in_the_background_through_reruns_and_keeps_it_under_its_checkpoint(root, trained):
    # One T-SNE of 10,000 codes (the slowest thing an AppTest does) serves the four behaviours in turn.
    path = root / RUN / "checkpoint.pt"
    before = runs.digest(path)
    at = view(LATENT_MAP)
    assert not at.exception
    assert title(at).startswith("PCA · ")  # at once, while T-SNE computes
    (task,) = tsne_tasks()

    def under_way() -> bool:  # watched meanwhile, as the page's polling fragment does
        task.watch()
        return task.progress >= 0.2 or task.done

    wait_until(under_way)
    reached = task.progress
    at.session_state["map_picked"] = 42  # what clicking test digit 42 on the PCA map leaves
    at.run()
    assert tsne_tasks() in ([task], [])  # a rerun neither restarts the computation (or it has just finished)
    assert task.progress >= reached
    ckpt.save_state(trained, path)  # training saves a newer checkpoint while T-SNE runs
    after = runs.digest(path)
    finish(task)
    assert run_cache.load_cached(path, TSNE_CACHE, before) is not None  # kept on disk, under what it mapped
    assert run_cache.load_cached(path, TSNE_CACHE, after) is None
    assert len(list((root / RUN / "cache").glob(f"{TSNE_CACHE}-*.npy"))) == 1
    at.run()
    assert title(at) == f"PCA · run {RUN} · epoch {trained.epoch}"  # the new checkpoint's own map is not made yet
    assert f"checkpoint {after[:8]}" in at.caption[0].value
    (figure,) = figures(at)  # nor loses the picked point
    assert figure["data"][-1]["name"] == "picked" and list(plotly_values(figure["data"][-1]["customdata"])) == [42]
    assert any(h.value.startswith("Test #42, a ") for h in at.subheader)  # the picked digit's panel


def test_latent_map_of_a_training_run_draws_its_newest_checkpoints_pca_and_starts_no_tsne(root, trained):
    path = root / RUN / "checkpoint.pt"
    with training(root / RUN):
        at = view(LATENT_MAP)
        assert not at.exception
        assert title(at).startswith("PCA · ")
        assert any(f"Run {RUN} is training" in m for m in messages(at.info)), messages(at.info)
        assert tsne_tasks() == []  # a newer checkpoint comes every few seconds: a T-SNE would chase them
        ckpt.save_state(trained, path)  # the run saves its next epoch
        at.run()
        assert title(at) == f"PCA · run {RUN} · epoch {trained.epoch}"
        assert tsne_tasks() == []
    at.run()  # training has ended: the map starts
    assert title(at).startswith("PCA · ") and not messages(at.info)
    assert len(tsne_tasks()) == 1


DIGITS = {str(d) for d in range(10)}  # the map's digit traces (A and B, and the picked point, are others)


def test_latent_map_draws_one_trace_per_digit(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    assert not at.exception
    (figure,) = figures(at)
    digits = [t for t in figure["data"] if t["name"] in DIGITS]
    assert [t["name"] for t in digits] == sorted(DIGITS)
    assert sum(len(plotly_values(t["x"])) for t in digits) == N_TEST


def test_latent_map_gives_each_digit_its_own_colour(root, quick_tsne):
    (figure,) = figures(stored_map(root, quick_tsne))
    assert len({t["marker"]["color"] for t in figure["data"] if t["name"] in DIGITS}) == 10


def test_latent_map_title_names_the_run_and_epoch_and_the_caption_the_checkpoint(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    assert title(at) == f"T-SNE · run {RUN} · epoch 2"
    assert f"checkpoint {runs.digest(root / RUN / 'checkpoint.pt')[:8]}" in at.caption[0].value


def test_latent_map_plots_the_stored_tsne_points(root, quick_tsne, mnist):
    (figure,) = figures(stored_map(root, quick_tsne))
    zeros = next(t for t in figure["data"] if t["name"] == "0")
    expected = quick_tsne[mnist.test_labels.numpy() == 0]
    assert np.allclose(plotly_values(zeros["x"]), expected[:, 0])
    assert np.allclose(plotly_values(zeros["y"]), expected[:, 1])


def test_latent_map_rings_the_picked_point_over_the_faded_map(root, quick_tsne):
    at = app()
    at.session_state["map_picked"] = 7
    (figure,) = figures(stored_map_in(at, root, quick_tsne))
    ring = figure["data"][-1]
    assert ring["marker"]["symbol"] == "circle-open"
    assert np.allclose([plotly_values(ring["x"])[0], plotly_values(ring["y"])[0]], quick_tsne[7])
    assert all(t["marker"]["opacity"] < 0.5 for t in figure["data"][:10])


def stored_map_in(at: AppTest, root: Path, xy: np.ndarray) -> AppTest:
    path = root / RUN / "checkpoint.pt"
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), xy)
    at.switch_page(LATENT_MAP)
    return at.run()


def test_latent_map_says_how_to_read_tsne(root, quick_tsne):
    at = stored_map(root, quick_tsne)
    note = at.caption[-1].value
    assert "size of a cluster and the gaps between clusters carry no meaning" in note
    assert "perplexity" in note


def test_latent_map_after_a_cancelled_tsne_shows_pca_and_offers_to_compute(root):
    at = app()
    # What the page's "Cancel T-SNE" button leaves in the session for this checkpoint and setting.
    at.session_state["map_cancelled"] = {(runs.digest(root / RUN / "checkpoint.pt"), TSNE_CACHE)}
    at.switch_page(LATENT_MAP)
    at.run()
    assert not at.exception
    assert title(at).startswith("PCA · ")
    assert "T-SNE was cancelled" in at.warning[0].value
    assert button(at, "Compute T-SNE")
    assert not tsne_tasks()
    assert not list((root / RUN / "cache").glob(f"{TSNE_CACHE}-*.npy"))


# ---------------------------------------------------------------- settings


def test_settings_survive_a_visit_to_another_page(root):
    at = view(SAMPLES)
    at.slider(key="samples_n").set_value(100).run()
    at.switch_page(RECONSTRUCTIONS).run()
    at.radio(key="rec_how").set_value("By index").run()
    at.switch_page(TRAIN).run()
    at.switch_page(SAMPLES).run()
    assert at.slider(key="samples_n").value == 100
    at.switch_page(RECONSTRUCTIONS).run()
    assert at.radio(key="rec_how").value == "By index"
