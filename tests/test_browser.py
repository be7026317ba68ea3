"""End to end: the real `streamlit run streamlit_app.py` driven by Playwright in Debian's Chromium.

The server sees a temporary checkpoints folder holding copies of the
shipped runs (tutorial, latent-2d). One story, in order: set Reconstructions to two indices,
start a run on the Train page and press Stop at once (it stops, nothing
saved), switch pages and back (the settings are kept), Resume from the
button beside the stopped run (it reaches its own target), and open its
Latent map while it trains (the T-SNE map's title, caption and points belong
to one checkpoint version). A second session takes a screenshot of each view
of the shipped run, at desktop and at phone size, as the README shows them. Screenshots go to the
folder printed at the end of the test session (SCREENSHOTS, or
artifacts/screenshots).
Under CI=true a missing Chromium fails the test instead of skipping it.
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
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's Chromium is not installed: apt-get install -y chromium"
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


def _with_tutorial(folder: Path) -> Path:
    """`folder` holding copies of the shipped runs: the server writes its caches there, not into the project."""
    for run in SHIPPED_RUNS:
        shutil.copytree(ROOT / "checkpoints" / run, folder / run, ignore=shutil.ignore_patterns(".lock", "train.log", "*.tmp"))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    checkpoints = _with_tutorial(tmp_path_factory.mktemp("checkpoints"))
    with _serve(checkpoints, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url, checkpoints


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh tab: a new Streamlit session."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(PATIENCE_MS)
    yield tab
    context.close()


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


def test_a_user_starts_stops_resumes_and_maps_a_run_while_it_trains(server, page):
    import numpy as np

    url, checkpoints = server
    _home(page, url)

    _open(page, "Reconstructions")  # settings made here must survive the trip through Train
    page.locator("[data-testid='stSidebar'] label", has_text="By index").click()
    _settle(page)
    page.get_by_role("textbox", name="Indices (0 to 9999, comma separated)").fill("3 7")
    page.keyboard.press("Enter")
    page.locator("[data-testid='stImage']", has_text="test #7 ").wait_for()  # the rerun has drawn them
    _settle(page)

    _open(page, "Train")
    page.get_by_label("Run name", exact=True).fill("e2e")
    page.get_by_label("Epochs", exact=True).fill("4")
    page.get_by_label("Subset", exact=True).fill("20000")
    page.get_by_role("button", name="Start").click()
    page.wait_for_selector("h3:has-text('Run e2e')")
    page.get_by_role("button", name="Stop training").click()  # at once: the process is still starting
    _wait_progress(page, "Stopped")
    _settle(page)
    assert "0 of 4 epochs done" in _progress(page)
    assert not page.locator("[data-testid='stAlert']", has_text="Finished").count()
    assert not (checkpoints / "e2e" / "checkpoint.pt").exists()

    _open(page, "Reconstructions")  # the picker follows the started run, which has no epoch to show
    page.wait_for_selector("[data-testid='stAlert']:has-text('Run e2e has no finished epoch')")
    _open(page, "Train")
    assert page.get_by_label("Epochs", exact=True).input_value() == "4"
    page.get_by_role("button", name="Resume to epoch 4").click()  # beside the stopped run
    _wait_progress(page, "Training")
    while not (checkpoints / "e2e" / "checkpoint.pt").exists():
        page.wait_for_timeout(200)

    _open(page, "Latent map")  # while it trains: epoch 1 is saved, more are coming
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('PCA')")
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('T-SNE')")
    _settle(page)
    title = page.locator(".js-plotly-plot .gtitle").text_content()
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="checkpoint ").first.text_content()
    version = caption.split("checkpoint ")[1].split(" ")[0]
    epoch = int(title.split("epoch ")[1])
    assert f"after epoch {epoch})" in caption  # title and caption name one checkpoint
    (cached,) = (checkpoints / "e2e" / "cache").glob(f"tsne-*-{version}*.npy")
    expected = np.load(cached)
    plotted = np.array(_plotted_points(page))
    assert np.allclose(plotted, expected[np.lexsort((expected[:, 1], expected[:, 0]))], atol=1e-3)

    _open(page, "Train")
    _wait_progress(page, "Finished")  # Resume reached the run's own target, not the form's
    assert "4 of 4 epochs done" in _progress(page)

    _open(page, "Reconstructions")  # four page switches later, still the two typed indices
    assert page.get_by_role("textbox", name="Indices (0 to 9999, comma separated)").input_value() == "3 7"
    page.locator("[data-testid='stImage']", has_text="test #7 ").wait_for()


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


def test_a_user_compares_the_shipped_runs_and_changes_the_pick(server, page, browser):
    url, _ = server
    page.goto(f"{url}/compare")
    page.wait_for_selector("h1:has-text('Compare runs')")
    _settle(page)
    # Plotly draws after the script has finished: wait for what it draws rather than read it at once.
    expect(page.locator(".js-plotly-plot .legend .traces")).to_have_count(2 * len(SHIPPED_RUNS))  # train and test
    expect(page.get_by_text("These runs use different likelihoods (bernoulli, binarized)")).to_have_count(1)
    expect(page.locator("[data-testid='stImage']", has_text="from the prior")).to_have_count(len(SHIPPED_RUNS))
    page.get_by_text("Show the ELBO's two parts").click()
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('KL(q(z | x)')")
    _settle(page)
    _shot(page, "compare")
    # Take latent-2d out of the comparison: its curves, samples and reconstructions go.
    page.get_by_role("button", name="Remove latent-2d").click()
    _settle(page)
    page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot')[0]"
                           ".querySelectorAll('.legend .traces').length === n", arg=2 * (len(SHIPPED_RUNS) - 1))
    _settle(page)
    page.locator("[data-testid='stImage']", has_text="latent-2d").first.wait_for(state="detached")
    expect(page.locator("[data-testid='stImage']", has_text="from the prior")).to_have_count(len(SHIPPED_RUNS) - 1)
    _phone_shot(browser, url, "compare", "phone_compare")


def test_a_deep_link_to_a_freshly_started_server_gets_the_full_app(tmp_path, page):
    with _serve(_with_tutorial(tmp_path), tmp_path / "streamlit.log") as url:
        page.goto(f"{url}/samples")  # the server's very first request
        page.wait_for_selector("h1:has-text('Samples from the prior')")
        _settle(page)
        expect(page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map")).to_have_count(1)
        expect(page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']")).to_have_count(1)


def _outward_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None when it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_server_answers_this_machine_only(server):
    url, _ = server
    assert urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no network address besides loopback")
    port = url.rsplit(":", 1)[1]
    with pytest.raises(OSError):  # refused: .streamlit/config.toml binds to localhost
        urllib.request.urlopen(f"http://{outward}:{port}/_stcore/health", timeout=5)
