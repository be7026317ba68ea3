"""vae_core.objectives on the shipped, fully trained run and a small real one: ELBOs, their parts, the IWAE bound, KL per unit."""

import numpy as np
import pytest
import torch
from pyro import poutine

from vae_core import checkpoint as ckpt
from vae_core.config import Config
from vae_core.likelihoods import LIKELIHOODS
from vae_core.model import VAE
from vae_core import runs
from vae_core import latent, objectives

from tests.conftest import tiny_config

PATH = runs.checkpoint_path(runs.DEFAULT_ROOT, "tutorial")


@pytest.fixture(scope="module")
def vae():
    return ckpt.load_state(PATH).vae.eval()


@pytest.fixture(scope="module")
def x(mnist):
    return mnist.test_images[:200].reshape(200, -1)


def pyro_trace_elbos(vae, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The one-sample ELBO of each row of x as Pyro defines it: traces of vae.guide and of vae.model replayed
    at the guide's code, summed over their sample sites, after torch.manual_seed(seed). The estimator the views
    used before objectives.one_sample_elbos: it touches Pyro's and torch's process-wide state, so only one
    thread may run it at a time (bench/concurrency.py --estimator pyro-trace shows what happens otherwise)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x = vae.likelihood.prepare(x)
        guide = poutine.trace(vae.guide).get_trace(x)
    model = poutine.trace(poutine.replay(vae.model, trace=guide)).get_trace(x)
    elbo = x.new_zeros(x.shape[0])
    for trace, sign in ((model, 1.0), (guide, -1.0)):
        trace.compute_log_prob()
        for site in trace.nodes.values():
            if site["type"] == "sample":
                elbo += sign * site["log_prob"]  # (rows,): the plate keeps the images' draws apart
    return elbo.detach()


def test_one_sample_elbos_are_bit_for_bit_pyros_trace_elbo(vae, x):
    for seed in (0, 5):
        assert torch.equal(objectives.one_sample_elbos(vae, x, seed=seed), pyro_trace_elbos(vae, x, seed=seed))
    one = x[7].expand(64, -1)  # one image drawn 64 times, as the views estimate a picked digit's ELBO
    assert torch.equal(objectives.one_sample_elbos(vae, one, seed=11), pyro_trace_elbos(vae, one, seed=11))


def test_the_log_weight_equals_pyros_trace_elbo_at_the_same_code(vae, x):
    torch.manual_seed(5)
    z = poutine.trace(vae.guide).get_trace(x).nodes["latent"]["value"]  # what Pyro draws after seed 5
    with torch.no_grad():
        assert torch.equal(objectives.log_weights(vae, x, z), pyro_trace_elbos(vae, x, seed=5))


def test_the_elbo_is_its_reconstruction_term_less_its_kl_term(vae, x):
    parts = objectives.elbo_parts(vae, x, seed=0)
    torch.testing.assert_close(parts.elbo, parts.reconstruction - parts.kl)
    assert (parts.kl > 0).all() and (parts.reconstruction < 0).all()
    q = torch.distributions.Normal(*vae.encoder(x))
    exact = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(parts.kl, exact.detach(), rtol=1e-4, atol=1e-4)
    # The same ELBO as Trace_ELBO's estimator: their averages over 20 draws agree within their noise.
    split = torch.stack([objectives.elbo_parts(vae, x, seed=s).elbo for s in range(20)]).mean()
    trace = torch.stack([pyro_trace_elbos(vae, x, seed=s) for s in range(20)]).mean()
    assert abs(float(split - trace)) < 1.0


def test_the_importance_weighted_bound_rises_with_k_above_the_elbo(vae, x):
    elbo = float(torch.stack([objectives.one_sample_elbos(vae, x, seed=s) for s in range(10)]).mean())
    bounds = {k: objectives.iwae_bound(vae, x, k=k, seed=0).mean() for k in (1, 10, 200)}
    assert abs(bounds[1] - elbo) < 1.5  # one sample: the ELBO itself
    assert elbo < bounds[10] < bounds[200]  # more samples, a tighter bound on log p(x)
    assert bounds[200] - elbo < 15  # the gap of a trained VAE is a few nats, not hundreds


def test_the_bound_with_one_sample_is_the_one_sample_elbo_of_the_same_draws_up_to_rounding(vae, x):
    # The bound scores its samples the fused step's way, from the logits (clamped as the Bernoulli's
    # probabilities are); with one sample it draws what one_sample_elbos, Pyro's ELBO bit for bit, draws.
    first = x[:objectives.IWAE_BATCH]
    bound = objectives.iwae_bound(vae, first, k=1, seed=4)
    pyros = objectives.one_sample_elbos(vae, first, seed=objectives.image_seed(4, 0)).double().numpy()
    np.testing.assert_allclose(bound, pyros, rtol=1e-5)  # float32 sums of 784 pixels' terms


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


@pytest.mark.parametrize("step", ["fused", "trace"])
def test_the_training_step_loss_and_the_test_loss_agree_on_the_same_batch(vae, x, step):
    """training_loss sums the batch's -ELBO as SVI.step does; test_loss is the same estimator per image."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        summed = float(objectives.training_loss(vae, 1.0, step=step)(x).detach())
    assert summed / x.shape[0] == pytest.approx(objectives.test_loss(vae, x, x.shape[0], seed=3), rel=1e-6)


def test_free_bits_draw_the_code_from_torchs_rng_as_pyros_guide_does_in_training(vae, x):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        z = poutine.trace(vae.guide).get_trace(x).nodes["latent"]["value"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        reconstruction_only = objectives.free_bits_loss(vae, x, weight=0.0, free_bits=1.0)
    assert torch.equal(reconstruction_only, -objectives.log_likelihood(vae, x, z).sum())


def test_free_bits_above_every_dimensions_kl_leave_the_encoder_only_the_reconstructions_gradient(vae, x):
    weights = list(vae.encoder.parameters())

    def gradient(free_bits: float | None) -> torch.Tensor:
        """The encoder's gradient of the free-bits loss at weight 0.5 (None: of the reconstruction term alone)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            loss = objectives.free_bits_loss(vae, x, 0.5 if free_bits is not None else 0.0, free_bits or 0.0)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, weights)])

    z_loc, z_scale = vae.encoder(x)
    assert objectives.kl_to_prior(z_loc, z_scale).mean(0).max() < 100.0  # nats: 100 is above every dimension's
    reconstruction = gradient(None)
    floored, unfloored = gradient(100.0) - reconstruction, gradient(1e-9) - reconstruction
    assert floored.norm() < 1e-5 * reconstruction.norm()  # float rounding only: the KL term is a constant
    assert unfloored.norm() > 1e-2 * reconstruction.norm()  # the KL's own pull, which the floor removed


def test_free_bits_above_every_dimensions_kl_add_a_constant_to_the_reconstruction_term(vae, x):
    losses = []
    for weight, free_bits in ((0.5, 100.0), (0.0, 100.0)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            losses.append(objectives.free_bits_loss(vae, x, weight, free_bits).item())
    assert losses[0] == pytest.approx(losses[1] + 0.5 * x.shape[0] * 50 * 100.0, rel=1e-6)  # weight x n x z_dim x λ


def test_an_image_gets_the_same_elbo_alone_among_others_and_repeated(trained, mnist):
    def elbo_of(ids):
        return objectives.elbo_estimate(trained.vae, mnist.test_images[ids], ids=ids, seed=0, draws=16)

    alone = elbo_of([999])
    among, repeated = elbo_of([7, 42, 999]), elbo_of([999, 999, 999])
    assert torch.equal(among.mean[2:], alone.mean) and torch.equal(among.se[2:], alone.se)
    assert torch.equal(repeated.mean, alone.mean.expand(3)) and torch.equal(repeated.se, alone.se.expand(3))


def test_elbo_estimate_standard_error_shrinks_as_one_over_the_root_of_the_draws(trained, mnist):
    x, ids = mnist.test_images[:8], range(8)
    few = objectives.elbo_estimate(trained.vae, x, ids=ids, seed=0, draws=16)
    many = objectives.elbo_estimate(trained.vae, x, ids=ids, seed=0, draws=256)
    assert few.mean.shape == few.se.shape == (8,) and (few.se > 0).all()
    assert many.se.mean() < few.se.mean() / 2  # 16 times the draws: a quarter of the error
    # The same mean: 16 draws' true error is about 4 times the (well estimated) error of 256.
    assert ((few.mean - many.mean).abs() < 5 * 4 * many.se).all()


@pytest.mark.parametrize("likelihood", ["bernoulli", "binarized"])
def test_the_test_sets_elbos_are_the_mean_of_each_draws_own_encoding(likelihood, mnist):
    from vae_core.config import Config
    from vae_core.model import VAE

    torch.manual_seed(0)
    vae = VAE(Config(likelihood=likelihood)).eval()
    images = mnist.test_images[:300]
    x = images.reshape(300, -1)
    batch = 128
    each = torch.cat([torch.stack([objectives.one_sample_elbos(vae, x[i:i + batch], objectives.image_seed(d, i))
                                   for d in range(3)]).mean(dim=0) for i in range(0, 300, batch)])
    # Bit for bit: an encoding shared by the draws (grey pixels) gives what encoding at each draw gives.
    assert np.array_equal(objectives.elbo_of_all(vae, images, draws=3, seed=0, batch_size=batch), each.numpy())
    if vae.likelihood.binarizes:
        with pytest.raises(ValueError, match="binarizes anew"):
            objectives.one_sample_elbos(vae, x, 0, codes=vae.encoder(x))


def test_elbo_estimate_needs_two_draws_for_a_standard_error(trained, mnist):
    with pytest.raises(ValueError, match="draws must be at least 2"):
        objectives.elbo_estimate(trained.vae, mnist.test_images[:2], ids=[0, 1], seed=0, draws=1)


def test_per_image_elbo_averages_to_minus_the_test_loss(trained, mnist):
    x = mnist.test_images[:500]
    elbo = objectives.elbo_estimate(trained.vae, x, ids=range(500), seed=0, draws=8)
    assert elbo.mean.shape == (500,) and (elbo.mean < 0).all()
    # Independent estimates of the same mean (8 draws per image against one): close, not equal.
    assert -elbo.mean.mean().item() == pytest.approx(objectives.test_loss(trained.vae, x, 256, seed=1), rel=0.01)


def test_kl_per_dimension_matches_torch_and_the_shipped_run_has_few_active_units(vae, mnist):
    codes = latent.encode(vae, mnist.test_images)
    q = torch.distributions.Normal(torch.from_numpy(codes.loc[:500]), torch.from_numpy(codes.scale[:500]))
    expected = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(0)
    np.testing.assert_allclose(objectives.kl_per_dimension(codes.loc[:500], codes.scale[:500]), expected.numpy(),
                               rtol=1e-4, atol=1e-5)
    active = objectives.active_units(codes.loc)
    kl = objectives.kl_per_dimension(codes.loc, codes.scale)
    assert active.dtype == bool and 5 <= active.sum() < 50  # Burda et al.: far fewer than 50 are used
    assert kl[active].min() > kl[~active].max()  # the unused dimensions cost nothing


def _loss_and_gradients(vae, x, beta: float, step: str, seed: int) -> tuple[float, list[torch.Tensor]]:
    vae.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loss = objectives.training_loss(vae, beta, step=step)(x)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in vae.parameters()]


@pytest.mark.parametrize("beta", [1.0, 0.25])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_the_fused_loss_is_trace_elbos_value_and_gradient_up_to_float_rounding(likelihood, beta, mnist):
    torch.manual_seed(0)
    vae = VAE(Config(likelihood=likelihood))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        x = vae.likelihood.prepare(mnist.train_images[:256].reshape(256, -1))
    fused, fused_grads = _loss_and_gradients(vae, x, beta, "fused", seed=2)
    trace, trace_grads = _loss_and_gradients(vae, x, beta, "trace", seed=2)
    assert fused == pytest.approx(trace, rel=1e-6)
    for (name, _), a, b in zip(vae.named_parameters(), fused_grads, trace_grads, strict=True):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), name
    _, other_draw = _loss_and_gradients(vae, x, beta, "fused", seed=3)
    assert (other_draw[0] - fused_grads[0]).abs().max() > 1e-3 * fused_grads[0].abs().max()  # the seed matters


@pytest.mark.parametrize("run", ["tutorial", "burda-binarized"])
def test_the_fused_loss_is_trace_elbos_on_a_trained_run_whose_sigmoids_saturate(run, mnist):
    # Trained, the decoder's sigmoid rounds to 0 or 1 for many pixels (45 % of the tutorial run's logits are beyond
    # 15.94): there torch's Bernoulli clamps the probability, and so must the fused loss, in value and gradient.
    vae = ckpt.load_state(runs.checkpoint_path(runs.DEFAULT_ROOT, run)).vae
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        x = vae.likelihood.prepare(mnist.train_images[:256].reshape(256, -1))
    with torch.no_grad():
        assert (vae.decoder.logits(vae.encoder(x)[0]).abs() > 16).float().mean() > 0.1
    fused, fused_grads = _loss_and_gradients(vae, x, 1.0, "fused", seed=2)
    trace, trace_grads = _loss_and_gradients(vae, x, 1.0, "trace", seed=2)
    assert fused == pytest.approx(trace, rel=1e-6)
    for (name, _), a, b in zip(vae.named_parameters(), fused_grads, trace_grads, strict=True):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), name


def test_training_with_the_fused_loss_follows_trace_elbo_step_by_step(small_mnist):
    """The same weights, Adam and draws: the two losses train the same run, apart only by float rounding."""
    torch.manual_seed(0)
    runs_ = {step: VAE(tiny_config()) for step in ("fused", "trace")}
    runs_["trace"].load_state_dict(runs_["fused"].state_dict())
    optimizers = {step: torch.optim.Adam(vae.parameters(), lr=1e-3) for step, vae in runs_.items()}
    images = small_mnist.train_images.reshape(-1, 784)
    for i in range(20):
        x = images[64 * i % 1024:][:64]
        losses = {}
        for step, vae in runs_.items():
            losses[step], _ = _loss_and_gradients(vae, x, 1.0, step, seed=100 + i)
            optimizers[step].step()
        assert losses["fused"] == pytest.approx(losses["trace"], rel=1e-5), f"step {i + 1}"
    weights = {step: torch.cat([p.detach().flatten() for p in vae.parameters()]) for step, vae in runs_.items()}
    assert (weights["fused"] - weights["trace"]).abs().max() < 1e-4  # Adam's steps are 1e-3 each: 20 of them moved
