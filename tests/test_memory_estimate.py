"""The memory a training run is estimated to take, against what real runs take (peak RSS)."""

from __future__ import annotations

import pytest

from bench.train_memory import peak_rss, setting
from ui import jobs
from vae_core.memory import training_bytes
from vae_core.config import Config


@pytest.mark.slow
@pytest.mark.parametrize("batch, hidden", [(256, 400), (20000, 400)])
def test_the_estimate_covers_the_peak_rss_of_a_real_training_run_without_doubling_it(batch, hidden):
    config = setting(batch, hidden)  # one epoch, on as many images as one batch (2,000 at the least)
    measured = peak_rss(config)
    ratio = training_bytes(config) / measured
    assert 1.0 <= ratio <= 1.5, f"estimate / measured peak RSS = {ratio:.2f} ({measured / 2**20:.0f} MiB measured)"


def test_a_batch_of_60000_is_refused_under_a_2_gib_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "MEMORY_GIB", 2.0)  # the default; measured, this run peaks at 3.0 GB
    with pytest.raises(jobs.StartRefused, match=r"would take about \d+\.\d GiB to train"):
        jobs.check_start(tmp_path, "big", Config(batch_size=60000))
