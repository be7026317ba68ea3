"""Screenshots of each view of the shipped run, at desktop and at phone size, as the README shows them, taken in
a session on the shipped runs' server (tests/conftest.py). They go to the folder printed at the end of the test
session (SCREENSHOTS, or artifacts/screenshots).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import _click_first_point, _home, _open, _phone_shot, _pick_run, _settle, _shot, _wait_loaded


@pytest.mark.slow
def test_screenshots_of_every_view_of_the_shipped_run(server, page, browser):
    url, _ = server
    _home(page, url)
    assert not page.get_by_role("button", name="Deploy").count()  # .streamlit/config.toml: toolbarMode
    _shot(page, "home")
    _open(page, "Train")
    page.wait_for_selector("[data-testid='stProgress']:has-text('100 of 100 epochs done')")
    page.locator("[data-testid='stExpander'] summary", has_text="Start a new run").click()  # fold the form
    _settle(page)
    _shot(page, "train")
    for view, name in (("Samples", "samples"), ("Reconstructions", "reconstructions")):
        _open(page, view)
        page.locator("[data-testid='stImage'] img").first.wait_for()
        _shot(page, name)
    _open(page, "Latent map")
    expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("T-SNE · run tutorial · epoch 100")  # cached: no PCA
    expect(page.locator(".js-plotly-plot .legend .traces")).to_have_count(10)
    _click_first_point(page, trace=3)  # a digit 3: ringed, shown below the map with its neighbours
    page.wait_for_selector("h3:has-text(', a 3')")
    caption = page.locator("[data-testid='stImage']", has_text="the digit, 3 reconstructions")
    caption.wait_for()
    _wait_loaded(page, caption.locator("img"))
    _settle(page)
    _shot(page, "latent_map")
    assert _phone_shot(browser, url, "latent_map", "phone_latent_map") >= 340
    _phone_shot(browser, url, "train", "phone_train")
    _phone_shot(browser, url, "", "phone_home")
    for view, name in (("Interpolate", "interpolate"), ("Traverse", "traverse")):
        _open(page, view)
        page.locator("[data-testid='stImage'] img").first.wait_for()
        _shot(page, name)
    _phone_shot(browser, url, "traverse", "phone_traverse")
    _pick_run(page, "latent-2d")  # the shipped 2-d run: its codes beside the decoded manifold, no T-SNE
    _open(page, "Latent map")
    page.locator("[data-testid='stImage']", has_text="prior's quantiles").locator("img").wait_for()
    expect(page.locator(".js-plotly-plot .gtitle")).to_have_text("z_loc · run latent-2d · epoch 100")
    _settle(page)
    _shot(page, "latent_map_2d")
