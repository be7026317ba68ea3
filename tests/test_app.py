"""Every view of the app, run in-process with Streamlit's AppTest on a small real checkpoint.

Each test gets its own checkpoints folder ($VAE_CHECKPOINTS) holding a copy of
one run, "small": the tutorial's model trained 2 epochs on 1,024 real digits.
AppTest runs the entry script only on its first run (Home); after
`switch_page` it runs the page file alone, so the sidebar "Checkpoint" picker
is not there and the views fall back to the default run, the only one here.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ui import jobs
from ui.runs import RUN_KEY, store_array
from vae_core import analysis
from vae_core import checkpoint as ckpt
from vae_core.config import Config
from vae_core.data import load_mnist
from vae_core.train import fit, new_state

ROOT = Path(__file__).resolve().parent.parent
RUN = "small"
SAMPLES, RECONSTRUCTIONS, LATENT_MAP, TRAIN = ("pages/samples.py", "pages/reconstructions.py",
                                               "pages/latent_map.py", "pages/train.py")
# What pages/latent_map.py caches its T-SNE under at the default perplexity (30) and seed (0).
TSNE_CACHE = analysis.tsne_name(30, 0)
N_TEST = 10_000


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory, mnist) -> Path:
    """A real 2-epoch run on the first 1,024 training digits, saved once for the module."""
    state = new_state(Config(epochs=2, limit=1024, batch_size=128, test_every=1))
    fit(state, mnist)
    path = ckpt.checkpoint_path(tmp_path_factory.mktemp("made"), RUN)
    ckpt.save_state(state, path)
    return path


@pytest.fixture(scope="module")
def quick_tsne(small_checkpoint, mnist) -> np.ndarray:
    """A real but short T-SNE of the small run's 10,000 test codes, to pre-store in a run's cache."""
    vae = ckpt.load_state(small_checkpoint).vae.eval()
    means = analysis.latent_means(vae, mnist.test_images)
    return analysis.tsne_2d(means, early_exaggeration_iter=10, n_iter=10)


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def empty_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("VAE_CHECKPOINTS", str(root))
    return root


@pytest.fixture
def root(empty_root, small_checkpoint) -> Path:
    """A checkpoints folder of its own (caches included) holding a copy of the small run."""
    target = ckpt.checkpoint_path(empty_root, RUN)
    target.parent.mkdir()
    shutil.copy2(small_checkpoint, target)
    return empty_root


def run_info(root: Path) -> ckpt.RunInfo:
    return next(r for r in ckpt.list_runs(root) if r.name == RUN)


def app() -> AppTest:
    """The app after its first run (Home, through the entry script)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.run()
    return at


def view(page: str) -> AppTest:
    at = app()
    at.switch_page(page)
    at.run()
    return at


def messages(elements) -> list[str]:
    return [e.value for e in elements]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def plotly_values(axis) -> np.ndarray:
    """Plotly JSON holds arrays either as lists or as typed base64 blocks."""
    if isinstance(axis, dict):
        return np.frombuffer(base64.b64decode(axis["bdata"]), dtype=np.dtype(axis["dtype"]))
    return np.asarray(axis)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


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


def test_reconstructions_by_index_show_one_image_per_index(root, mnist):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input("0, 7, 42").run()
    assert not at.error
    labels = mnist.test_labels
    assert [c.split(" · ELBO")[0] for c in captions(at)] == [
        f"test #{i} · digit {int(labels[i])}" for i in (0, 7, 42)]


def test_reconstructions_by_index_refuse_text_and_say_what_is_allowed(root):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input("a, b").run()
    assert not at.exception
    assert len(at.error) == 1
    assert "whole numbers separated by commas" in at.error[0].value
    assert "a, b" in at.error[0].value
    assert not at.image


def test_reconstructions_by_index_refuse_an_index_past_the_test_set(root):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input("3, 10000").run()
    assert not at.exception
    assert len(at.error) == 1
    assert f"between 0 and {N_TEST - 1}" in at.error[0].value
    assert "these are not: 10000." in at.error[0].value
    assert not at.image


def test_reconstructions_by_index_do_not_glue_space_separated_numbers(root):
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input("3 7").run()
    assert not any(c.startswith("test #37 ") for c in captions(at))


# ---------------------------------------------------------------- train: the form


def submit(at: AppTest, label: str = "Start", **values) -> AppTest:
    """Fill the Train form's widgets (by key) and press one of its submit buttons."""
    for key, value in values.items():
        form_widget(at, key).set_value(value)
    button(at, label).click()
    return at.run()


def form_widget(at: AppTest, key: str):
    for kind in ("number_input", "text_input", "selectbox", "checkbox"):
        found = [w for w in at.get(kind) if w.key == key]
        if found:
            return found[0]
    raise KeyError(key)


def form_error(root: Path, label: str = "Start", **values) -> str:
    at = view(TRAIN)
    submit(at, label, **values)
    assert not at.exception
    assert len(at.error) == 1
    return at.error[0].value


def test_train_form_refuses_zero_epochs(root):
    message = form_error(root, train_run="new", train_epochs=0)
    assert "epochs must be between 1 and 10000, got 0" in message


def test_train_form_refuses_a_run_name_that_leaves_the_folder(root):
    message = form_error(root, train_run="../x")
    assert "invalid run name '../x'" in message
    assert "letters, digits, '-', '_' or '.'" in message and "no '..'" in message
    assert not (root.parent / "x").exists()


def test_train_form_refuses_a_zero_learning_rate(root):
    message = form_error(root, train_run="new", train_lr=0.0)
    assert "lr must be in (0, 1], got 0.0" in message


def test_train_form_refuses_a_zero_batch_size(root):
    message = form_error(root, train_run="new", train_batch=0)
    assert "batch_size must be between 1 and 60000, got 0" in message


def test_train_form_refuses_a_negative_subset(root):
    message = form_error(root, train_run="new", train_limit=-5)
    assert "Subset must be 0 (all 60,000 images) or a number of images from 1 to 60000, got -5" in message


def test_train_form_refuses_cuda_on_a_machine_without_a_gpu(root):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    message = form_error(root, train_run="new", train_device="cuda")
    assert "no usable CUDA GPU" in message and "use device 'cpu'" in message


def test_train_start_on_an_existing_run_suggests_resume(root):
    message = form_error(root, train_run=RUN)
    assert f"Run '{RUN}' exists already" in message
    assert "Resume" in message and "Overwrite" in message


def test_train_resume_of_a_missing_run_says_there_is_nothing_to_resume(root):
    message = form_error(root, "Resume", train_run="nothere")
    assert "Run 'nothere' has no checkpoint to resume yet" in message
    assert not (root / "nothere").exists()


def test_train_refusals_start_no_process(root):
    at = view(TRAIN)
    submit(at, train_run="new", train_epochs=0)
    assert not (root / "new").exists()
    assert jobs.job(root, "new").state == "none"


# ---------------------------------------------------------------- train: the run view


def test_train_without_runs_asks_to_start_one(empty_root):
    at = view(TRAIN)
    assert not at.exception
    assert messages(at.info) == ["No run yet: fill in the form below and press Start."]


def watching_the_picked_run() -> AppTest:
    # The entry script's sidebar picker keeps the chosen run under RUN_KEY; AppTest runs the page alone.
    at = app()
    at.session_state[RUN_KEY] = RUN
    at.switch_page(TRAIN)
    return at.run()


def test_train_shows_the_picked_run_with_its_elbo_chart(root):
    at = watching_the_picked_run()
    assert not at.exception
    assert messages(at.subheader) == [f"Run {RUN}"]
    (figure,) = figures(at)
    assert RUN in figure["layout"]["title"]["text"]


def test_train_shows_the_history_of_a_run_saved_without_the_cli(root):
    at = watching_the_picked_run()
    (figure,) = figures(at)
    train_trace = next(t for t in figure["data"] if t["name"] == "train ELBO")
    assert len(plotly_values(train_trace["x"])) == 2


def test_train_start_runs_a_short_job_to_the_end(root):
    at = view(TRAIN)
    submit(at, train_run="quick", train_epochs=1, train_limit=256)
    assert not at.error and not at.exception
    assert messages(at.subheader) == ["Run quick"]
    try:
        for _ in range(600):  # generous: one epoch of 256 digits takes seconds
            if not jobs.job(root, "quick").active:
                break
            time.sleep(0.5)
        assert jobs.job(root, "quick").state == "finished"
        at.run()
        assert messages(at.success) == ["Finished: trained 1 epochs."]
        assert ckpt.checkpoint_path(root, "quick").is_file()
    finally:
        jobs.stop(root, "quick")


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
