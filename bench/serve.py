"""The real Streamlit server for the benches: started on a port, waited for until it answers.

    server = serve.start(8599, {"VAE_CHECKPOINTS": folder})   # `streamlit run streamlit_app.py`, headless
    serve.wait_until_healthy(8599)
    ...
    server.terminate(); server.wait()
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`streamlit run streamlit_app.py` on `port`, headless, its output discarded; `env` adds variables."""
    return subprocess.Popen([str(ROOT / ".venv" / "bin" / "streamlit"), "run", "streamlit_app.py",
                             "--server.headless", "true", "--server.port", str(port)], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_healthy(port: int) -> None:
    """Return once the server on `port` answers its health check."""
    while True:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1)
            return
        except OSError:
            time.sleep(0.05)
