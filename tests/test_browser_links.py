"""End to end, the address bar: a reload, a link sent to someone else and back/forward keep the picked run and
the view's state (the real server in Debian's Chromium, see tests/test_browser.py)."""

from __future__ import annotations

from tests.browser import PATIENCE_MS, _home, _open, _pick_run, _settle


def _picked(page) -> str:
    return page.locator("[data-testid='stSidebar']").get_by_role("combobox", name="Checkpoint").input_value()


def test_a_reload_keeps_the_run_picked_on_samples_and_its_seed(server, page):
    url, _ = server
    _home(page, url)
    _open(page, "Samples")
    _pick_run(page, "latent-2d")
    page.get_by_label("Seed").fill("5")
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.search.includes('seed=5')")
    page.reload()
    page.wait_for_selector("h1:has-text('Samples')")
    _settle(page)
    assert "latent-2d ·" in _picked(page)
    assert page.get_by_label("Seed").input_value() == "5"


def test_a_link_sent_to_another_browser_opens_the_same_map_and_digit(server, browser):
    url, _ = server
    first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    first.set_default_timeout(PATIENCE_MS)
    _home(first, url)
    _pick_run(first, "latent-2d")
    _open(first, "Latent map")
    link = first.url
    assert "run=latent-2d" in link
    first.context.close()

    other = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # someone else, on a phone
    other.set_default_timeout(PATIENCE_MS)
    other.goto(f"{link}&point=9999")
    other.wait_for_selector("h1:has-text('Latent map')")
    _settle(other)
    assert "latent-2d ·" in _picked(other)
    assert other.locator("h3", has_text="#9999").count() == 1
    other.context.close()


def test_back_returns_to_the_view_and_run_before(server, page):
    # Streamlit pushes a new view's address first (carrying the old view's parameters), then the view pushes
    # its own state: the first Back lands on that first entry, which redraws the same view; the second leaves.
    url, _ = server
    _home(page, url)
    _pick_run(page, "latent-2d")
    _open(page, "Samples")
    page.wait_for_function("() => location.search.includes('seed=')")
    _open(page, "Traverse")
    page.wait_for_function("() => location.search.includes('index=')")
    page.go_back()
    page.wait_for_function("() => location.search.includes('index=')")
    page.go_back()
    page.wait_for_selector("h1:has-text('Samples')")
    _settle(page)
    assert "latent-2d ·" in _picked(page)
