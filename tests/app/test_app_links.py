"""The address bar: the picked run and each view's main state in it, read back by a reload or a link, never trusted."""

from __future__ import annotations

import shutil

from streamlit.testing.v1 import AppTest

from tests.app.helpers import LATENT_MAP, ROOT, RUN, SAMPLES, TSNE_CACHE, messages
from ui.picker import PICKER_KEY, RUN_KEY
from vae_core import run_cache, runs

INTERPOLATE = "pages/interpolate.py"


def opened(path: str | None = None, **params: str) -> AppTest:
    """A new session opened from a link: the entry script with `params` in the address bar, then `path`."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.query_params.update(params)
    at.run()
    if path:
        at.switch_page(path)
        at.query_params.update(params)  # AppTest's switch_page runs the page alone, as a followed link does
        at.run()
    return at


def with_second_run(root) -> str:
    shutil.copytree(root / RUN, root / "second")
    return "second"


def test_a_link_naming_a_run_opens_that_run(root):
    second = with_second_run(root)
    at = opened(run=second)
    assert at.session_state[RUN_KEY] == second
    assert at.selectbox(key=PICKER_KEY).value == second


def test_the_picked_run_is_in_the_address_bar(root):
    at = opened()
    assert at.query_params["run"] == RUN


def test_a_link_naming_an_unknown_run_falls_back_with_a_note(root):
    at = opened(run="../../etc")
    assert at.query_params["run"] == RUN
    assert any("names run '../../etc'" in m for m in messages(at.info))


def test_a_link_sets_the_samples_seed_and_count(root):
    at = opened(SAMPLES, seed="7", n="25")
    assert (at.session_state["samples_seed"], at.session_state["samples_n"]) == (7, 25)
    assert not at.exception


def test_a_link_with_an_out_of_range_value_keeps_the_default_and_says_why(root):
    at = opened(SAMPLES, n="100000")
    assert at.session_state["samples_n"] == 64
    assert any("n='100000' is outside 16 to 400" in m for m in messages(at.info))


def test_a_link_opens_the_map_at_its_perplexity_with_its_point_picked(root, quick_tsne):
    path = runs.checkpoint_path(root, RUN)
    name = TSNE_CACHE.replace("-p30-", "-p40-")
    run_cache.store_cached(path, name, runs.digest(path), quick_tsne)
    at = opened(LATENT_MAP, perplexity="40", point="9999")
    assert (at.session_state["map_perplexity"], at.session_state["map_picked"]) == (40, 9999)
    assert any("#9999" in s.value for s in at.subheader)


def test_a_changed_setting_goes_to_the_address_bar(root):
    at = opened(SAMPLES)
    at.number_input(key="samples_seed").set_value(12).run()
    assert at.query_params["seed"] == "12"


def test_a_link_sets_both_ends_of_the_interpolation(root):
    at = opened(INTERPOLATE, a="5", b="9999")
    assert (at.session_state["pair_a"], at.session_state["pair_b"]) == (5, 9999)
    assert not at.exception

