"""Cold and warm render time of each view with a checkpoint, through Streamlit's AppTest.

    .venv/bin/python -m bench.app                 # the shipped tutorial checkpoint
    VAE_CHECKPOINTS=/some/dir .venv/bin/python -m bench.app --run demo

Cold: Streamlit's caches cleared first (the model, MNIST and arrays load
again; disk caches in the run folder are kept, as on a server restart).
Warm: the same view rendered again at once. Best of `--repeat` tries; the
first cold render, which also pays for Python imports, is shown beside it. Goals: warm under 2 s, the latent map under 1 s when cached.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ["pages/home.py", "pages/train.py", "pages/samples.py", "pages/reconstructions.py", "pages/latent_map.py"]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="tutorial")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"checkpoints: {os.environ.get('VAE_CHECKPOINTS', ROOT / 'checkpoints')}, run {args.run}")
    results = {}
    for view in VIEWS:
        results[view] = render_times(view, args.run, args.repeat)
        first, cold, warm = results[view]
        print(f"{view:28s} cold {cold:6.2f} s (first {first:5.2f} s)   warm {warm:6.2f} s")
    slowest = max(results, key=lambda v: results[v][2])
    worst, cached_map = results[slowest][2], results["pages/latent_map.py"][2]
    print(f"ratios: slowest warm view {slowest} {worst:.2f} s = {worst / 2:.2f}x the 2 s goal; "
          f"cached map {cached_map:.2f} s = {cached_map:.2f}x the 1 s goal")


if __name__ == "__main__":
    main()
