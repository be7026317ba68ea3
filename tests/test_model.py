import pyro
import torch
from pyro.infer import Trace_ELBO

from vae_core.config import Config
from vae_core.model import VAE
from vae_core.train import fit, new_state

from tests.conftest import tiny_config


def test_encoder_and_decoder_have_the_tutorial_shapes():
    vae = VAE(Config())
    shapes = {name: tuple(p.shape) for name, p in vae.named_parameters()}
    assert shapes == {
        "encoder.hidden.0.weight": (400, 784), "encoder.hidden.0.bias": (400,),
        "encoder.loc.weight": (50, 400), "encoder.loc.bias": (50,),
        "encoder.log_scale.weight": (50, 400), "encoder.log_scale.bias": (50,),
        "decoder.hidden.0.weight": (400, 50), "decoder.hidden.0.bias": (400,),
        "decoder.img.weight": (784, 400), "decoder.img.bias": (784,),
    }


def test_guide_gives_positive_scales_and_decoder_gives_probabilities(mnist):
    vae = VAE(Config())
    z_loc, z_scale = vae.encoder(mnist.test_images[:8])
    assert z_loc.shape == z_scale.shape == (8, 50) and (z_scale > 0).all()
    img = vae.decoder(z_loc)
    assert img.shape == (8, 784) and ((img > 0) & (img < 1)).all()


def test_elbo_loss_on_grey_pixels_is_finite_and_positive(mnist):
    vae = VAE(Config())
    loss = Trace_ELBO().differentiable_loss(vae.model, vae.guide, mnist.test_images[:64])
    assert torch.isfinite(loss) and loss.item() > 0


def test_reconstruct_img_is_stochastic_but_seedable(mnist):
    vae = VAE(Config())
    x = mnist.test_images[:4]
    a = vae.reconstruct_img(x, torch.Generator().manual_seed(1))
    b = vae.reconstruct_img(x, torch.Generator().manual_seed(2))
    c = vae.reconstruct_img(x, torch.Generator().manual_seed(1))
    assert a.shape == (4, 784)
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_sizes_follow_the_config():
    vae = VAE(Config(z_dim=3, hidden=(7,)))
    z_loc, _ = vae.encoder(torch.rand(2, 784))
    assert z_loc.shape == (2, 3) and vae.decoder(z_loc).shape == (2, 784)
    assert vae.encoder.hidden[0].weight.shape == (7, 784)


def test_training_one_run_leaves_another_model_and_the_global_param_store_untouched(small_mnist):
    inspected = VAE(Config())
    before = {k: v.clone() for k, v in inspected.state_dict().items()}
    pyro.clear_param_store()
    for step, jit in (("fused", False), ("trace", False), ("trace", True)):
        fit(new_state(tiny_config(epochs=1, step=step, jit=jit)), small_mnist)
    assert all(torch.equal(before[k], v) for k, v in inspected.state_dict().items())
    assert list(pyro.get_param_store().keys()) == []
