"""What a checkpoint of a config weighs (vae_core.sizes), counted without torch, against the model built and saved."""

from __future__ import annotations

import pytest
import torch

from vae_core import checkpoint as ckpt
from vae_core.config import Config
from vae_core.model import VAE
from vae_core.sizes import checkpoint_bytes, parameter_count
from vae_core.train import new_state


@pytest.mark.parametrize("config", [Config(), Config(hidden=(200, 200), activation="tanh", z_dim=2),
                                    Config(likelihood="gaussian", hidden=(64, 32, 16))], ids=str)
def test_the_parameters_counted_without_torch_are_those_of_the_model_built(config):
    with torch.device("meta"):
        built = sum(p.numel() for p in VAE(config).parameters())
    assert parameter_count(config) == built


def test_checkpoints_before_and_after_training_take_the_bytes_their_config_implies(trained, tmp_path):
    untrained = new_state(trained.config)  # no Adam moments yet: the fewest bytes
    for name, state in (("untrained", untrained), ("trained", trained)):
        path = tmp_path / f"{name}.pt"
        ckpt.save_state(state, path)
        least, most = checkpoint_bytes(state.config)
        assert least <= path.stat().st_size <= most, name
