"""At a phone's width in the real server and Chromium: chart toolbars clear of titles, Compare's table whole."""

from __future__ import annotations

from tests.browser import PATIENCE_MS, _settle

PHONE = {"width": 390, "height": 844}


def _phone(browser, url: str, path: str):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    tab.goto(f"{url}/{path}")
    tab.wait_for_selector("h1")
    _settle(tab)
    return context, tab


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] \
        and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_a_charts_toolbar_leaves_its_title_readable_on_a_phone(server, browser):
    url, _ = server
    context, tab = _phone(browser, url, "traverse")
    chart = tab.locator(".js-plotly-plot").first
    chart.wait_for()
    chart.hover()  # a tap on a phone: the toolbar appears
    toolbar = chart.locator(".modebar-container .modebar")
    toolbar.wait_for()
    title = chart.locator(".gtitle").bounding_box()
    assert title is not None and not _overlap(toolbar.bounding_box(), title)
    context.close()


def test_compares_settings_table_shows_every_setting_on_a_phone(server, browser):
    url, _ = server
    context, tab = _phone(browser, url, "compare")
    table = tab.locator("[data-testid='stDataFrame']").first
    table.wait_for()
    table.scroll_into_view_if_needed()
    _settle(tab)
    rows = tab.evaluate("el => el.querySelector('table[role=grid]') ? "
                        "el.querySelector('table[role=grid]').getAttribute('aria-rowcount') : null",
                        table.element_handle())
    scrollable = table.locator(".dvn-scroller").first
    inner, outer = scrollable.evaluate("el => [el.scrollHeight, el.clientHeight]")
    assert rows is not None and int(rows) > 11  # more settings than the 10 rows a default table shows
    assert inner <= outer + 1  # nothing hidden below: no vertical scrolling inside the table
    context.close()
