"""End to end: the real `streamlit run streamlit_app.py` driven by Playwright in Debian's Chromium.

One story, in order, on a server of its own (it trains a run, which the other views' tests would see): set
Reconstructions to two indices, start a run on the Train page and press Stop at once (it stops with the epochs
it finished), switch pages and back (the settings are kept), Resume from the button beside the stopped run (it
reaches its own target), and open its Latent map while it trains (the PCA of its newest checkpoint, no T-SNE
until the trainer maps its last one; that map's title, caption and points belong to one checkpoint version). On the shipped runs' server (tests/conftest.py), a user compares the shipped
runs, and a deep link reaches a server that has just started. The screenshots of every view are in
tests/test_browser_screenshots.py.
"""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser import (_home, _open, _phone_shot, _plotted_points, _progress, _serve_shipped, _settle, _shot,
                           _wait_progress)
from ui.jobs import SHIPPED_RUNS


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own over copies of the shipped runs."""
    with _serve_shipped(tmp_path) as served:
        yield served


@pytest.mark.slow(weight=10)  # the suite's longest test: tests/conftest.py gives it a worker's share of its own
def test_a_user_starts_stops_resumes_and_maps_a_run_while_it_trains(own_server, page):
    import numpy as np

    url, checkpoints = own_server
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
    # At once: the process is still starting, or (forked from the preloaded fork server in a fraction of a
    # second) has just begun; either way it stops with the epochs it finished, which the page names.
    page.get_by_role("button", name="Stop training").click()
    _wait_progress(page, "Stopped")
    _settle(page)
    done = int(re.search(r"(\d+) of 4 epochs done", _progress(page)).group(1))
    assert done < 4
    assert not page.locator("[data-testid='stAlert']", has_text="Finished").count()
    assert (checkpoints / "e2e" / "checkpoint.pt").exists() == (done > 0)  # what it finished, nothing more

    _open(page, "Reconstructions")  # the picker follows the started run
    if done == 0:
        page.wait_for_selector("[data-testid='stAlert']:has-text('Run e2e has no finished epoch')")
    else:
        expect(page.locator("[data-testid='stImage']", has_text="test #7 ")).to_have_count(1)
    _open(page, "Train")
    assert page.get_by_label("Epochs", exact=True).input_value() == "4"
    page.get_by_role("button", name="Resume to epoch 4").click()  # beside the stopped run
    _wait_progress(page, "Training")
    while not (checkpoints / "e2e" / "checkpoint.pt").exists():
        page.wait_for_timeout(200)

    _open(page, "Latent map")  # while it trains: epoch 1 is saved, more are coming
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('PCA')")
    # No T-SNE chases the checkpoints the run saves: the PCA says why (or training has just ended, and the map
    # is the trainer's).
    training = page.locator("[data-testid='stAlert']", has_text="Run e2e is training: this is the PCA")
    expect(training.or_(page.locator(".js-plotly-plot .gtitle", has_text="T-SNE"))).to_be_visible()
    expect(page.locator("[data-testid='stProgress']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot .gtitle:has-text('T-SNE')")  # the trainer's map of its last epoch
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
    with _serve_shipped(tmp_path) as (url, _):
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
