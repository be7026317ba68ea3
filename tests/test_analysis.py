"""vae_core.analysis: prior samples, reconstructions, decoded codes and T-SNE maps of a small real run."""

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


def test_decode_gives_the_decoders_mean_image_at_each_code(trained):
    z = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    images = analysis.decode(trained.vae, z)
    assert images.shape == (4, 28, 28)
    torch.testing.assert_close(images, trained.vae.decode(z).reshape(4, 28, 28).detach())


def test_reconstructions_of_an_image_depend_on_the_seed_and_its_index(trained, mnist):
    x = mnist.test_images[[5]]
    draws = {(seed, index): analysis.reconstructions(trained.vae, x, k=2, seed=seed, ids=[index]).draws
             for seed, index in ((0, 5), (1, 5), (0, 6))}
    assert not torch.equal(draws[0, 5], draws[1, 5]) and not torch.equal(draws[0, 5], draws[0, 6])


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
