"""The Compare view in AppTest: curves, settings and figures of several runs, and the runs it cannot show."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

from tests.app.helpers import RUN, app, captions, figures, messages, view
from ui.picker import RUN_KEY
from ui.views import VIEWS
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs
from vae_core.config import Config
from vae_core.likelihoods import LIKELIHOODS
from vae_core.objectives import iwae_name
from vae_core.train import fit, new_state

COMPARE = "pages/compare.py"
OTHER = "lab"


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory, mnist) -> Path:
    """A real 2-epoch run of another likelihood and network: a continuous Bernoulli, two relu layers, z 8."""
    state = new_state(Config(epochs=2, limit=512, test_every=1, likelihood="continuous-bernoulli",
                             hidden=(64, 32), activation="relu", z_dim=8))
    fit(state, mnist)
    path = runs.checkpoint_path(tmp_path_factory.mktemp("other"), OTHER)
    ckpt.save_state(state, path)
    return path


def add_run(root: Path, name: str, source: Path) -> Path:
    target = runs.checkpoint_path(root, name)
    target.parent.mkdir()
    shutil.copy2(source, target)
    return target


def compare(*picked: str) -> AppTest:
    """The Compare view with `picked` chosen, as a user's earlier visit would have left them."""
    at = app()
    at.session_state["compare_runs"] = list(picked)
    at.switch_page(COMPARE)
    at.run()
    assert not at.exception, at.exception
    return at


def test_compare_overlays_the_runs_curves_and_names_the_settings_that_differ(root, other_checkpoint):
    add_run(root, OTHER, other_checkpoint)
    at = compare(RUN, OTHER)
    names = [trace["name"] for trace in figures(at)[0]["data"]]
    assert names == [f"{RUN}: train", f"{RUN}: test", f"{OTHER}: train", f"{OTHER}: test"]
    settings = at.dataframe[0].value
    assert list(settings.columns) == [RUN, OTHER]
    assert settings.loc["Hidden layers"].tolist() == ["400", "64,32"]
    assert settings.loc["Likelihood"].tolist() == ["bernoulli", "continuous-bernoulli"]
    assert ("Highlighted, the settings that differ: Subset, Batch size, Latent dimensions, "
            "Hidden layers, Activation, Likelihood.") in messages(at.caption)
    final = at.dataframe[1].value
    assert final.loc["Active units", OTHER].endswith("of 8")
    assert final.loc["log p(x) ≥", RUN] == "not estimated (Evaluate)"
    # Different likelihoods: the warning, and no ranking on one scale.
    assert any("different likelihoods (bernoulli, continuous-bernoulli)" in w for w in messages(at.warning))
    assert len([c for c in captions(at) if c.endswith("from the prior")]) == 2
    assert [c.split(":")[0] for c in captions(at) if "reconstruction" in c] == [RUN, OTHER]


def test_runs_of_one_likelihood_get_no_warning_and_their_cached_estimate_is_shown(root, small_checkpoint):
    path = add_run(root, "twin", small_checkpoint)
    digest = runs.digest(path)
    run_cache.store_cached(path, iwae_name(10, 100, 0), digest, np.full(100, -123.0))
    run_cache.store_cached(path, iwae_name(100, 50, 0), digest, np.full(50, -120.0))  # fewer images: not preferred
    at = compare(RUN, "twin")
    assert not at.warning
    assert at.dataframe[1].value.loc["log p(x) ≥", "twin"] == "-123.00 (K = 10, 100 images)"
    assert "These runs share every setting." in messages(at.caption)


def test_the_parts_toggle_draws_each_runs_reconstruction_and_kl(root, other_checkpoint):
    add_run(root, OTHER, other_checkpoint)
    at = compare(RUN, OTHER)
    at.toggle(key="compare_parts").set_value(True).run()
    titles = [f["layout"]["title"]["text"] for f in figures(at)]
    assert titles[1:] == ["E_q[log p(x | z)]", "KL(q(z | x) ‖ p(z))"]
    kl = figures(at)[2]["data"]
    assert [t["name"] for t in kl] == [f"{RUN}: test", f"{RUN}: train", f"{OTHER}: test", f"{OTHER}: train"]


def test_one_run_is_not_a_comparison(root):
    at = compare(RUN)
    assert messages(at.info) == ["Comparing needs two runs or more: train another on the Train page."]
    assert not at.get("plotly_chart")


def test_a_run_that_no_longer_loads_is_named_and_left_out(root, other_checkpoint, small_checkpoint):
    add_run(root, OTHER, other_checkpoint)
    add_run(root, "broken", small_checkpoint).write_bytes(b"garbage")
    at = compare(RUN, OTHER, "broken", "gone")
    errors = messages(at.error)
    assert any(e.startswith("Run broken no longer loads, so it is left out:") and "not a checkpoint" in e
               for e in errors)
    assert any(e.startswith("Run gone no longer loads, so it is left out: no checkpoint at") for e in errors)
    assert list(at.dataframe[0].value.columns) == [RUN, OTHER]


def test_fewer_than_two_loading_runs_stop_the_view(root):
    at = compare(RUN, "gone")
    assert messages(at.info) == ["Fewer than two of the picked runs load: pick another to compare."]
    assert not at.get("plotly_chart")


@pytest.fixture(scope="module")
def likelihood_runs(tmp_path_factory, mnist) -> dict[str, Path]:
    """A real 1-epoch run of each likelihood, a network unlike the tutorial's."""
    folder = tmp_path_factory.mktemp("likelihoods")
    made = {}
    for likelihood in LIKELIHOODS:
        state = new_state(Config(epochs=1, limit=512, likelihood=likelihood, hidden=(48, 24), activation="tanh"))
        fit(state, mnist)
        made[likelihood] = runs.checkpoint_path(folder, likelihood)
        ckpt.save_state(state, made[likelihood])
    return made


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_a_run_of_each_likelihood_opens_in_every_view(empty_root, likelihood_runs, likelihood):
    add_run(empty_root, "tutorial", likelihood_runs[likelihood])  # the default run, so every view opens it
    add_run(empty_root, "other", likelihood_runs["bernoulli"])
    for v in VIEWS:  # each opened as a link opens it
        at = view(v.path, compare_runs=["tutorial", "other"])
        assert not at.exception, (v.name, at.exception)
        assert not at.error, (v.name, messages(at.error))


def test_compare_opens_with_the_sidebars_run_first_even_when_it_is_not_among_the_newest(root, other_checkpoint):
    for age, name in enumerate((OTHER, "newer")):  # both newer than the small run, which the sidebar shows
        path = add_run(root, name, other_checkpoint)
        os.utime(path, (path.stat().st_mtime + 100 * (age + 1),) * 2)
    at = app()
    at.session_state[RUN_KEY] = RUN
    at.switch_page(COMPARE).run()
    assert not at.exception
    assert at.multiselect[0].value[0] == RUN


def test_compare_shows_each_run_in_a_column_of_both_tables(root, other_checkpoint):
    add_run(root, OTHER, other_checkpoint)
    at = compare(RUN, OTHER)
    settings, final = (frame.value for frame in at.dataframe)
    assert list(settings.columns) == list(final.columns) == [RUN, OTHER]  # a phone scrolls runs, not figures
    assert list(final.index) == ["Likelihood", "Test ELBO", "log p(x) ≥", "Active units"]
