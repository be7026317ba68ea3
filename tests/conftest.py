"""Shared fixtures: real MNIST (loaded once) and a tiny trained run."""

from __future__ import annotations

import os

import pytest

from vae_core.config import Config
from vae_core.data import MNISTTensors, load_mnist
from vae_core.train import TrainState, fit, new_state

# Training runs started by the tests (the CLI's, the app's) skip the latent map cached after the last
# epoch (about 10 s of T-SNE each); tests/test_cli.py checks that map with the variable removed.
os.environ.setdefault("VAE_NO_MAP", "1")


@pytest.fixture(scope="session")
def mnist() -> MNISTTensors:
    return load_mnist()


@pytest.fixture(scope="session")
def small_mnist(mnist: MNISTTensors) -> MNISTTensors:
    """1,024 training and 1,024 test images: real digits, cheap epochs."""
    return MNISTTensors(mnist.train_images[:1024], mnist.train_labels[:1024],
                        mnist.test_images[:1024], mnist.test_labels[:1024])


def tiny_config(**overrides) -> Config:
    """The tutorial's model, trained briefly with small batches."""
    return Config(**{"epochs": 2, "batch_size": 128, "test_every": 1, **overrides})


@pytest.fixture(scope="session")
def trained(small_mnist: MNISTTensors) -> TrainState:
    """A run of 3 short epochs on 1,024 real digits."""
    state = new_state(tiny_config(epochs=3))
    fit(state, small_mnist)
    return state


def pytest_terminal_summary(terminalreporter):
    from tests.test_browser import SCREENSHOTS

    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.glob("*.png")):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
