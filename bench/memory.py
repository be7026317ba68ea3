"""Peak memory (RSS) of the Streamlit server while a run trains and the latent map is open.

    .venv/bin/python -m bench.memory

Starts the real server over a temporary checkpoints folder that links the
shipped tutorial run, opens the Train page in headless Chromium, starts a
2-epoch run from the form, then opens the Latent map while it trains. The
server's and the trainer's peak RSS come from /proc (VmHWM). Goal: server
under 1.5 GB.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from vae_core.runs import read_status

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tutorial").symlink_to(ROOT / "checkpoints" / "tutorial")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "VAE_CHECKPOINTS": str(root)})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.set_default_timeout(300_000)
                page.goto(url)
                page.wait_for_selector(IDLE)
                page.locator("[data-testid='stSidebarNav'] a", has_text="Train").click()
                page.wait_for_selector("h1:has-text('Train')")
                page.wait_for_selector(IDLE)
                page.locator("[data-testid='stExpander'] summary", has_text="Start or resume a run").click()
                page.get_by_label("Run name", exact=True).fill("memory")
                page.get_by_label("Epochs", exact=True).fill("2")
                page.get_by_role("button", name="Start").click()
                page.wait_for_selector("[data-testid='stProgress']:has-text('running')")
                trainer = read_status(root / "memory")["pid"]
                page.locator("[data-testid='stSidebarNav'] a", has_text="Latent map").click()
                page.wait_for_selector(".js-plotly-plot .gtitle:has-text('T-SNE of')")
                trainer_mb = peak_rss_mb(trainer)
                while read_status(root / "memory")["state"] == "running":
                    try:
                        trainer_mb = max(trainer_mb, peak_rss_mb(trainer))
                    except FileNotFoundError:  # it has just exited
                        break
                    time.sleep(0.5)
                server_mb = peak_rss_mb(server.pid)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"server peak RSS {server_mb:.0f} MB, trainer peak RSS {trainer_mb:.0f} MB")
    print(f"ratios: server peak / 1.5 GB goal = {server_mb / 1536:.2f}x")


if __name__ == "__main__":
    main()
