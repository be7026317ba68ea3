"""The end-to-end tests' helpers: the real `streamlit run streamlit_app.py` on a free port, Debian's Chromium, and
the steps a user takes in it (open a view, pick a run, wait for the script to settle, take a screenshot).

The fixtures that use them (`server`, `browser`, `page`) are in tests/conftest.py. Under CI=true a missing
Chromium fails the test instead of skipping it. Screenshots go to SCREENSHOTS (artifacts/screenshots by default).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ui.jobs import SHIPPED_RUNS


# How long one browser step may wait: no limit in practice (a machine kept busy by two spinning processes
# beside 3 test workers took over 120 s to paint a view), only an end to a hang.
PATIENCE_MS = 900_000
expect.set_options(timeout=PATIENCE_MS)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _chromium() -> str:
    """Debian's Chromium: its headless shell (the same build without a browser's windows: about a tenth less
    CPU over the browser tests), else the browser; $TEST_CHROMIUM names another binary."""
    path = (os.environ.get("TEST_CHROMIUM") or shutil.which("chromium-headless-shell")
            or shutil.which("chromium"))
    if path is None:
        message = "Debian's Chromium is not installed: apt-get install -y chromium-headless-shell (or chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(checkpoints: Path, log_path: Path):
    """The real `streamlit run streamlit_app.py` on a free port; yields its URL."""
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VAE_CHECKPOINTS": str(checkpoints)})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"streamlit did not answer on {url}; see {log_path}")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextlib.contextmanager
def _serve_shipped(folder: Path):
    """The real server over copies of the shipped runs made in `folder`; yields (its URL, its checkpoints folder)."""
    checkpoints = _with_tutorial(folder / "checkpoints")
    with _serve(checkpoints, folder / "streamlit.log") as url:
        yield url, checkpoints


def _with_tutorial(folder: Path) -> Path:
    """`folder` holding copies of the shipped runs: the server writes its caches there, not into the project."""
    for run in SHIPPED_RUNS:
        shutil.copytree(ROOT / "checkpoints" / run, folder / run, ignore=shutil.ignore_patterns(".lock", "train.log", "*.tmp"))
    return folder



def _settle(page) -> None:
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(500)  # let the last deltas paint


def _open(page, title: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.wait_for_selector(f"h1:has-text('{title}')")
    _settle(page)


def _pick_run(page, name: str) -> None:
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
    page.get_by_role("option").filter(has_text=name).first.click()
    _settle(page)


def _click_first_point(page, trace: int) -> None:
    """Click the first point of a scatter trace where Plotly drew it."""
    x, y = page.evaluate("""trace => {
        const gd = document.querySelector('.js-plotly-plot');
        gd.scrollIntoView();  // the map can reach below the window's fold
        const layout = gd._fullLayout, box = gd.getBoundingClientRect();
        const data = gd._fullData[trace];
        return [box.left + layout._size.l + layout.xaxis.l2p(data.x[0]),
                box.top + layout._size.t + layout.yaxis.l2p(data.y[0])];
    }""", trace)
    page.mouse.click(x, y)


def _wait_loaded(page, image) -> None:
    """Wait until an <img> has loaded a real picture."""
    page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle())


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _home(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("h1:has-text('See a VAE learn')")
    _settle(page)


def _progress(page) -> str:
    return page.locator("[data-testid='stProgress']").first.text_content() or ""


def _wait_progress(page, text: str, polls: int = 3000) -> None:
    """Wait (by polling, no wall-clock limit) until the run's progress line says `text`."""
    for _ in range(polls):
        assert not page.locator("[data-testid='stAlert']", has_text="failed").count(), page.content()[:2000]
        if text in _progress(page):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"the progress never said {text!r}; it says {_progress(page)!r}")


def _plotted_points(page) -> list[list[float]]:
    """Every (x, y) drawn on the map, digits' traces only, sorted."""
    return page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        const points = [];
        for (const t of gd._fullData) if (t.name !== 'picked' && t.name !== 'A and B') for (let i = 0; i < t.x.length; i++) points.push([t.x[i], t.y[i]]);
        return points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    }""")


def _phone_shot(browser, url: str, path: str, name: str) -> float | None:
    """A screenshot at a phone's size (390 x 844 CSS px), the whole page; the chart's width if there is one."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    tab.goto(f"{url}/{path}")
    tab.wait_for_selector("h1")
    _settle(tab)
    tab.wait_for_timeout(1500)
    height = tab.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    tab.set_viewport_size({"width": 390, "height": max(844, min(height, 4000))})
    _settle(tab)
    assert tab.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing cut on the right
    _shot(tab, name)
    width = tab.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); "
                         "return p ? p.getBoundingClientRect().width : null; }")
    context.close()
    return width

