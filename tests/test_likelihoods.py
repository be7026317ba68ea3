"""The model lab's choices: each likelihood, the network's layers and activation, beta, and older checkpoints;
and the registry of likelihoods, which the Config, the CLI, the Train form, Home and Evaluate all read."""

import math

import pytest
import streamlit as st
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO
from streamlit.testing.v1 import AppTest

from tests.app.helpers import messages, view
from ui.home import model_dot
from vae_core import checkpoint as ckpt
from vae_core import runs
from vae_core import objectives
from vae_core.cli import build_parser
from vae_core.config import FIELDS, Config, ConfigError
from vae_core.likelihoods import GAUSSIAN_MIN_SCALE, LIKELIHOODS, Bernoulli, make_likelihood
from vae_core.memory import training_bytes
from vae_core.model import VAE
from vae_core.train import fit, new_state

from tests.test_objectives import pyro_trace_elbos

TUTORIAL = runs.checkpoint_path(runs.DEFAULT_ROOT, "tutorial")


@pytest.fixture(scope="module", params=LIKELIHOODS)
def trained(request, small_mnist):
    """A real run of each likelihood: 1 epoch on the small training subset, two tanh layers."""
    state = new_state(Config(epochs=1, likelihood=request.param, hidden=(64, 32), activation="tanh", z_dim=8))
    fit(state, small_mnist)
    return state.vae.eval()


@pytest.fixture(scope="module")
def x(mnist):
    return mnist.test_images[:64].reshape(64, -1)


def test_each_likelihoods_one_sample_elbo_is_bit_for_bit_pyros_trace(trained, x):
    assert torch.equal(objectives.one_sample_elbos(trained, x, seed=3), pyro_trace_elbos(trained, x, seed=3))


def test_each_likelihoods_log_weight_equals_pyros_trace_at_the_same_code(trained, x):
    torch.manual_seed(3)
    prepared = trained.likelihood.prepare(x)  # what Pyro's trace scores after the same seed
    z = poutine.trace(trained.guide).get_trace(prepared).nodes["latent"]["value"]
    with torch.no_grad():
        assert torch.equal(objectives.log_weights(trained, prepared, z), pyro_trace_elbos(trained, x, seed=3))


def test_each_likelihood_shows_images_in_the_unit_interval_and_bounds_rise_with_k(trained, x):
    with torch.no_grad():
        shown = trained.decode(torch.randn(16, 8))
    assert shown.shape == (16, x.shape[1]) and (shown >= 0).all() and (shown <= 1).all()
    elbo = float(torch.stack([objectives.one_sample_elbos(trained, x, seed=s).detach() for s in range(10)]).mean())
    assert elbo < objectives.iwae_bound(trained, x, k=100, seed=0).mean()
    assert LIKELIHOODS[trained.config.likelihood].describe().startswith(f"Likelihood {trained.config.likelihood}: ")


def test_binarized_pixels_are_drawn_afresh_but_repeatably_by_seed(x):
    vae = VAE(Config(likelihood="binarized"))
    generator = torch.Generator().manual_seed(0)
    a, b = vae.likelihood.prepare(x, generator), vae.likelihood.prepare(x, generator)
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    assert abs(float(a.mean() - x.mean())) < 0.01  # each pixel is 1 with its grey value as probability
    assert torch.equal(a, vae.likelihood.prepare(x, torch.Generator().manual_seed(0)))
    assert objectives.test_loss(vae, x, 32, seed=4) == objectives.test_loss(vae, x, 32, seed=4)


def test_the_continuous_bernoulli_is_normalised_and_shows_its_mean_not_its_parameter():
    vae = VAE(Config(likelihood="continuous-bernoulli"))
    lam = torch.full((1, vae.config.x_dim), 0.9)
    grid = torch.linspace(0, 1, 20001)[:, None].expand(-1, 1)
    one_pixel = torch.distributions.ContinuousBernoulli(probs=torch.tensor([0.9]))
    assert abs(float(one_pixel.log_prob(grid).exp().mean()) - 1.0) < 1e-3  # integrates to 1 over [0, 1]
    assert torch.allclose(vae.likelihood.mean(lam), torch.full_like(lam, 0.6699), atol=1e-3)
    # Its log-density exceeds the tutorial's Bernoulli form by log C(lambda) >= ln 2 on every pixel.
    x = torch.rand(3, vae.config.x_dim)
    bern = VAE(Config()).likelihood.distribution(lam.expand(3, -1)).log_prob(x)
    cont = vae.likelihood.distribution(lam.expand(3, -1)).log_prob(x)
    assert (cont - bern > vae.config.x_dim * math.log(2)).all()


def test_the_continuous_bernoullis_log_density_and_gradient_match_torchs_in_float64():
    vae = VAE(Config(likelihood="continuous-bernoulli"))
    probs = torch.cat([torch.linspace(0.001, 0.999, 2000), 0.5 + torch.linspace(-0.01, 0.01, 1000)])
    x = torch.rand(probs.shape, generator=torch.Generator().manual_seed(0))
    mine = probs.clone().requires_grad_()
    value = vae.likelihood.distribution(mine[None]).log_prob(x[None])
    (grad,) = torch.autograd.grad(value.sum(), mine)
    exact = probs.double().requires_grad_()
    reference = torch.distributions.ContinuousBernoulli(probs=exact).log_prob(x.double()).sum()
    (reference_grad,) = torch.autograd.grad(reference, exact)
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    torch.testing.assert_close(grad.double(), reference_grad, rtol=1e-4, atol=1e-3)


def test_the_gaussian_learns_one_scale_per_pixel_never_below_its_floor():
    vae = VAE(Config(likelihood="gaussian"))
    assert [n for n, _ in vae.named_parameters()][-1] == "likelihood.raw_scale"
    with torch.no_grad():
        vae.likelihood.raw_scale.fill_(-50.0)
    assert torch.allclose(vae.likelihood.scale(), torch.full((vae.config.x_dim,), GAUSSIAN_MIN_SCALE))


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_each_likelihood_counts_the_weights_it_learns_without_torch(likelihood):
    config = Config(likelihood=likelihood)
    learned = sum(p.numel() for p in make_likelihood(config).parameters())
    assert LIKELIHOODS[likelihood].weights(config.x_dim) == learned


def test_beta_weighs_the_kl_terms_of_the_training_loss_and_1_is_the_elbo(x):
    vae = VAE(Config(z_dim=8))
    losses = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        losses[beta] = float(Trace_ELBO().differentiable_loss(vae.model, vae.guide, x, beta=beta).detach())
    torch.manual_seed(0)
    with torch.no_grad():
        guide = poutine.trace(vae.guide).get_trace(x)
        model = poutine.trace(poutine.replay(vae.model, trace=guide)).get_trace(x)
    log_lik = float(model.nodes["obs"]["fn"].log_prob(x).sum())
    latent = float(model.nodes["latent"]["fn"].log_prob(guide.nodes["latent"]["value"]).sum()
                   - guide.nodes["latent"]["fn"].log_prob(guide.nodes["latent"]["value"]).sum())
    assert losses[1.0] == pytest.approx(-(log_lik + latent), rel=1e-5)
    assert losses[4.0] == pytest.approx(-(log_lik + 4.0 * latent), rel=1e-5)


def test_the_network_follows_its_layers_and_activation():
    vae = VAE(Config(hidden=(200, 100), activation="relu", z_dim=4))
    shapes = [tuple(p.shape) for n, p in vae.named_parameters() if n.endswith("weight")]
    x_dim = vae.config.x_dim
    assert shapes == [(200, x_dim), (100, 200), (4, 100), (4, 100),  # encoder: two layers, loc, log_scale
                      (100, 4), (200, 100), (x_dim, 200)]  # decoder, mirrored
    assert isinstance(vae.encoder.hidden[1], torch.nn.ReLU)
    assert training_bytes(Config(hidden=(200, 100))) < training_bytes(Config())


def test_a_checkpoint_saved_before_the_model_lab_loads_with_the_tutorials_values(tmp_path):
    raw = torch.load(TUTORIAL, weights_only=True)
    # The names and the config of the single-layer network of old (the shipped file is of that age already).
    raw["model"] = {k.replace(".hidden.0.", ".hidden."): v for k, v in raw["model"].items()}
    raw["config"] = {k: v for k, v in raw["config"].items() if k not in ("hidden", "activation", "likelihood", "beta")}
    raw["config"]["hidden_dim"] = 400
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    state = ckpt.load_state(old)
    assert (state.config.hidden, state.config.activation, state.config.likelihood, state.config.beta) == \
        ((400,), "softplus", "bernoulli", 1.0)
    shipped = ckpt.load_state(TUTORIAL).vae
    assert all(torch.equal(a, b) for a, b in zip(state.vae.parameters(), shipped.parameters()))


@pytest.mark.parametrize("values, message", [
    ({"likelihood": "poisson"}, f"likelihood must be one of {', '.join(LIKELIHOODS)}, got 'poisson'"),
    ({"activation": "gelu"}, "activation must be one of softplus, relu, tanh, got 'gelu'"),
    ({"hidden": ()}, "hidden must list 1 to 8 layers"),
    ({"hidden": (400, 0)}, "hidden must have 1 to 65536 units in each layer, got 0"),
    ({"hidden": (400.5,)}, "hidden must be whole numbers"),
    ({"beta": 0.0}, "beta must be more than 0"),
    ({"beta": -1.0}, "beta must be more than 0"),
    ({"beta": float("nan")}, "beta must be more than 0 and at most 1000, got nan"),
])
def test_bad_model_settings_name_the_field_and_what_is_allowed(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config(**values)


# ---------------------------------------------------------------- the registry


class Made(Bernoulli):
    """A likelihood only these tests register, as a new one is added: its class and its entry in LIKELIHOODS."""
    name = "made"
    help = "one the tests register, nothing more."
    note = "a likelihood the tests made up, scored as the tutorial's Bernoulli on pixels drawn 0 or 1"
    pixels = "made up pixel means"
    binarizes = True
    intro = ""


@pytest.fixture
def made(monkeypatch):
    """Made registered for one test."""
    monkeypatch.setitem(LIKELIHOODS, Made.name, Made)
    return Made


def test_a_registered_likelihood_is_a_config_choice_with_its_help(made):
    assert Config(likelihood=made.name).likelihood == made.name
    assert f"{made.name}: {made.help}" in FIELDS["likelihood"].help


def test_a_registered_likelihood_is_offered_by_the_cli_with_its_help(made, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes
    assert "--likelihood {" + ",".join(LIKELIHOODS) + "}" in shown and made.name in LIKELIHOODS
    assert f"{made.name}: {made.help}" in shown


def _likelihood_widget() -> None:
    import streamlit as st

    from ui.train_form import widget

    widget(st, "likelihood")


def test_a_registered_likelihood_is_a_choice_of_the_train_form(made):
    at = AppTest.from_function(_likelihood_widget).run()
    (select,) = at.selectbox
    assert select.options[-1] == made.name and f"{made.name}: {made.help}" in select.help


def test_home_labels_a_registered_likelihoods_pixels(made):
    dot = model_dot(Config(likelihood=made.name))
    assert f'pixels [label="{made.pixels}"]' in dot and "binary pixels" in dot  # Made binarizes


def test_a_registered_likelihoods_note_reaches_evaluates_caption(made, tmp_path, monkeypatch, small_mnist):
    state = new_state(Config(epochs=1, likelihood=made.name, hidden=(32,)))
    fit(state, small_mnist)
    ckpt.save_state(state, runs.checkpoint_path(tmp_path, "tutorial"))  # the default run, which Evaluate opens
    monkeypatch.setenv("VAE_CHECKPOINTS", str(tmp_path))
    st.cache_resource.clear()
    try:
        info = messages(view("pages/evaluate.py").info)
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
    assert info[0] == made.describe() and made.note in info[0]
