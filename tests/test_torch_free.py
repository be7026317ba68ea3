"""The torch-free boundary: the modules listed in vae_core.TORCH_FREE and ui.TORCH_FREE never import torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ui
import vae_core

ROOT = Path(__file__).resolve().parent.parent
# Imports each listed module in turn in a fresh interpreter and names the first after which torch is loaded.
_PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    if "torch" in sys.modules:
        print(name)
        break
"""


def test_the_modules_listed_as_torch_free_import_without_torch():
    listed = [*vae_core.TORCH_FREE, *ui.TORCH_FREE]
    out = subprocess.run([sys.executable, "-c", _PROBE, *listed], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{out.stdout.strip()} imports torch"


def test_the_torch_free_lists_name_modules_that_exist():
    for name in [*vae_core.TORCH_FREE, *ui.TORCH_FREE]:
        package, module = name.split(".")
        assert (ROOT / package / f"{module}.py").is_file(), name
