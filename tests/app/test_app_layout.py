"""Layouts a phone must not scramble, in AppTest: Home's cards, Traverse's rows and value labels."""

from __future__ import annotations

import pytest

from tests.app.helpers import RUN, app, view
from ui.picker import RUN_KEY
from ui.settings import DEFAULTS
from ui.views import VIEWS
from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core.config import Config
from vae_core.train import fit, new_state

TRAVERSE = "pages/traverse.py"
PICTURES = ("image", "plotly_chart")  # what a card's thumbnail may be


@pytest.fixture(scope="module")
def flat_checkpoint(tmp_path_factory, mnist):
    """A real 1-epoch run with a 2-d latent space: fewer dimensions than Traverse's default rows."""
    state = new_state(Config(epochs=1, limit=256, z_dim=2))
    fit(state, mnist)
    path = runs.checkpoint_path(tmp_path_factory.mktemp("flat"), "flat")
    ckpt.save_state(state, path)
    return path


def cards(at) -> list:
    """Home's bordered containers, in page order."""
    return [block for block in at.container if block.proto.flex_container.border]


def strip_labels(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**dimension")]


def test_home_gives_every_view_a_bordered_card_with_its_link_above_its_own_picture(root):
    found = cards(app())
    assert [card.get("page_link")[0].proto.page for card in found] == [v.name for v in VIEWS if v.name != "home"]
    for card in found:
        kinds = [node.type for node in card.children.values()]
        assert kinds[0] == "page_link", kinds  # the link heads its card: a phone cannot pair it with another
        assert len([k for k in kinds if k in PICTURES]) == 1, kinds


def test_traverse_keeps_its_default_rows_after_showing_a_run_with_fewer_dimensions(root, flat_checkpoint):
    target = runs.checkpoint_path(root, "flat")
    target.parent.mkdir()
    target.write_bytes(flat_checkpoint.read_bytes())
    at = app()
    at.session_state[RUN_KEY] = "flat"
    at.switch_page(TRAVERSE).run()
    assert len(strip_labels(at)) == 2  # all the flat run has
    at.session_state[RUN_KEY] = RUN
    at.run()
    assert not at.exception
    assert len(strip_labels(at)) == DEFAULTS["trav_rows"]


def test_traverse_labels_its_first_strip_with_the_value_of_each_column(root):
    at = view(TRAVERSE)
    strips = [image.proto.imgs[0].alt for image in at.image if image.proto.imgs[0].alt.startswith("dimension")]
    values = [-3.0 + 6.0 * i / (DEFAULTS["trav_cols"] - 1) for i in range(DEFAULTS["trav_cols"])]
    assert strips[0].endswith("labelled over the images: " + ", ".join(f"{v:+.2f}" for v in values))
    assert all("labelled" not in alt for alt in strips[1:])  # once, over the first row
