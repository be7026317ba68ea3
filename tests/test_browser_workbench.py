"""End to end, the latent-space workbench: the real server in Debian's Chromium (see tests/test_browser.py).

One story: click A and B on the shipped run's map and interpolate between them,
move a traversal slider, draw a 7 on the canvas with mouse strokes and use it
as A, then cancel a log p(x) estimate at once and run one to its gap. Then
the map's size at a desktop's and a phone's window, and Draw's toolbar on a
phone, where nothing hovers.
"""

from __future__ import annotations

import pytest

from tests.browser import PATIENCE_MS, _click_first_point, _home, _open, _pick_run, _settle, _shot



def _strokes(page, canvas, points: list[tuple[float, float]]) -> None:
    """Draw one stroke through `points` (fractions of the canvas) with the mouse."""
    box = canvas.bounding_box()
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(at, at[1:]):
        for step in range(1, 11):
            page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    page.mouse.up()


@pytest.mark.slow
def test_a_user_picks_a_and_b_on_the_map_traverses_and_draws_a_digit(server, page):
    url, _ = server
    _home(page, url)
    _pick_run(page, "tutorial")
    _open(page, "Latent map")
    picked = {}
    for trace, end in ((7, "A"), (1, "B")):  # a 7 as A, a 1 as B, clicked on the map
        page.locator(".js-plotly-plot").first.evaluate("e => e.scrollIntoView()")  # the whole map in the window
        _click_first_point(page, trace=trace)
        heading = page.locator("h3", has_text=f", a {trace}")
        heading.wait_for()
        picked[end] = heading.text_content().split("#")[1].split(",")[0]
        page.get_by_role("button", name=f"Use as {end}").click()
        _settle(page)

    page.get_by_role("link", name="Interpolate between A and B").click()
    page.wait_for_selector("h1:has-text('Interpolate')")
    _settle(page)
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="From A, ").first.text_content()
    assert f"From A, test #{picked['A']} (a 7), to B, test #{picked['B']} (a 1)" in caption
    assert page.locator("[data-testid='stImage'] img").count() == 2  # the linear and the slerp strip
    assert page.get_by_role("button", name="Slerp as an animated GIF (there and back)").count() == 1

    _open(page, "Traverse")
    rows = page.locator("[data-testid='stMarkdown'] strong", has_text="dimension ")
    assert rows.count() == 10
    slider = page.get_by_role("slider", name="Rows")
    for _ in range(100):  # a key pressed while a rerun redraws the slider can be lost: step until it reads 6
        value = int(slider.input_value())
        if value == 6:
            break
        slider.focus()
        page.keyboard.press("ArrowLeft" if value > 6 else "ArrowRight")
        page.wait_for_timeout(100)
    assert slider.input_value() == "6"
    for _ in range(600):  # the rerun draws six rows (polls, no wall-clock limit)
        if rows.count() == 6:
            break
        page.wait_for_timeout(200)
    assert rows.count() == 6

    _open(page, "Draw")
    canvas = page.locator("canvas").last
    canvas.scroll_into_view_if_needed()
    _strokes(page, canvas, [(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])  # a 7: its bar, then its stem
    metric = page.locator("[data-testid='stMetric']", has_text="ELBO")
    metric.wait_for()
    _settle(page)
    assert float(metric.text_content().split("ELBO")[1].split("nats")[0]) < 0
    assert page.locator("[data-testid='stImage']", has_text=" · ").count() == 8  # its nearest test digits
    _shot(page, "draw")
    page.get_by_role("button", name="Use as A").click()
    _settle(page)
    _open(page, "Interpolate")
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="From A, ").first.text_content()
    assert f"From A, your drawing, to B, test #{picked['B']} (a 1)" in caption

    _open(page, "Evaluate")  # the shipped run's copy: estimates are cached there
    page.get_by_role("button", name="Estimate log p(x) with K = 100 on 1,000 images").click()
    page.get_by_role("button", name="Cancel").click()  # as soon as it shows
    page.locator("[data-testid='stAlert']", has_text="The estimate was cancelled").wait_for()
    _settle(page)
    page.get_by_role("spinbutton", name="Samples per image (K)").fill("10")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stMetric']").first.wait_for()
    _settle(page)
    page.get_by_role("button", name="Estimate log p(x) with K = 10 on 1,000 images").click()
    gap = page.locator("[data-testid='stMetric']", has_text="Gap")
    gap.wait_for()
    assert float(gap.text_content().split("Gap")[1].split("nats")[0]) > 0


def _tab(browser, url: str, view: str, width: int, height: int):
    """A fresh session opened straight on a view, in a window of the given size (a phone's: touch, no hover)."""
    phone = width < 640
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone)
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    tab.goto(f"{url}/{view}")
    tab.wait_for_selector("h1")
    _settle(tab)
    return context, tab


@pytest.mark.parametrize("width, height", [(1400, 1000), (390, 844)])
def test_the_latent_map_is_square_fills_its_column_and_fits_the_window(server, browser, width, height):
    url, _ = server
    context, tab = _tab(browser, url, "latent_map", width, height)
    try:
        tab.wait_for_selector(".js-plotly-plot")
        _settle(tab)
        box = tab.evaluate("""() => {
            const gd = document.querySelector('.js-plotly-plot'), chart = gd.getBoundingClientRect();
            const column = gd.closest('[data-testid=stVerticalBlock]').parentElement.getBoundingClientRect();
            const below = document.querySelector('[data-testid=stDownloadButton]').getBoundingClientRect();
            return {chart: [chart.width, chart.height, chart.bottom], column: column.width, below: below.top,
                    points: [gd._fullLayout._size.w, gd._fullLayout._size.h]};
        }""")
        _shot(tab, f"latent-map-{width}")
        chart_width, chart_height, chart_bottom = box["chart"]
        side = min(box["points"])  # the points' square: scaleanchor keeps one unit equal on both axes
        assert chart_width >= 0.97 * box["column"]  # the chart spans its column
        assert chart_height <= height  # the whole chart fits the window
        assert side >= 0.75 * min(box["column"], height - 200)  # the square takes what the column and window allow
        assert box["below"] >= chart_bottom - 1  # the PNG download sits under the chart, not over it
    finally:
        context.close()


def test_draws_toolbar_shows_without_hovering_on_a_phone(server, browser):
    url, _ = server
    context, tab = _tab(browser, url, "draw", 390, 844)
    try:
        tab.locator("canvas").last.wait_for()
        toolbar = tab.locator(".dc-toolbar")  # inside the canvas's shadow root: Playwright's CSS locators pierce it
        toolbar.wait_for()
        _settle(tab)
        assert toolbar.evaluate("e => getComputedStyle(e).opacity") == "1"
        assert toolbar.get_by_role("button").count() >= 3  # undo, redo, clear at least
        tabs = tab.get_by_role("tablist").bounding_box()
        assert toolbar.bounding_box()["y"] >= tabs["y"] + tabs["height"] - 1  # under the tabs, not over them
        _shot(tab, "draw-phone")
    finally:
        context.close()
