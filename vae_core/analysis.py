"""What a trained VAE shows: prior samples, reconstructions, decoded codes, T-SNE maps.

    from vae_core import analysis
    imgs = analysis.prior_samples(vae, 64, seed=0)                 # (64, 28, 28) in [0, 1]
    rec = analysis.reconstructions(vae, x, k=3, seed=0, ids=idx)   # draws (n, 3, 28, 28), at_loc (n, 28, 28)
    imgs = analysis.decode(vae, z)                                 # (n, 28, 28): decoder means at codes z
    xy = analysis.tsne_2d(codes.loc, progress=print)               # (10000, 2) numpy

Every function returns arrays and draws nothing; figures belong to the app. The
estimators (ELBOs, the IWAE bound) are in vae_core.objectives; the codes, their
neighbours, paths and maps in vae_core.latent.
Functions that sample take a seed and use their own RNG, so they are
repeatable and never disturb a training RNG stream. Per-image draws come from
an RNG seeded by (seed, the image's id), so an image's figures do not depend
on its neighbours in the batch. Nothing here touches process-wide state (Pyro's
effect stack, torch's global RNG, the thread count; see vae_core.objectives), so
the server's threads may call any of these at once and each gets what it would alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from vae_core.model import VAE
from vae_core.objectives import Cancelled, image_seed

TSNE_METHODS = ("opentsne", "sklearn")
# openTSNE iterations (early exaggeration, then the rest). On the shipped run's
# 10,000 means (bench/tsne.py, 2 cores) its defaults of (250, 500) took 38.5 s,
# scikit-learn 34.4 s, and (100, 200) with both cores 7.9 s at a 10-NN
# preservation of 0.421 against scikit-learn's 0.427.
TSNE_FAST = (100, 200)
# openTSNE's neighbour search. Exact neighbours of the 10,000 means took 9.6 s in all against 11.9 s
# with its default approximate search (Annoy), at the same 10-NN preservation (0.421), on 2 cores.
TSNE_NEIGHBOURS = "exact"


def tsne_name(perplexity: float, seed: int) -> str:
    """Cache name of a T-SNE map of the test-set means made by tsne_2d's defaults."""
    return f"tsne-p{perplexity:g}-s{seed}-i{TSNE_FAST[0]}+{TSNE_FAST[1]}-{TSNE_NEIGHBOURS}"


@dataclass(frozen=True)
class Reconstructions:
    draws: torch.Tensor  # (n, k, H, W): decoder means at k draws z ~ q(z | x)
    at_loc: torch.Tensor  # (n, H, W): decoder mean at z = z_loc


@torch.no_grad()
def prior_samples(vae: VAE, n: int, seed: int) -> torch.Tensor:
    """Image means p(x | z) at `n` draws z ~ p(z) = Normal(0, I); shape (n, H, W)."""
    cfg = vae.config
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cfg.z_dim, generator=g).to(_device(vae))
    return _images(vae, vae.decode(z))


@torch.no_grad()
def reconstructions(vae: VAE, images: torch.Tensor, k: int, seed: int,
                    ids: Sequence[int] | None = None) -> Reconstructions:
    """`k` stochastic reconstructions of each image (reconstruct_img) and the one at z_loc.

    Image i draws from its own RNG, seeded by (seed, ids[i]); ids default to 0..n-1.
    """
    x = _flat(vae, images)  # (n, x_dim)
    ids = range(x.shape[0]) if ids is None else ids
    draws, at_loc = [], []
    # One image at a time, so its numbers depend on nothing else in the batch.
    for one, index in zip(x, ids, strict=True):
        g = torch.Generator(device=x.device).manual_seed(image_seed(seed, int(index)))
        draws.append(vae.reconstruct_img(one.expand(k, -1), generator=g))  # (k, x_dim)
        at_loc.append(vae.decode(vae.encoder(one[None])[0]))  # (1, x_dim)
    cfg = vae.config
    return Reconstructions(torch.stack(draws).reshape(x.shape[0], k, cfg.image_height, cfg.image_width).cpu(),
                           _images(vae, torch.cat(at_loc)))


@torch.no_grad()
def decode(vae: VAE, z: torch.Tensor) -> torch.Tensor:
    """Decoder means at the codes `z` of shape (n, z_dim); shape (n, H, W)."""
    return _images(vae, vae.decode(z.to(_device(vae))))


def tsne_2d(points: np.ndarray, *, seed: int = 0, method: str = "opentsne",
            early_exaggeration_iter: int = TSNE_FAST[0], n_iter: int = TSNE_FAST[1], perplexity: float = 30.0,
            progress: Callable[[float], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> np.ndarray:
    """2-D T-SNE of `points` (n, d); progress gets fractions in [0, 1]; a stop raises Cancelled.

    "opentsne" (FFT-accelerated, reports progress and can be cancelled) is the
    default; "sklearn" is scikit-learn's exact settings as Pyro's example uses,
    kept as the reference, and reports only its start and end.
    """
    if method not in TSNE_METHODS:
        raise ValueError(f"method must be one of {', '.join(TSNE_METHODS)}, got {method!r}")
    report = progress or (lambda fraction: None)
    if should_stop():
        raise Cancelled("T-SNE was cancelled before it started")
    report(0.0)
    if method == "sklearn":
        from sklearn.manifold import TSNE as SkTSNE

        embedding = SkTSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(points)
    else:
        embedding = _opentsne(points, seed, early_exaggeration_iter, n_iter, perplexity, report, should_stop)
    report(1.0)
    return np.asarray(embedding, dtype=np.float32)


def _opentsne(points, seed, early_exaggeration_iter, n_iter, perplexity, report, should_stop):
    from openTSNE import TSNE

    every = 10
    total = early_exaggeration_iter + n_iter
    calls = 0

    def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
        nonlocal calls
        calls += 1
        if should_stop():
            raise Cancelled("T-SNE was cancelled")
        # The nearest-neighbour search before the first iteration is about a tenth of the work.
        report(0.1 + 0.9 * min(1.0, calls * every / total))
        return False

    tsne = TSNE(n_components=2, perplexity=perplexity, early_exaggeration_iter=early_exaggeration_iter,
                n_iter=n_iter, neighbors=TSNE_NEIGHBOURS, n_jobs=os.cpu_count() or 1, random_state=seed,
                callbacks=callback, callbacks_every_iters=every)
    return tsne.fit(points)


def _device(vae: VAE) -> torch.device:
    return next(vae.parameters()).device


def _flat(vae: VAE, images: torch.Tensor) -> torch.Tensor:
    return images.reshape(images.shape[0], -1).to(_device(vae))  # (n, x_dim) on the model's device


def _images(vae: VAE, flat: torch.Tensor) -> torch.Tensor:
    cfg = vae.config
    return flat.reshape(flat.shape[0], cfg.image_height, cfg.image_width).cpu()


