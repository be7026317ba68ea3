import numpy as np
import pytest
import torch

from vae_core import analysis
from vae_core.analysis import Cancelled


def test_prior_samples_are_images_repeatable_by_seed(trained):
    a = analysis.prior_samples(trained.vae, 16, seed=3)
    assert a.shape == (16, 28, 28) and ((a > 0) & (a < 1)).all()
    assert torch.equal(a, analysis.prior_samples(trained.vae, 16, seed=3))
    assert not torch.equal(a, analysis.prior_samples(trained.vae, 16, seed=4))


def test_reconstructions_give_k_different_draws_and_the_mean_at_z_loc(trained, mnist):
    rec = analysis.reconstructions(trained.vae, mnist.test_images[:5], k=3, seed=0)
    assert rec.draws.shape == (5, 3, 28, 28) and rec.at_loc.shape == (5, 28, 28)
    assert not torch.equal(rec.draws[:, 0], rec.draws[:, 1])
    again = analysis.reconstructions(trained.vae, mnist.test_images[:5], k=3, seed=0)
    assert torch.equal(rec.draws, again.draws) and torch.equal(rec.at_loc, again.at_loc)


def test_an_image_gets_the_same_reconstructions_alone_among_others_and_repeated(trained, mnist):
    def rows_of(ids):
        rec = analysis.reconstructions(trained.vae, mnist.test_images[ids], k=3, seed=0, ids=ids)
        return [(rec.draws[row], rec.at_loc[row]) for row in range(len(ids))]

    (alone,) = rows_of([999])
    for draws, at_loc in rows_of([7, 42, 999])[2:] + rows_of([999, 999, 999]):
        assert torch.equal(draws, alone[0]) and torch.equal(at_loc, alone[1])


def test_reconstructions_of_an_image_depend_on_the_seed_and_its_index(trained, mnist):
    x = mnist.test_images[[5]]
    draws = {(seed, index): analysis.reconstructions(trained.vae, x, k=2, seed=seed, ids=[index]).draws
             for seed, index in ((0, 5), (1, 5), (0, 6))}
    assert not torch.equal(draws[0, 5], draws[1, 5]) and not torch.equal(draws[0, 5], draws[0, 6])


def test_an_image_gets_the_same_elbo_alone_among_others_and_repeated(trained, mnist):
    def elbo_of(ids):
        return analysis.elbo_estimate(trained.vae, mnist.test_images[ids], ids=ids, seed=0, draws=16)

    alone = elbo_of([999])
    among, repeated = elbo_of([7, 42, 999]), elbo_of([999, 999, 999])
    assert torch.equal(among.mean[2:], alone.mean) and torch.equal(among.se[2:], alone.se)
    assert torch.equal(repeated.mean, alone.mean.expand(3)) and torch.equal(repeated.se, alone.se.expand(3))


def test_elbo_estimate_standard_error_shrinks_as_one_over_the_root_of_the_draws(trained, mnist):
    x, ids = mnist.test_images[:8], range(8)
    few = analysis.elbo_estimate(trained.vae, x, ids=ids, seed=0, draws=16)
    many = analysis.elbo_estimate(trained.vae, x, ids=ids, seed=0, draws=256)
    assert few.mean.shape == few.se.shape == (8,) and (few.se > 0).all()
    assert many.se.mean() < few.se.mean() / 2  # 16 times the draws: a quarter of the error
    # The same mean: 16 draws' true error is about 4 times the (well estimated) error of 256.
    assert ((few.mean - many.mean).abs() < 5 * 4 * many.se).all()


def test_elbo_estimate_needs_two_draws_for_a_standard_error(trained, mnist):
    with pytest.raises(ValueError, match="draws must be at least 2"):
        analysis.elbo_estimate(trained.vae, mnist.test_images[:2], ids=[0, 1], seed=0, draws=1)


def test_per_image_elbo_averages_to_minus_the_test_loss(trained, mnist):
    from vae_core.train import evaluate
    x = mnist.test_images[:500]
    elbo = analysis.elbo_estimate(trained.vae, x, ids=range(500), seed=0, draws=8)
    assert elbo.mean.shape == (500,) and (elbo.mean < 0).all()
    # Independent estimates of the same mean (8 draws per image against one): close, not equal.
    assert -elbo.mean.mean().item() == pytest.approx(evaluate(trained.vae, x, 256, seed=1), rel=0.01)


def test_latent_means_are_batched_without_changing_them(trained, mnist):
    x = mnist.test_images[:300]
    means = analysis.latent_means(trained.vae, x, batch_size=64)
    assert means.shape == (300, 50) and means.dtype == np.float32
    np.testing.assert_allclose(means, trained.vae.encoder(x)[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_interpolation_runs_from_one_code_to_the_other(trained):
    z_a, z_b = torch.zeros(50), torch.ones(50)
    path = analysis.interpolate(trained.vae, z_a, z_b, steps=5)
    assert path.shape == (5, 28, 28)
    assert torch.allclose(path[0], analysis.decode(trained.vae, z_a[None])[0])
    assert torch.allclose(path[-1], analysis.decode(trained.vae, z_b[None])[0])
    with pytest.raises(ValueError, match="steps must be at least 2"):
        analysis.interpolate(trained.vae, z_a, z_b, steps=1)


def test_pca_projects_on_the_widest_axes():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 5)) * np.array([10.0, 5.0, 0.1, 0.1, 0.1])
    xy = analysis.pca_2d(points)
    assert xy.shape == (500, 2)
    assert np.corrcoef(np.abs(xy[:, 0]), np.abs(points[:, 0]))[0, 1] > 0.99


@pytest.fixture(scope="module")
def blobs():
    """Three well separated clusters in 10-d."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=20, size=(3, 10))
    labels = np.repeat(np.arange(3), 100)
    return (centres[labels] + rng.normal(size=(300, 10))).astype(np.float32), labels


def test_tsne_keeps_clusters_apart_and_reports_progress_to_the_end(blobs):
    points, labels = blobs
    seen = []
    xy = analysis.tsne_2d(points, early_exaggeration_iter=50, n_iter=100, progress=seen.append)
    assert xy.shape == (300, 2)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen) and len(seen) > 5
    centroids = np.stack([xy[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(xy[labels == c] - centroids[c], axis=1).mean() for c in range(3))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 3 * spread


def test_tsne_can_be_cancelled_while_it_runs(blobs):
    points, _ = blobs
    seen = []
    with pytest.raises(Cancelled):
        analysis.tsne_2d(points, progress=seen.append, should_stop=lambda: len(seen) > 3)
    assert seen[-1] < 1.0


def test_scikit_learn_tsne_is_available_as_the_reference(blobs):
    xy = analysis.tsne_2d(blobs[0][:60], method="sklearn", perplexity=10)
    assert xy.shape == (60, 2)
    with pytest.raises(ValueError, match="method must be one of opentsne, sklearn"):
        analysis.tsne_2d(blobs[0], method="umap")
