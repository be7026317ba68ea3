"""End to end, the Timeline view of the shipped tutorial run: the real server in Debian's Chromium (see
tests/test_browser.py, whose server holds copies of the shipped runs and their recorded frames).

One story on a desktop: the view opens on the aligned T-SNE the run ships in its cache (without it: on the
PCA of the codes while the aligned T-SNE computes, and the user cancels the T-SNE), the user moves the epoch
slider with the keyboard (the plotted points are that epoch's frame on the map), plays and pauses. Then
the two exports as a browser downloads them, and the view at a phone's size.
Screenshots go where tests/test_browser.py writes them (SCREENSHOTS): timeline.png, phone_timeline.png.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser import PATIENCE_MS, _phone_shot, _plotted_points, _settle, _shot
from ui import timeline_view as tv
from vae_core import timeline, timeline_maps
from vae_core.runs import CHECKPOINT_FILE, read_summary


EPOCHS = ["1", *(str(e) for e in range(6, 100, 5)), "100"]  # the tutorial's recorded epochs: every 5th, and 100


@pytest.fixture(scope="module")
def tutorial(server) -> timeline.Timeline:
    """The tutorial run's recorded frames, read from the server's copy."""
    _, checkpoints = server
    return timeline.read_timeline(checkpoints / "tutorial")


def _timeline(page, url: str) -> None:
    page.goto(f"{url}/timeline")
    page.wait_for_selector("h1:has-text('Timeline')")
    _settle(page)


def _sorted(xy: np.ndarray) -> np.ndarray:
    return xy[np.lexsort((xy[:, 1], xy[:, 0]))]


def _press_until(page, slider, key: str, epoch: str) -> None:
    """Press `key` on the focused slider until it reads `epoch` (a key pressed while a rerun redraws it can be
    lost), then wait for the codes' title to show that epoch."""
    for _ in range(50):
        if slider.get_attribute("aria-valuetext") == epoch:
            break
        slider.focus()
        page.keyboard.press(key)
        page.wait_for_timeout(200)
    expect(slider).to_have_attribute("aria-valuetext", epoch)
    expect(page.locator(".js-plotly-plot .gtitle").first).to_contain_text(f"epoch {epoch} ·")
    _settle(page)


def _shipped_map(checkpoints: Path, line: timeline.Timeline) -> np.ndarray | None:
    """The aligned T-SNE the tutorial run ships in its cache for these frames, or None (the view computes it)."""
    info = read_summary(checkpoints / "tutorial" / CHECKPOINT_FILE)
    assert info is not None  # the shipped run.json names the shipped checkpoint
    return tv.kept_tsne(info, line)


# In the page: once Play shows Pause and the timer has stepped the slider twice (two values other than the
# last epoch), click the button, which then says Pause; the epoch it was pressed at, or null when the play
# ended first. It runs in the browser, so a test process starved of CPU cannot let the play pass meanwhile.
_PAUSE_AFTER_TWO_STEPS = """patience => new Promise((resolve, reject) => {
  let first = null;
  const end = Date.now() + patience;  // the hang guard every browser step has (PATIENCE_MS)
  const look = () => {
    if (Date.now() > end) { reject(new Error('Play never stepped the slider twice')); return; }
    const slider = document.querySelector('input[type=range][aria-label="Epoch"]');
    const button = [...document.querySelectorAll('button')].find(b => /(Play|Pause)$/.test(b.innerText.trim()));
    const value = slider && slider.getAttribute('aria-valuetext');
    const playing = button && button.innerText.trim().endsWith('Pause');
    if (playing && value && value !== '100') {
      if (first === null) first = value;
      else if (value !== first) { button.click(); resolve(value); return; }
    } else if (first !== null && !playing) { resolve(null); return; }
    setTimeout(look, 20);
  };
  look();
})"""


def _pause_midway(page, slider) -> str:
    """Press Play at the last epoch (it starts over from the first), let the timer step the slider, press Pause;
    the epoch it paused at. The wait and the Pause happen in the page (_PAUSE_AFTER_TWO_STEPS); when the play
    ends first, or Pause lands on the last epoch, again (an event decides, not a time)."""
    button = page.get_by_role("button", name=re.compile(r"^(Play|Pause)$"))  # one button, named either
    for _ in range(10):
        expect(button).to_contain_text("Play")
        button.click()  # Play
        if page.evaluate(_PAUSE_AFTER_TWO_STEPS, PATIENCE_MS) is None:
            continue
        expect(button).to_contain_text("Play")
        _settle(page)
        paused = slider.get_attribute("aria-valuetext")
        if paused != "100":
            return paused
    raise AssertionError("ten plays ended before Pause was pressed")


def test_a_user_scrubs_plays_and_pauses_the_tutorial_runs_timeline(server, page, tutorial):
    url, checkpoints = server
    kept = _shipped_map(checkpoints, tutorial)
    _timeline(page, url)
    expect(page.get_by_text("Run tutorial: 21 recorded epoch(s), 1 to 100")).to_have_count(1)
    assert [str(e) for e in tutorial.epochs] == EPOCHS
    codes = page.locator(".js-plotly-plot").first
    expect(codes.locator(".legend .traces")).to_have_count(10)  # one trace per digit
    expect(codes.locator(".gtitle")).to_have_text(re.compile(r"run tutorial · epoch 100 · ELBO -\d+\.\d"))
    for title in ("KL per dimension (nats)", "Active units, of 50", "ELBO per image"):
        expect(page.locator(".js-plotly-plot .gtitle", has_text=title)).to_have_count(1)
    assert len(_plotted_points(page)) == len(tutorial.labels) == 2000
    caption = page.locator("[data-testid='stCaptionContainer']", has_text="Map: ")
    if kept is not None:  # shipped with the run: drawn at once, nothing computes
        expect(caption).to_contain_text("Map: aligned T-SNE: each epoch's T-SNE starts from the previous epoch's map")
        expect(page.locator("[data-testid='stProgress']")).to_have_count(0)
        xy = kept
    else:  # the PCA at once while the aligned T-SNE computes; cancelled, the PCA stays for the steps below
        expect(caption).to_contain_text("Map: PCA: one projection fitted on the codes of all 21 recorded epochs")
        expect(page.locator("[data-testid='stProgress']", has_text="the PCA shows meanwhile")).to_have_count(1)
        page.get_by_role("button", name="Cancel T-SNE").click()
        expect(page.get_by_text("The aligned T-SNE was cancelled: this is the PCA of the same codes.")).to_have_count(1)
        _settle(page)
        xy = timeline_maps.pca_frames(tutorial.loc)  # (21, 2000, 2)
    slider = page.get_by_role("slider", name="Epoch")
    assert slider.get_attribute("aria-valuetext") == "100"
    for key, epoch in (("Home", "1"), ("ArrowRight", "6"), ("End", "100")):
        _press_until(page, slider, key, epoch)
        expected = _sorted(xy[EPOCHS.index(epoch)])
        assert np.allclose(np.array(_plotted_points(page)), expected, atol=1e-3), epoch
    assert not np.allclose(_sorted(xy[0]), _sorted(xy[-1]), atol=0.1)  # the slider did move the points

    paused = _pause_midway(page, slider)
    page.wait_for_timeout(3 * tv.TICK_SECONDS * 1000)  # three of Play's ticks: a running timer would step it
    _settle(page)
    assert slider.get_attribute("aria-valuetext") == paused
    expect(codes.locator(".gtitle")).to_contain_text(f"epoch {paused} ·")
    assert np.allclose(np.array(_plotted_points(page)), _sorted(xy[EPOCHS.index(paused)]), atol=1e-3)
    page.mouse.move(1400, 980)  # no help tooltip over the screenshot: not hovered, and not focused
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(500)
    _shot(page, "timeline")


def test_the_timeline_downloads_as_an_animated_gif_and_its_arrays(server, page, tutorial):
    from PIL import Image

    url, _ = server
    _timeline(page, url)
    with page.expect_download() as gif:
        page.get_by_role("button", name="Download the animation (GIF)").click()
    assert re.fullmatch(r"timeline-tutorial-(pca|aligned-t-sne)\.gif", gif.value.suggested_filename)
    with Image.open(gif.value.path()) as animation:
        assert animation.format == "GIF" and animation.is_animated
        assert animation.n_frames == len(EPOCHS)
    with page.expect_download() as npz:
        page.get_by_role("button", name="Download the arrays (.npz)").click()
    assert npz.value.suggested_filename == "timeline-tutorial.npz"
    with np.load(io.BytesIO(open(npz.value.path(), "rb").read())) as arrays:
        assert arrays["loc"].shape == (21, 2000, 50)
        assert [str(e) for e in arrays["epochs"]] == EPOCHS


def test_the_timeline_fits_a_phones_width(server, browser):
    url, _ = server
    assert _phone_shot(browser, url, "timeline", "phone_timeline") >= 340  # the codes' map takes the width
