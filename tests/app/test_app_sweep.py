"""The Train page's sweep form, its progress, Stop all and Compare this sweep (AppTest, a real local Ray)."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.app.helpers import RUN, TRAIN, button, figures, messages, view
from ui import sweep_view
from ui.compare_view import PICKED, SWEEP
from vae_core import sweep

PATIENCE_POLLS = 2400  # of 0.25 s: events are awaited, never timed
COMPARE = "pages/compare.py"


def _sweep_form(at, **values):
    for key, value in values.items():
        at.session_state[key] = value
    at.run()
    button(at, "Train the sweep").click()
    return at.run()


def test_a_sweep_value_out_of_range_is_named_under_its_field_in_the_forms_words(root):
    at = _sweep_form(view(TRAIN), **{sweep_view.FIELDS_KEY: ["z_dim"], sweep_view.values_key("z_dim"): "1,10"})
    assert not at.exception
    assert messages(at.error) == ["Latent dimensions must be between 2 and 4096, got 1 (the views map codes in two "
                                  "dimensions: use at least 2)."]
    assert sweep.list_sweeps(root) == []


def test_a_sweep_whose_runs_exist_is_refused_under_its_button(root):
    (root / "study-beta2").mkdir()
    at = _sweep_form(view(TRAIN), **{sweep_view.FIELDS_KEY: ["beta"], sweep_view.values_key("beta"): "0.5, 2"})
    assert messages(at.error) == ["1 of this sweep's run names exist already (study-beta2): choose another sweep "
                                  "name; nothing was started"]


def test_compare_this_sweep_draws_its_figures_against_the_swept_values(root):
    for seed in (1, 2):  # two copies of the small run stand for a finished sweep's runs
        shutil.copytree(root / RUN, root / f"mini-seed{seed}")
    grid = {"seed": [1, 2]}
    sweep.write_file(root, "mini", grid, sweep.expand("mini", grid), {"epochs": 2})
    at = view(COMPARE, **{PICKED: ["mini-seed1", "mini-seed2"], SWEEP: "mini"})
    assert not at.exception
    assert any(h.value.startswith("Sweep mini: its figures against the values swept") for h in at.subheader)
    (figure,) = [f for f in figures(at) if len(f["data"]) == 3]  # test ELBO, active units, KL: no estimate kept
    assert figure["layout"]["xaxis3"]["title"]["text"] == "Seed"
    assert [figure["layout"][f"yaxis{i}"]["title"]["text"] for i in ("", "2", "3")] == [
        "test ELBO", "active units", "KL (nats)"]


@pytest.mark.slow
def test_a_sweep_started_from_the_form_trains_on_ray_shows_its_progress_and_opens_in_compare(root, monkeypatch):
    at = _sweep_form(view(TRAIN), **{sweep_view.NAME_KEY: "form", sweep_view.FIELDS_KEY: ["beta"],
                                     sweep_view.values_key("beta"): "0.5,2", "sweep_epochs": 1, "sweep_limit": 256})
    assert not at.exception and not at.error
    assert sweep.list_sweeps(root) == [] or sweep.list_sweeps(root) == ["form"]  # its driver writes it once Ray is up
    for _ in range(PATIENCE_POLLS):
        rows = sweep.progress(root, sweep.read_file(root, "form")) if sweep.list_sweeps(root) else []
        if rows and all(r.state == "finished" for r in rows):
            break
        time.sleep(0.25)
    assert [r.run for r in rows] == ["form-beta0.5", "form-beta2"] and all(r.epoch == 1 for r in rows)
    at.run()
    (table,) = [t.value for t in at.dataframe if "state" in t.value.columns]  # the sweep's progress
    assert list(table["state"]) == ["finished", "finished"] and list(table.index) == ["form-beta0.5", "form-beta2"]
    button(at, "Compare this sweep").click()
    at.run()
    assert at.session_state[PICKED] == ["form-beta0.5", "form-beta2"] and at.session_state[SWEEP] == "form"
    assert not at.exception
