"""vae_core.adam: bitwise torch.optim.Adam's steps, its state dict in torch's format, and no dynamo import."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_core import objectives
from vae_core.adam import Adam
from vae_core.model import VAE

from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _steps(vae: VAE, optimizer, images: torch.Tensor, count: int, seed: int) -> list[torch.Tensor]:
    """`count` training steps on batches of 64, each loss drawn from `seed`; the weights after each step."""
    loss_fn = objectives.training_loss(vae, 1.0, step="trace")  # the per-tensor Adam's own step
    after = []
    for step in range(count):
        torch.manual_seed(seed + step)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(images[64 * step % 1024:][:64]).backward()
        optimizer.step()
        after.append(torch.cat([p.detach().flatten() for p in vae.parameters()]))
    return after


def _pair(lr: float = 1e-3) -> tuple[VAE, VAE]:
    torch.manual_seed(0)
    ours = VAE(tiny_config())
    theirs = VAE(tiny_config())
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("lr", [1e-3, 3e-2])
def test_every_step_equals_torchs_adam_bit_for_bit(small_mnist, lr):
    ours, theirs = _pair()
    mine = _steps(ours, Adam(ours.parameters(), lr=lr), small_mnist.train_images, 12, seed=5)
    torchs = _steps(theirs, torch.optim.Adam(theirs.parameters(), lr=lr), small_mnist.train_images, 12, seed=5)
    for step, (a, b) in enumerate(zip(mine, torchs)):
        assert torch.equal(a, b), f"step {step + 1}: largest difference {(a - b).abs().max().item()}"
    assert not torch.equal(mine[0], mine[-1])  # the steps moved the weights


def test_the_fused_adam_equals_torchs_fused_adam_bit_for_bit_and_resumes_in_it(small_mnist):
    images = small_mnist.train_images
    ours, theirs = _pair()
    mine = Adam(ours.parameters(), fused=True)
    torchs = torch.optim.Adam(theirs.parameters(), lr=1e-3, fused=True)
    for step, (a, b) in enumerate(zip(_steps(ours, mine, images, 8, seed=5), _steps(theirs, torchs, images, 8, seed=5))):
        assert torch.equal(a, b), f"step {step + 1}: largest difference {(a - b).abs().max().item()}"
    assert mine.state_dict()["param_groups"][0]["fused"] is True  # saved so: a resume takes the fused kernel again
    back = torch.optim.Adam(theirs.parameters(), lr=1e-3, fused=True)
    theirs.load_state_dict(ours.state_dict())
    back.load_state_dict(copy.deepcopy(mine.state_dict()))
    again = Adam(ours.parameters())  # made unfused: the state's flag decides
    again.load_state_dict(mine.state_dict())
    assert torch.equal(_steps(ours, again, images, 3, seed=9)[-1], _steps(theirs, back, images, 3, seed=9)[-1])


def test_the_fused_and_the_per_tensor_update_part_only_by_float_rounding(small_mnist):
    images = small_mnist.train_images
    ours, theirs = _pair()
    fused = _steps(ours, Adam(ours.parameters(), fused=True), images, 4, seed=5)[-1]
    per_tensor = _steps(theirs, Adam(theirs.parameters()), images, 4, seed=5)[-1]
    assert not torch.equal(fused, per_tensor)  # another kernel: why a run keeps the one it started with
    assert torch.allclose(fused, per_tensor, rtol=0, atol=1e-6)


def test_a_state_saved_by_either_resumes_in_the_other_exactly(small_mnist):
    images = small_mnist.train_images
    ours, theirs = _pair()
    optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    _steps(theirs, optimizer, images, 4, seed=1)
    ours.load_state_dict(theirs.state_dict())
    mine = Adam(ours.parameters())
    mine.load_state_dict(optimizer.state_dict())  # torch's state into ours
    assert torch.equal(_steps(ours, mine, images, 3, seed=9)[-1], _steps(theirs, optimizer, images, 3, seed=9)[-1])

    back = torch.optim.Adam(theirs.parameters(), lr=1e-3)
    theirs.load_state_dict(ours.state_dict())
    back.load_state_dict(copy.deepcopy(mine.state_dict()))  # ours into torch's (which would alias our tensors)
    assert torch.equal(_steps(ours, mine, images, 3, seed=20)[-1], _steps(theirs, back, images, 3, seed=20)[-1])
    assert mine.state_dict()["param_groups"][0].keys() == back.state_dict()["param_groups"][0].keys()


def test_a_state_that_does_not_fit_is_refused_with_what_differs(small_mnist):
    ours, _ = _pair()
    saved = Adam(ours.parameters())
    _steps(ours, saved, small_mnist.train_images, 1, seed=0)
    state = saved.state_dict()
    other = VAE(tiny_config(z_dim=3))
    with pytest.raises(ValueError, match="exp_avg of parameter .* has shape"):
        Adam(other.parameters()).load_state_dict(state)
    state["param_groups"][0]["amsgrad"] = True
    with pytest.raises(ValueError, match="amsgrad"):
        Adam(ours.parameters()).load_state_dict(state)
    state["param_groups"][0]["amsgrad"] = False
    state["param_groups"][0]["params"] = state["param_groups"][0]["params"][:-1]
    with pytest.raises(ValueError, match="parameter group of the state has"):
        Adam(ours.parameters()).load_state_dict(state)


def test_a_training_step_never_imports_dynamo():
    probe = ("import sys, torch\n"
             "from tests.conftest import tiny_config\n"
             "from vae_core.train import new_state\n"
             "state = new_state(tiny_config())\n"
             "loss = sum(p.sum() for p in state.vae.parameters())\n"
             "loss.backward(); state.optimizer.step(); state.optimizer.state_dict()\n"
             "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
