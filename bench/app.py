"""Cold and warm render time of each view with a checkpoint, through Streamlit's AppTest.

    .venv/bin/python -m bench.app                 # the shipped tutorial checkpoint
    .venv/bin/python -m bench.app --first-paint   # only the real server's first paint of Home in Chromium
    VAE_CHECKPOINTS=/some/dir .venv/bin/python -m bench.app --run demo

Cold: Streamlit's caches cleared first (the model, MNIST and arrays load
again; disk caches in the run folder are kept, as on a server restart).
Warm: the same view rendered again at once. Best of `--repeat` tries; the
first cold render, which also pays for Python imports, is shown beside it. Goals: warm under 2 s, the latent map under 1 s when cached.

Interactions: the rerun after one user action on a warm view (a click on the
map, a slider, a new drawing), best of `--repeat`. Goals: 300 ms, and 1 s for a
drawing (its reconstructions, ELBO, neighbours and place on the map).
AppTest's own overhead is included: the browser adds its drawing time.

First paint: `streamlit run` started fresh, Chromium (already running) opens
Home as soon as the server answers; the seconds from the start of the server
to Home's title, and to its last thumbnail, in a real browser. Goal: 3 s.
Then, 2 s later, a click on Samples: the seconds to its first image (the
first view that needs torch, which Home preloads while the user reads it).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _drawn_png() -> bytes:
    """A test digit drawn ten times larger, dark on white, as a user's upload or canvas would be."""
    import io

    import numpy as np
    from PIL import Image

    from vae_core.data import load_split

    digit = (load_split(train=False)[0][3].reshape(28, 28).numpy() * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(255 - np.kron(digit, np.ones((10, 10), np.uint8))).save(buffer, format="PNG")
    return buffer.getvalue()


def _click(at, index: int) -> None:
    at.session_state["map_picked"] = index  # what a click on test digit `index` leaves


def _widget(at, kind: str, key: str):
    return next(w for w in at.get(kind) if w.key == key)


# view, action, and what each try does to the warm view before its timed rerun (try number i)
INTERACTIONS = [
    ("pages/latent_map.py", "click a point", lambda at, i: _click(at, 100 + i)),
    ("pages/interpolate.py", "steps slider", lambda at, i: _widget(at, "slider", "pair_steps").set_value(12 + i % 2 * 4)),
    ("pages/interpolate.py", "a new B", lambda at, i: _widget(at, "number_input", "pair_b").set_value(2 + i)),
    ("pages/traverse.py", "rows slider", lambda at, i: _widget(at, "slider", "trav_rows").set_value(8 + i % 2 * 4)),
    ("pages/traverse.py", "another digit", lambda at, i: _widget(at, "number_input", "trav_index").set_value(5 + i)),
    ("pages/draw.py", "a new drawing", lambda at, i: at.file_uploader[0].set_value((f"d{i}.png", _drawn_png(), "image/png"))),
]


def interaction_time(view: str, act, run: str, repeat: int) -> float:
    """Best time of the rerun that follows `act` on the warm view, in seconds."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.session_state["run"] = run
    at.run()
    at.switch_page(view).run()
    at.run()  # warm
    times = []
    for i in range(repeat + 1):
        act(at, i)
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"{view} raised: {at.exception[0].value}")
    return min(times[1:])  # the first try also fills this action's caches


def render_times(view: str, run: str, repeat: int) -> tuple[float, float, float]:
    """First cold render, best cold render, best warm render, in seconds."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    cold, warm = [], []
    for _ in range(repeat):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
        at.session_state["run"] = run
        start = time.perf_counter()
        at.run()
        if view != "pages/home.py":
            at.switch_page(view).run()
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"{view} raised: {at.exception[0].value}")
    return cold[0], min(cold), min(warm)


def first_paint(port: int = 8599, pause: float = 2.0) -> tuple[float, float, float, float]:
    """Seconds from `streamlit run` to: the server's health answer, Home's title, Home's last thumbnail;
    and from a click on Samples, `pause` seconds after that, to its first image."""
    import shutil

    from playwright.sync_api import sync_playwright

    from bench import serve

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        server = serve.start(port)
        try:
            serve.wait_until_healthy(port)
            health = time.perf_counter() - start
            page.goto(f"http://localhost:{port}/")
            page.wait_for_selector("h1:has-text('See a VAE learn')", timeout=120_000)
            title = time.perf_counter() - start
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 2 && "
                                   "document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=120_000)
            complete = time.perf_counter() - start
            time.sleep(pause)  # a user reading Home before a click
            clicked = time.perf_counter()
            page.get_by_test_id("stMain").get_by_role("link", name="Samples").click()
            page.wait_for_selector("h1:has-text('Samples from the prior')", timeout=120_000)
            page.wait_for_selector("[data-testid='stImage'] img", timeout=120_000)
            next_view = time.perf_counter() - clicked
        finally:
            server.terminate()
            server.wait()
            browser.close()
    return health, title, complete, next_view


def main() -> None:
    import logging

    # AppTest's callers outside a script run make Streamlit warn on every access: noise here.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="tutorial")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--first-paint", action="store_true", help="only the real server's first paint of Home")
    args = parser.parse_args()
    health, title, complete, next_view = first_paint()
    print(f"first paint: server answers {health:.2f} s, Home's title {title:.2f} s, its thumbnails {complete:.2f} s "
          f"after `streamlit run` = {title / 3:.2f}x the 3 s goal; Samples opened 2 s later: {next_view:.2f} s")
    if args.first_paint:
        return
    print(f"checkpoints: {os.environ.get('VAE_CHECKPOINTS', ROOT / 'checkpoints')}, run {args.run}")
    results = {}
    from ui.views import VIEWS

    for view in (v.path for v in VIEWS):
        results[view] = render_times(view, args.run, args.repeat)
        first, cold, warm = results[view]
        print(f"{view:28s} cold {cold:6.2f} s (first {first:5.2f} s)   warm {warm:6.2f} s")
    slowest = max(results, key=lambda v: results[v][2])
    worst, cached_map = results[slowest][2], results["pages/latent_map.py"][2]
    print(f"ratios: slowest warm view {slowest} {worst:.2f} s = {worst / 2:.2f}x the 2 s goal; "
          f"cached map {cached_map:.2f} s = {cached_map:.2f}x the 1 s goal")
    slowest = 0.0
    for view, action, act in INTERACTIONS:
        seconds = interaction_time(view, act, args.run, args.repeat)
        goal = 1.0 if action == "a new drawing" else 0.3
        print(f"{view:28s} {action:16s} {seconds * 1000:6.0f} ms = {seconds / goal:.2f}x the {goal * 1000:.0f} ms goal")
        slowest = max(slowest, seconds / goal)
    print(f"ratios: slowest interaction {slowest:.2f}x its goal")


if __name__ == "__main__":
    main()
