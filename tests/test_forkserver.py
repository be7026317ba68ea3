"""vae_core.forkserver: a training run detached from the process that started it, forked with torch loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_run import until
from ui import jobs
from vae_core import background, forkserver, runs
from vae_core.config import Config
from vae_core.start import alive

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for the server: it starts a run from the app's job runner and exits at once.
_STARTER = """
import sys
from pathlib import Path
from ui import jobs
from vae_core.config import Config
jobs.start(Path(sys.argv[1]), "r", Config(epochs=1, limit=256, batch_size=128))
print(jobs.job(Path(sys.argv[1]), "r").status["pid"])
"""


def _ended(pid: int) -> None:
    assert until(lambda: not alive(pid), polls=12000), f"process {pid} still runs"


def test_a_run_started_from_the_app_outlives_the_server_that_started_it(tmp_path):
    started = subprocess.run([sys.executable, "-c", _STARTER, str(tmp_path)], cwd=ROOT, capture_output=True,
                             text=True, check=True)
    pid = int(started.stdout)
    _ended(pid)
    job = jobs.job(tmp_path, "r")
    assert (job.state, job.epochs_done) == ("finished", 1), job
    assert "[epoch 1 of 1] average test loss:" in (tmp_path / "r" / runs.LOG_FILE).read_text()


def test_a_detached_process_runs_in_its_own_session_with_the_environment_it_was_given(tmp_path):
    log = tmp_path / "train.log"
    pid = forkserver.detach(["train", "--epochs", "0"], log=log, cwd=tmp_path,
                            env={**os.environ, "VAE_NO_MAP": "1"})
    assert os.getsid(pid) == pid  # a session leader: no terminal's signal reaches it
    _ended(pid)
    assert "python -m vae_core train: error:" in log.read_text()  # argparse's words, as the CLI prints them
    assert "--epochs" in log.read_text()


def test_an_unopenable_log_is_an_oserror_and_starts_nothing(tmp_path):
    with pytest.raises(OSError, match="No such file or directory"):
        forkserver.detach(["train"], log=tmp_path / "missing" / "train.log", cwd=tmp_path, env=os.environ)


def imported(name: str, progress) -> bool:
    """Whether module `name` is loaded in the child (module level: the child imports it by name)."""
    return name in sys.modules


def test_the_apps_children_do_not_run_the_apps_script_again(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest  # here: the child imports this module, which must not load Streamlit

    monkeypatch.setenv("VAE_CHECKPOINTS", str(tmp_path))
    AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180).run()
    # The premise: Streamlit leaves its script as __main__, which multiprocessing runs again in each child.
    assert sys.modules["__main__"].__file__.endswith("streamlit_app.py")
    assert not background.run(imported, ("streamlit",))  # the script's first lines import it
    # A run forked after the script has run trains (torch work before the fork used to hang it at its first step).
    jobs.start(tmp_path, "r", Config(epochs=1, limit=256, batch_size=128))
    _ended(jobs.job(tmp_path, "r").status["pid"])
    assert jobs.job(tmp_path, "r").state == "finished", (tmp_path / "r" / runs.LOG_FILE).read_text()
