"""The shipped, fully trained tutorial run: its quality and its precomputed latent map."""

import numpy as np
import pytest

from ui.jobs import SHIPPED_RUNS
from vae_core import analysis, latent, objectives
from vae_core import checkpoint as ckpt
from vae_core import run_cache, runs

PATH = runs.checkpoint_path(runs.DEFAULT_ROOT, "tutorial")


@pytest.fixture(scope="module")
def shipped():
    return ckpt.load_state(PATH)


def test_shipped_run_is_the_tutorial_config_trained_100_epochs(shipped):
    # Trained before the fused step existed, with Pyro's Trace_ELBO: the step a run saved then reads as.
    assert shipped.epoch == 100 and shipped.config == type(shipped.config)(step="trace")


def test_shipped_run_test_loss_on_the_real_test_set_is_below_102(shipped, mnist):
    assert objectives.test_loss(shipped.vae.eval(), mnist.test_images, 256, seed=0) < 102


def test_shipped_latent_means_belong_to_the_shipped_weights(shipped, mnist):
    digest = runs.digest(PATH)
    means = run_cache.load_cached(PATH, latent.MEANS_NAME, digest)
    assert means is not None, "run python -m vae_core embed tutorial and commit checkpoints/tutorial/cache"
    np.testing.assert_allclose(means, latent.encode(shipped.vae.eval(), mnist.test_images).loc,
                               rtol=1e-5, atol=1e-5)


def test_shipped_tsne_map_is_keyed_by_the_shipped_checkpoint_content():
    xy = run_cache.load_cached(PATH, analysis.tsne_name(30, 0), runs.digest(PATH))
    assert xy is not None and xy.shape == (10000, 2) and np.isfinite(xy).all()


def test_shipped_test_elbos_belong_to_the_shipped_weights(shipped, mnist):
    value = run_cache.load_cached(PATH, objectives.TEST_ELBOS_NAME, runs.digest(PATH))
    assert value is not None and value.shape == (10000,), "open the Draw view on the tutorial run and commit its cache"
    first = objectives.elbo_of_all(shipped.vae.eval(), mnist.test_images[:2000], draws=objectives.TEST_ELBO_DRAWS, seed=0)
    np.testing.assert_allclose(value[:2000], first, atol=1e-3)  # the first batch draws the same noise
    assert -103 < value.mean() < -99  # the shipped run's test ELBO, about -101


def test_shipped_run_json_names_the_shipped_checkpoint():
    import json

    summary = json.loads((PATH.parent / runs.RUN_FILE).read_text())
    assert summary["checkpoint"]["sha256"] == runs.digest(PATH)  # listed in a fresh clone without loading
    assert summary["epoch"] == 100 and "tutorial" in [r.name for r in runs.list_runs(runs.DEFAULT_ROOT)]


def test_shipped_2d_run_is_the_tutorial_model_with_two_latent_dimensions(mnist):
    path = runs.checkpoint_path(runs.DEFAULT_ROOT, "latent-2d")
    state = ckpt.load_state(path)
    assert state.epoch == 100 and state.config == type(state.config)(z_dim=2, step="trace")
    digest = runs.digest(path)
    means = run_cache.load_cached(path, latent.MEANS_NAME, digest)
    assert means is not None and means.shape == (10000, 2)
    np.testing.assert_allclose(means, latent.encode(state.vae.eval(), mnist.test_images).loc, atol=1e-5)
    assert run_cache.load_cached(path, objectives.TEST_ELBOS_NAME, digest).shape == (10000,)


def test_shipped_binarized_run_has_burdas_network_and_its_log_px_estimate(mnist):
    from vae_core import objectives
    from vae_core.config import Config

    path = runs.checkpoint_path(runs.DEFAULT_ROOT, "burda-binarized")
    state = ckpt.load_state(path)
    assert state.epoch == 100
    assert state.config == Config(hidden=(200, 200), activation="tanh", likelihood="binarized", step="trace")
    digest = runs.digest(path)
    bound = run_cache.load_cached(path, objectives.iwae_name(5000, 10000, 0), digest)
    assert bound is not None and bound.shape == (10000,), "run python -m vae_core evaluate burda-binarized --iwae 5000"
    # The cached bound is this checkpoint's: the first batch's bounds come back from the same seed.
    first = mnist.test_images[:objectives.IWAE_BATCH]
    np.testing.assert_allclose(bound[:len(first)], objectives.iwae_bound(state.vae.eval(), first, k=5000, seed=0),
                               atol=1e-3)
    elbos = run_cache.load_cached(path, objectives.TEST_ELBOS_NAME, digest)
    assert elbos.mean() < bound.mean()  # a bound above the ELBO, as it must be
    for name in (latent.MEANS_NAME, analysis.tsne_name(30, 0)):
        assert run_cache.load_cached(path, name, digest) is not None


def test_shipped_tutorial_log_px_estimate_belongs_to_the_shipped_weights(shipped, mnist):
    from vae_core import objectives

    bound = run_cache.load_cached(PATH, objectives.iwae_name(1000, 10000, 0), runs.digest(PATH))
    assert bound is not None, "run python -m vae_core evaluate tutorial --iwae 1000"
    first = mnist.test_images[:objectives.IWAE_BATCH]
    np.testing.assert_allclose(bound[:len(first)], objectives.iwae_bound(shipped.vae.eval(), first, k=1000, seed=0),
                               atol=1e-3)
    assert -98 < bound.mean() < -96  # −96.88 measured; 4.3 nats above the ELBO


# Every shipped run carries its timeline (docs/timeline.md): recorded by training it again with the same
# settings, which gave the shipped losses and weights bit for bit, so its frames are the shipped run's own.
@pytest.mark.parametrize("run", SHIPPED_RUNS)
def test_a_shipped_runs_timeline_ends_with_the_frame_of_its_shipped_weights(run, mnist):
    from vae_core import timeline
    from vae_core.monitor import timeline_frame

    state = ckpt.load_state(runs.checkpoint_path(runs.DEFAULT_ROOT, run))
    line = timeline.read_timeline(runs.run_dir(runs.DEFAULT_ROOT, run))
    assert line is not None and line.skipped == (), f"record it: see docs/timeline.md ({run})"
    assert line.epochs.tolist() == [e + 1 for e in state.history.test_epochs]  # every test epoch, 1 to 100
    labels = mnist.test_labels.numpy()
    assert np.array_equal(line.indices, timeline.subset(labels)) and np.array_equal(line.labels, labels[line.indices])
    last = timeline_frame(state.vae.eval(), state.epoch, mnist.test_images, line.indices, line.labels)
    np.testing.assert_allclose(line.loc[-1], last.loc, rtol=1e-3, atol=1e-3)  # float16 on disk
    np.testing.assert_allclose(line.kl[-1], last.kl, rtol=1e-5)
    assert line.active[-1] == last.active
