"""vae_core.objectives on the shipped, fully trained run: the ELBO's parts and the importance-weighted bound."""

import numpy as np
import pytest
import torch
from pyro import poutine

from vae_core import checkpoint as ckpt

from vae_core import folders
from vae_core import objectives

PATH = folders.checkpoint_path(folders.DEFAULT_ROOT, "tutorial")


@pytest.fixture(scope="module")
def vae():
    return ckpt.load_state(PATH).vae.eval()


@pytest.fixture(scope="module")
def x(mnist):
    return mnist.test_images[:200].reshape(200, -1)


def test_the_log_weight_equals_pyros_trace_elbo_at_the_same_code(vae, x):
    torch.manual_seed(5)
    z = poutine.trace(vae.guide).get_trace(x).nodes["latent"]["value"]  # what one_sample_elbos draws with seed 5
    with torch.no_grad():
        direct = objectives.log_weights(vae, x, z)
    torch.testing.assert_close(direct, objectives.one_sample_elbos(vae, x, seed=5).detach(), rtol=0, atol=1e-3)


def test_the_elbo_is_its_reconstruction_term_less_its_kl_term(vae, x):
    parts = objectives.elbo_parts(vae, x, seed=0)
    torch.testing.assert_close(parts.elbo, parts.reconstruction - parts.kl)
    assert (parts.kl > 0).all() and (parts.reconstruction < 0).all()
    q = torch.distributions.Normal(*vae.encoder(x))
    exact = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(parts.kl, exact.detach(), rtol=1e-4, atol=1e-4)
    # The same ELBO as Trace_ELBO's estimator: their averages over 20 draws agree within their noise.
    split = torch.stack([objectives.elbo_parts(vae, x, seed=s).elbo for s in range(20)]).mean()
    trace = torch.stack([objectives.one_sample_elbos(vae, x, seed=s).detach() for s in range(20)]).mean()
    assert abs(float(split - trace)) < 1.0


def test_the_importance_weighted_bound_rises_with_k_above_the_elbo(vae, x):
    elbo = float(torch.stack([objectives.one_sample_elbos(vae, x, seed=s).detach() for s in range(10)]).mean())
    bounds = {k: objectives.iwae_bound(vae, x, k=k, seed=0).mean() for k in (1, 10, 200)}
    assert abs(bounds[1] - elbo) < 1.5  # one sample: the ELBO itself
    assert elbo < bounds[10] < bounds[200]  # more samples, a tighter bound on log p(x)
    assert bounds[200] - elbo < 15  # the gap of a trained VAE is a few nats, not hundreds


def test_the_bound_is_repeatable_by_seed_and_stable_for_large_k(vae, x):
    a = objectives.iwae_bound(vae, x[:20], k=250, seed=1)  # three chunks of samples
    assert np.array_equal(a, objectives.iwae_bound(vae, x[:20], k=250, seed=1))
    assert not np.array_equal(a, objectives.iwae_bound(vae, x[:20], k=250, seed=2))
    assert a.dtype == np.float64 and np.isfinite(a).all()
    far = objectives.iwae_bound(vae, x[:5], k=2000, seed=0)  # weights near exp(-100): logsumexp keeps them
    assert np.isfinite(far).all()


def test_the_bound_reports_progress_can_be_cancelled_and_refuses_k_below_1(vae, x):
    seen = []
    objectives.iwae_bound(vae, x[:150], k=150, seed=0, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) == 4  # 2 image batches x 2 chunks
    with pytest.raises(objectives.Cancelled):
        objectives.iwae_bound(vae, x, k=100, seed=0, should_stop=lambda: True)
    with pytest.raises(ValueError, match="k must be at least 1"):
        objectives.iwae_bound(vae, x, k=0, seed=0)
