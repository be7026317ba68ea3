"""The Train page in the real server and Debian's Chromium: what a user sees right after pressing Start.

Two tabs are two sessions of one server: one starts a run, which holds the
server (VAE_MAX_JOBS is 1), and the other, opened before that, presses Start.
Screenshots go to the folder the other browser tests write to (tests/browser.py: SCREENSHOTS).
"""

from __future__ import annotations

import pytest

from tests.app.helpers import wait_for
from tests.browser import IDLE, PATIENCE_MS, SCREENSHOTS, _serve_shipped
from ui import jobs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own (not the shared one of tests/conftest.py): its tests start runs."""
    with _serve_shipped(tmp_path_factory.mktemp("train")) as served:
        yield served


def _train_tab(browser, url: str, width: int, height: int):
    """A new session on the Train page, drawn and idle."""
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    tab.goto(f"{url}/train")
    tab.wait_for_selector("h1:has-text('Train')")
    tab.wait_for_selector(IDLE)
    return tab


@pytest.mark.parametrize("width, height", [(1400, 1000), (390, 844)])
def test_a_start_refused_in_a_second_tab_says_why_under_start_and_keeps_the_values(server, browser, width, height):
    url, checkpoints = server
    run = f"first-{width}"
    waiting = _train_tab(browser, url, width, height)  # opened while nothing trains: its form is open
    starter = _train_tab(browser, url, width, height)
    starter.get_by_label("Run name", exact=True).fill(run)
    starter.get_by_label("Epochs", exact=True).fill("500")  # trains on until this test stops it
    starter.get_by_label("Subset", exact=True).fill("2000")
    starter.get_by_role("button", name="Start").click()
    starter.wait_for_selector(f"h3:has-text('Run {run}')")
    try:
        waiting.get_by_label("Run name", exact=True).fill("second")
        waiting.get_by_label("Epochs", exact=True).fill("2")
        waiting.get_by_role("button", name="Start").click()
        reason = waiting.locator("[data-testid='stAlert']", has_text=f"Run {run} is training")
        reason.wait_for()  # visible: not folded away inside a collapsed form
        waiting.wait_for_selector(IDLE)
        start, shown = waiting.get_by_role("button", name="Start").bounding_box(), reason.bounding_box()
        assert 0 <= shown["y"] - (start["y"] + start["height"]) <= 48  # right under the button pressed
        assert waiting.get_by_label("Run name", exact=True).input_value() == "second"
        assert waiting.get_by_label("Epochs", exact=True).input_value() == "2"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        waiting.screenshot(path=str(SCREENSHOTS / f"train_refused_start_{width}.png"))
    finally:
        jobs.stop(checkpoints, run)
        wait_for(checkpoints, run, lambda j: not j.active)
        waiting.context.close()
        starter.context.close()


def test_the_learning_rate_field_shows_a_typed_5e_05_as_it_is(server, browser):
    url, _ = server
    tab = _train_tab(browser, url, 1400, 1000)
    field = tab.get_by_label("Learning rate", exact=True)
    field.fill("0.00005")
    field.press("Tab")  # the browser formats the value it keeps
    tab.wait_for_selector(IDLE)
    assert field.input_value() == "0.00005"
    tab.context.close()
