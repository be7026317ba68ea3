"""The Timeline view (AppTest): a run's recorded frames, the slider and Play/Pause, the maps, the exports."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import ROOT, RUN, figures, messages, plotly_values, training
from tests.timeline_frames import record
from ui import timeline_view as tv
from ui.jobs import SHIPPED_RUNS
from ui.picker import RUN_KEY
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs, timeline
from vae_core.config import Config

TIMELINE = "pages/timeline.py"


@pytest.fixture(scope="module")
def small_frames(small_checkpoint) -> Path:
    """The frames the small run recorded after epochs 1 and 2 (tests/app/conftest.py)."""
    return small_checkpoint.parent / timeline.FOLDER


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory, mnist) -> Path:
    """A real 2-epoch run with a 2-d latent space, its frames recorded."""
    folder = tmp_path_factory.mktemp("flat") / "flat"
    record(folder, mnist, Config(epochs=2, limit=1024, batch_size=128, test_every=1, z_dim=2))
    return folder


@pytest.fixture
def recorded_root(root) -> Path:
    """The small run with its frames, as `root` holds it."""
    assert timeline.frame_epochs(root / RUN) == [1, 2]
    return root


def timeline_view(run: str = RUN, **state) -> AppTest:
    """The Timeline of `run`, Home drawn first for the small run (its thumbnails are kept); `state` set before."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[RUN_KEY] = RUN
    at.run()
    at.session_state[RUN_KEY] = run
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(TIMELINE)
    at.run()
    assert not at.exception, at.exception
    return at


def codes(at: AppTest) -> np.ndarray:
    """The points of the codes scatter, digit by digit, stacked: (n, 2)."""
    traces = figures(at)[0]["data"]
    return np.concatenate([np.stack([plotly_values(t["x"]), plotly_values(t["y"])], axis=1) for t in traces])


def epoch(at: AppTest) -> int:
    """The epoch the slider shows (the user's while paused, the player's while playing), checked against the
    map's title."""
    value, = (s.value for s in at.select_slider if s.label == "Epoch")
    assert f"epoch {value} ·" in figures(at)[0]["layout"]["title"]["text"]
    return value


def test_the_timeline_draws_ten_digit_traces_a_kl_heatmap_and_its_curves(recorded_root):
    at = timeline_view()
    scatter, heatmap, active, elbo = figures(at)
    assert [t["name"] for t in scatter["data"]] == [str(d) for d in range(10)]
    assert sum(len(plotly_values(t["x"])) for t in scatter["data"]) == 10 * timeline.PER_DIGIT
    assert heatmap["data"][0]["type"] == "heatmap"
    assert list(plotly_values(active["data"][0]["x"])) == [1, 2]
    assert elbo["layout"]["title"]["text"] == "ELBO per image"


def test_moving_the_slider_moves_the_points(recorded_root):
    at = timeline_view()
    last = codes(at)
    at.select_slider(key=tv.EPOCH).set_value(1).run()
    assert codes(at).shape == last.shape
    assert not np.allclose(codes(at), last)


def test_play_advances_the_epoch(recorded_root):
    at = timeline_view()
    at.select_slider(key=tv.EPOCH).set_value(1).run()
    at.button(key="timeline_play").click().run()
    assert epoch(at) == 2


def test_pause_keeps_the_epoch(recorded_root):
    at = timeline_view()
    at.button(key="timeline_play").click().run()  # from the last epoch, Play starts over at the first
    assert epoch(at) == 1
    at.button(key="timeline_play").click().run()  # Pause
    at.run()  # what a tick of the timer would run
    assert epoch(at) == 1


def test_pause_keeps_the_epoch_drawn_when_the_click_carries_the_value_a_browser_still_showed(recorded_root):
    at = timeline_view()
    at.select_slider(key=tv.EPOCH).set_value(1).run()
    at.button(key="timeline_play").click().run()  # Play: the timer's tick drew epoch 2
    assert epoch(at) == 2 and at.select_slider(key=tv.SHOWN).disabled
    # A browser a tick behind still shows epoch 1 and sends it with the click (AppTest's set_value refuses a
    # disabled widget, which a browser's message carries all the same).
    at.select_slider(key=tv.SHOWN)._value = 1
    at.button(key="timeline_play").click().run()  # Pause
    assert epoch(at) == 2 and not at.select_slider(key=tv.EPOCH).disabled


def test_a_run_without_frames_says_how_to_record_one(root):
    shutil.rmtree(root / RUN / timeline.FOLDER)  # as a run trained before frames were recorded
    at = timeline_view()
    assert any("--test-every 1" in m for m in messages(at.info)), messages(at.info)
    assert not figures(at)


def test_a_two_dimensional_run_draws_its_codes_as_they_are(recorded_root, flat_run):
    shutil.copytree(flat_run, recorded_root / "flat")
    at = timeline_view("flat")
    line = timeline.read_timeline(flat_run)
    drawn = figures(at)[0]["data"]
    first = np.stack([plotly_values(drawn[0]["x"]), plotly_values(drawn[0]["y"])], axis=1)
    np.testing.assert_allclose(first, line.loc[-1][line.labels == 0], rtol=1e-5)


def test_a_kept_aligned_tsne_is_the_map_and_named_on_screen(recorded_root, small_frames):
    line = timeline.read_timeline(small_frames.parent)
    path = recorded_root / RUN / runs.CHECKPOINT_FILE
    xy = np.random.default_rng(0).normal(size=(*line.loc.shape[:2], 2)).astype(np.float32)  # stands in for a map
    run_cache.store_cached(path, tv.tsne_name(line), runs.digest(path), xy)
    at = timeline_view()
    assert any("aligned T-SNE" in c.value for c in at.caption)
    np.testing.assert_allclose(codes(at)[:3], xy[-1][line.labels == 0][:3], rtol=1e-6)


@pytest.mark.parametrize("run", SHIPPED_RUNS)
def test_every_shipped_runs_timeline_opens_on_its_kept_map_at_its_last_epoch(run, monkeypatch):
    # Shipped with its frames and, for z_dim > 2, its aligned T-SNE: nothing computes when a class opens it.
    monkeypatch.setenv("VAE_CHECKPOINTS", str(runs.DEFAULT_ROOT))
    line = timeline.read_timeline(runs.run_dir(runs.DEFAULT_ROOT, run))
    assert line is not None, f"record {run}'s timeline: see docs/timeline.md"
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state[RUN_KEY] = run
    at.switch_page(TIMELINE)
    at.run()
    assert not at.exception, at.exception
    method = "the codes as they are" if line.z_dim == 2 else "aligned T-SNE"
    assert any(method in c.value for c in at.caption), [c.value for c in at.caption]
    assert epoch(at) == line.epochs[-1]
    assert len(codes(at)) == len(line.indices)  # every digit of the subset, on the map


def test_the_aligned_tsne_can_be_cancelled_and_the_pca_stays(recorded_root):
    at = timeline_view()
    assert any("Map: PCA" in c.value for c in at.caption)
    at.button(key="timeline_cancel").click().run()
    assert any("cancelled" in c.value for c in at.caption)
    assert figures(at)  # the PCA map is still drawn


def test_a_second_run_is_drawn_beside_at_the_nearest_recorded_epoch(recorded_root, flat_run):
    shutil.copytree(flat_run, recorded_root / "flat")
    at = timeline_view(timeline_other="flat")
    titles = [f["layout"]["title"]["text"] for f in figures(at)[:2]]
    assert titles[0].startswith(f"run {RUN} · epoch 2 · ELBO -")
    flat = ckpt.load_state(recorded_root / "flat" / runs.CHECKPOINT_FILE).history  # no history.json: a copy
    assert titles[1] == f"run flat · epoch 2 · ELBO {-flat.test_loss[-1]:.1f}"  # its own ELBO, as the first's


def test_the_npz_export_holds_the_recorded_arrays(recorded_root, small_frames):
    line = timeline.read_timeline(small_frames.parent)
    with np.load(io.BytesIO(tv.npz_bytes(line))) as saved:
        for name, value in line.to_npz_arrays().items():
            np.testing.assert_array_equal(saved[name], value)


def test_a_training_runs_timeline_shows_the_frames_recorded_since_it_was_drawn(root, small_frames):
    folder = root / RUN
    timeline.prune(folder, after=1)  # the run as it was after its first epoch
    with training(folder):
        at = timeline_view()
        assert not at.select_slider  # one frame: no slider yet
        shutil.copy2(timeline.frame_path(small_frames.parent, 2), timeline.frame_path(folder, 2))
        at.run()  # what the view's polling timer runs
    assert at.select_slider(key=tv.EPOCH).options == ["1", "2"]


def test_the_train_page_links_to_the_timeline_while_the_run_trains(root):
    with training(root / RUN):
        at = timeline_view()
        at.switch_page("pages/train.py").run()
    assert "timeline" in [link.proto.page for link in at.get("page_link")]
