"""A run's History (vae_core.history): one definition that a checkpoint's record and history.json are read by."""

from __future__ import annotations

import json

import pytest

from vae_core import runs
from vae_core.history import History


def test_a_history_json_without_the_elbos_parts_reads_with_them_empty(tmp_path):
    (tmp_path / runs.HISTORY_FILE).write_text(json.dumps({"train_loss": [190.5], "test_epochs": [0],
                                                          "test_loss": [180.0]}))
    history = runs.read_history(tmp_path)
    assert history == {**History().to_dict(), "train_loss": [190.5], "test_epochs": [0], "test_loss": [180.0]}


@pytest.mark.parametrize("raw, why", [
    ({"train_loss": [190.5], "test_epoch": [0]}, "unknown field 'test_epoch'"),
    ({"test_epochs": [0.5]}, r"test_epochs holds 0\.5, not a whole number"),
    ({"test_kl": [True]}, "test_kl holds True, not a number"),
    ({"train_loss": "190.5"}, "train_loss is a str, not a list"),
    ([190.5], "it is a list, not a mapping of lists"),
], ids=["misspelt field", "fractional epoch", "boolean", "not a list", "not a mapping"])
def test_a_history_unlike_the_dataclass_is_refused_naming_why_and_history_json_reads_as_none(tmp_path, raw, why):
    with pytest.raises(ValueError, match=why):
        History.from_dict(raw)
    (tmp_path / runs.HISTORY_FILE).write_text(json.dumps(raw))
    assert runs.read_history(tmp_path) is None
