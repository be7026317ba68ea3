"""Inputs the views bound and words they give: indices typed on Reconstructions, a run the sidebar cannot list."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.app.helpers import N_TEST, RECONSTRUCTIONS, app, messages, view
from vae_core import runs


def by_index(text: str) -> AppTest:
    at = view(RECONSTRUCTIONS)
    at.radio(key="rec_how").set_value("By index").run()
    at.text_input(key="rec_indices").input(text).run()
    return at


def test_an_index_of_400_digits_is_named_as_out_of_range(root):
    at = by_index("3, " + "9" * 400)
    assert not at.exception and not at.image
    assert messages(at.error) == [f"Each index must be between 0 and {N_TEST - 1}; these are not: "
                                  f"{'9' * 12}… (400 characters)."]


def test_entries_that_are_no_whole_numbers_are_each_named(root):
    at = by_index("4, 1e3, seven")
    assert not at.exception and not at.image
    (error,) = messages(at.error)
    assert error.endswith("got `4, 1e3, seven`: 1e3, seven are not.")


def test_more_indices_than_are_shown_at_once_draw_the_first_and_say_so(root):
    typed = list(range(100))
    at = by_index(" ".join(map(str, typed)))
    assert not at.exception and not at.error
    (warning,) = messages(at.warning)
    shown = int(re.search(r"at most (\d+) are shown", warning).group(1))  # the page's own bound
    assert warning == f"100 indices given, and at most {shown} are shown at once: showing the first {shown}."
    rows = [c for image in at.image for c in image.captions if c.startswith("test #")]
    assert [int(c.split()[1][1:]) for c in rows] == typed[:shown] and shown < len(typed)


def test_a_folder_named_checkpoint_pt_is_noted_in_the_sidebar(root):
    (root / "hollow" / runs.CHECKPOINT_FILE).mkdir(parents=True)
    at = app()
    assert any(m.startswith("Run hollow cannot be read, so it is not listed: checkpoint.pt is a folder, not a file")
               for m in messages(at.sidebar.warning))
