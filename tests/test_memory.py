"""The memory a training run is estimated to take, against what real runs take (peak RSS)."""

from __future__ import annotations

import pytest

from bench.train_memory import peak_rss, setting
from vae_core.memory import training_bytes


@pytest.mark.slow
@pytest.mark.parametrize("batch, hidden", [(256, 400), (20000, 400)])
def test_the_estimate_covers_the_peak_rss_of_a_real_training_run_without_doubling_it(batch, hidden):
    config = setting(batch, hidden)  # one epoch, on as many images as one batch (2,000 at the least)
    measured = peak_rss(config)
    ratio = training_bytes(config) / measured
    assert 1.0 <= ratio <= 1.5, f"estimate / measured peak RSS = {ratio:.2f} ({measured / 2**20:.0f} MiB measured)"
