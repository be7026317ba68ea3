"""T-SNE of a checkpoint's 10,000 test-set latent means: scikit-learn vs the app's openTSNE settings.

    .venv/bin/python -m bench.tsne                    # the shipped tutorial checkpoint
    .venv/bin/python -m bench.tsne --run demo --n 3000

Times each method side by side in this process and scores each embedding by
its 10-NN preservation (the share of every point's 10 nearest neighbours in
the 50-d latent space that stay among its 10 nearest on the map) and by the
10-NN digit accuracy on the map. Last line: the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from vae_core import analysis, latent
from vae_core import checkpoint as ckpt
from vae_core.runs import DEFAULT_ROOT, checkpoint_path
from vae_core.data import load_mnist

# (label, method, early exaggeration iterations, iterations); the app uses APP_SETTINGS.
METHODS = [
    ("scikit-learn TSNE (Pyro's example)", "sklearn", None, None),
    ("openTSNE, its default iterations (250 + 500)", "opentsne", 250, 500),
    ("openTSNE, the app's settings", "opentsne", *analysis.TSNE_FAST),
]


def knn_preservation(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest neighbours in `high` that are among its k nearest in `low`."""
    def neighbours(x):
        return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]

    a, b = neighbours(high), neighbours(low)
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(a, b)]))


def knn_accuracy(low: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Leave-one-out-ish k-NN digit accuracy on the map (half fits, half scores)."""
    half = len(low) // 2
    clf = KNeighborsClassifier(n_neighbors=k).fit(low[:half], labels[:half])
    return float(clf.score(low[half:], labels[half:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="tutorial")
    parser.add_argument("--checkpoints", default=str(DEFAULT_ROOT))
    parser.add_argument("--n", type=int, default=10000, help="test images to embed (default all 10,000)")
    args = parser.parse_args()
    state = ckpt.load_state(checkpoint_path(args.checkpoints, args.run))
    mnist = load_mnist()
    means = latent.encode(state.vae.eval(), mnist.test_images[:args.n]).loc
    labels = mnist.test_labels[:args.n].numpy()
    print(f"run {args.run}, epoch {state.epoch}: {means.shape[0]} x {means.shape[1]} latent means")
    results = []
    for label, method, ee, iters in METHODS:
        kwargs = {} if method == "sklearn" else {"early_exaggeration_iter": ee, "n_iter": iters}
        start = time.perf_counter()
        xy = analysis.tsne_2d(means, method=method, seed=0, **kwargs)
        seconds = time.perf_counter() - start
        results.append((seconds, knn_preservation(means, xy), knn_accuracy(xy, labels)))
        print(f"{label:40s} {seconds:7.1f} s   10-NN preservation {results[-1][1]:.3f}   "
              f"10-NN accuracy {results[-1][2]:.3f}")
    (sk_s, sk_q, _), (default_s, default_q, _), (app_s, app_q, _) = results
    print(f"ratios: scikit-learn/app time {sk_s / app_s:.1f}x (goal >= 3x), openTSNE-default/app time "
          f"{default_s / app_s:.1f}x; preservation app - scikit-learn {app_q - sk_q:+.3f} (goal >= -0.01)")


if __name__ == "__main__":
    main()
