"""Home in AppTest: the model and guide as a diagram, and one live thumbnail per view."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app.helpers import ROOT, RUN, TSNE_CACHE, app, captions, messages, plotly_values, run_info
from ui.figures import DIGIT_COLOURS
from ui.home import KEPT, PICTURES, draw_thumbnails, scatter_image, thumbnails
from ui.jobs import SHIPPED_RUNS
from ui.runs import open_run
from vae_core import analysis
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs
from vae_core.config import Config
from vae_core.train import fit, new_state

VIEWS = ["train", "samples", "reconstructions", "latent_map", "timeline", "interpolate", "traverse", "draw",
         "evaluate", "compare"]  # the URL paths of the views, in order
# The cards whose thumbnail is a static chart, not a kept picture (the Timeline's: when the run has frames).
CHARTS = ("train", "timeline", "evaluate", "compare")
N_IMAGES = len(VIEWS) - len(CHARTS)


def diagram(at: AppTest) -> str:
    (chart,) = at.get("graphviz_chart")
    return chart.proto.spec


def thumbnail_columns(at: AppTest) -> list:
    """Home's cards: the bordered containers that hold exactly one picture (an image or a chart) and one link."""
    return [c for c in at.container if c.proto.flex_container.border
            and len(c.get("page_link")) == 1 and len(c.image) + len(c.get("plotly_chart")) == 1]


def latent_caption(at: AppTest) -> str:
    return next(c for c in captions(at) if "of the test codes" in c)


def links(at: AppTest) -> list[str]:
    return [link.proto.page for link in at.get("page_link")]


# ---------------------------------------------------------------- the diagram


def test_home_draws_the_model_and_guide_with_the_sizes_of_the_runs_config(empty_root, mnist):
    # Sizes unlike the tutorial's, so a literal 50 or 400 in the diagram would show.
    state = new_state(Config(z_dim=7, hidden=(32,), epochs=1, limit=256, test_every=1))
    fit(state, mnist)
    path = runs.checkpoint_path(empty_root, "odd")
    path.parent.mkdir()
    ckpt.save_state(state, path)

    at = app()
    assert not at.exception
    dot = diagram(at)
    assert "z: 7-d" in dot
    assert f"{state.config.x_dim} → 32 softplus" in dot  # encoder
    assert "7 → 32 softplus" in dot  # decoder
    assert "Normal(0, I)" in dot
    assert "50" not in dot and "400" not in dot


def test_home_without_runs_draws_the_tutorials_diagram_and_points_to_train(empty_root):
    at = app()
    assert not at.exception
    tutorial = Config()
    assert f"z: {tutorial.z_dim}-d" in diagram(at)
    assert f"{tutorial.x_dim} → {tutorial.hidden[0]} softplus" in diagram(at)
    (info,) = messages(at.info)
    assert "no trained model" in info
    assert links(at) == ["train"]
    assert not at.image and not at.get("plotly_chart")


# ---------------------------------------------------------------- the thumbnails


def test_home_shows_a_thumbnail_for_each_view(root):
    at = app()
    columns = thumbnail_columns(at)
    assert [c.get("page_link")[0].proto.page for c in columns] == VIEWS
    assert [len(c.get("plotly_chart")) for c in columns] == [int(view in CHARTS) for view in VIEWS]


def test_home_caption_says_which_run_and_epoch_the_thumbnails_show(root):
    at = app()
    assert any(f"run {RUN}, epoch 2/2" in c for c in messages(at.caption))


def test_home_elbo_thumbnail_plots_the_runs_history(root):
    chart = app().get("plotly_chart")[0]
    train, test = json.loads(chart.proto.spec)["data"]
    history = ckpt.load_state(run_info(root).path).history
    assert np.allclose(plotly_values(train["y"]), [-x for x in history.train_loss])
    assert np.allclose(plotly_values(test["y"]), [-x for x in history.test_loss])
    assert chart.proto.config and json.loads(chart.proto.config)["staticPlot"] is True


def test_home_latent_thumbnail_is_pca_until_a_tsne_is_stored(root):
    assert latent_caption(app()).startswith("PCA of the test codes")


def test_home_latent_thumbnail_shows_the_stored_tsne(root, quick_tsne):
    path = run_info(root).path
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), quick_tsne)
    assert latent_caption(app()).startswith("T-SNE of the test codes")


def test_home_latent_thumbnail_turns_to_tsne_once_a_map_is_stored_after_a_pca_was_kept(root, quick_tsne):
    assert latent_caption(app()).startswith("PCA of the test codes")
    path = run_info(root).path
    run_cache.store_cached(path, TSNE_CACHE, runs.digest(path), quick_tsne)
    assert latent_caption(app()).startswith("T-SNE of the test codes")


def test_home_keeps_its_thumbnails_on_disk_and_a_restarted_server_draws_none_again(bare_root, monkeypatch):
    root = bare_root
    assert not (root / RUN / runs.CACHE_FOLDER).exists()
    first = app()
    assert run_cache.cache_file(run_info(root).path, KEPT, run_info(root).digest, ".npz").is_file()
    st.cache_data.clear()
    st.cache_resource.clear()  # as after a restart: only the disk remains
    monkeypatch.setattr(analysis, "prior_samples", lambda *a, **k: pytest.fail("Home drew its thumbnails again"))
    again = app()
    assert not again.exception
    assert [image.proto.imgs[0].url for image in again.image] and len(again.image) == len(first.image) == N_IMAGES
    assert captions(again) == captions(first)


def test_damaged_kept_thumbnails_are_drawn_again_and_replaced(root):
    info = run_info(root)
    kept = run_cache.cache_file(info.path, KEPT, info.digest, ".npz")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"PK\x03\x04 not a zip archive")
    at = app()
    assert not at.exception
    assert len(thumbnail_columns(at)) == len(VIEWS)
    assert thumbnails(info).samples.dtype == np.uint8  # the file was rewritten whole


def test_home_with_kept_thumbnails_draws_without_importing_torch(root, small_checkpoint):
    shutil.copy2(small_checkpoint.with_name(runs.RUN_FILE), root / RUN)  # as the CLI leaves a run
    app()  # keeps the thumbnails
    script = ("import sys; import ui.home; ui.home.VIEW_MODULES = ()\n"  # no preloading: what Home itself imports
              "from streamlit.testing.v1 import AppTest\n"
              f"at = AppTest.from_file({str(ROOT / 'streamlit_app.py')!r}, default_timeout=180).run()\n"
              "assert not at.exception, at.exception\n"
              "print(len(at.image), 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    # pandas is imported: the entry takes it first, so that no session's Plotly meets it half-imported
    assert out.stdout.split() == [str(N_IMAGES), "False"]


def test_home_preloads_the_modules_of_the_other_views_in_the_background(root):
    app()
    script = ("import sys, threading\n"
              "from streamlit.testing.v1 import AppTest\n"
              f"AppTest.from_file({str(ROOT / 'streamlit_app.py')!r}, default_timeout=180).run()\n"
              "[t.join() for t in threading.enumerate() if t.name == 'preload-views']\n"
              "print('ui.runs' in sys.modules, 'torchvision.utils' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_home_rerun_draws_no_thumbnail_again(root, monkeypatch):
    at = app()
    calls = []
    monkeypatch.setattr(analysis, "prior_samples", lambda *a, **k: calls.append(a))
    at.run()
    assert not at.exception
    assert calls == []
    assert len(thumbnail_columns(at)) == len(VIEWS)


# ---------------------------------------------------------------- the latent picture


def test_scatter_image_paints_each_point_in_its_digits_colour():
    xy = np.array([[0.0, 0.0], [1.0, 1.0]])
    image = scatter_image(xy, np.array([0, 9]), side=20, dot=2)
    rgb = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in DIGIT_COLOURS]
    assert tuple(image[-1, 0]) == rgb[0]  # the lowest, leftmost point: bottom left
    assert tuple(image[0, -1]) == rgb[9]  # the highest, rightmost point: top right
    assert (image == 255).all(axis=2).sum() == 20 * 20 - 2 * 4  # two 2 x 2 dots on white


def test_every_view_in_pages_is_registered_once_and_home_links_to_each(root):
    from ui import views

    names = [view.name for view in views.VIEWS]
    assert sorted(names) == sorted(path.stem for path in (ROOT / "pages").glob("*.py")) and len(set(names)) == len(names)
    assert sorted(links(app())) == sorted(name for name in names if name != "home")


@pytest.mark.parametrize("run", SHIPPED_RUNS)
def test_the_shipped_runs_kept_thumbnails_are_what_home_draws_from_their_weights(run, monkeypatch):
    monkeypatch.setenv("VAE_CHECKPOINTS", str(runs.DEFAULT_ROOT))
    model = open_run(run)
    kept = run_cache.load_cached_set(model.path, KEPT, model.digest)
    assert kept is not None, f"open Home with {run} picked, then commit checkpoints/{run}/cache/{KEPT}-*.npz"
    drawn = draw_thumbnails(model)
    for name in PICTURES:
        assert np.abs(kept[name].astype(int) - getattr(drawn, name)).max() <= 1, name  # rounding apart
    assert np.allclose(kept["elbo_edges"], drawn.elbo_edges, atol=1e-3)
    assert np.abs(kept["elbo_counts"] - drawn.elbo_counts).sum() <= 10  # a few digits on a bin's edge, of 10,000
    assert str(kept["latent_method"]) == drawn.latent_method
    assert kept["train_loss"].tolist() == drawn.history["train_loss"]
