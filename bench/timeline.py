"""The cost of recording the timeline: one training epoch at the tutorial's settings beside one frame.

    .venv/bin/python -m bench.timeline                # 2 threads, 3 untested epochs, each followed by a frame
    .venv/bin/python -m bench.timeline --threads 1 --repeat 2

In one process, side by side, so that another process's load weighs on both
alike: the tutorial's model and settings (60,000 images, batch 256, test every
5 epochs) trained by vae_core.train.fit; after its first epoch (which the
tutorial tests), each further epoch is untested and is followed by what the
training process does at a test epoch to record its frame
(vae_core.monitor.timeline_frame: the whole test set encoded, KL per dimension,
active units; then vae_core.timeline.write_frame into a temporary folder).
A frame is recorded at test epochs only (1 in 5 at the tutorial's settings),
so its share of the training time is the ratio printed divided by 5. Goal: a
frame at most 5 % of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vae_core import timeline
from vae_core.config import Config
from vae_core.data import load_mnist
from vae_core.monitor import timeline_frame
from vae_core.train import Callbacks, fit, new_state


class _OneEpoch(Callbacks):
    """Stops fit at the start of the epoch after the one it began."""

    def __init__(self) -> None:
        self.ended = False

    def on_epoch_end(self, state) -> None:
        self.ended = True

    def __call__(self) -> bool:
        return self.ended


def main() -> None:
    """Print each epoch's and frame's seconds, then the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="untested epochs, each followed by a frame (default 3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_mnist()
    test_labels = data.test_labels.numpy()
    indices = timeline.subset(test_labels)
    state = new_state(Config())  # the tutorial's: 100 epochs, batch 256, tested every 5
    epochs, frames = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.repeat + 1):
            stop = _OneEpoch()
            fit(state, data, stop, should_stop=stop)
            start = time.perf_counter()
            frame = timeline_frame(state.vae, state.epoch, data.test_images, indices, test_labels[indices])
            timeline.write_frame(Path(folder), frame)
            seconds = time.perf_counter() - start
            tested = " (tested: with its test pass)" if state.history.test_epochs[-1] == state.epoch - 1 else ""
            print(f"epoch {state.epoch}: {state.history.epoch_seconds[-1]:.2f} s{tested}; frame {seconds:.3f} s "
                  f"({frame.active} active units)")
            if i > 0:  # the first epoch is tested, and the first frame pays for warming up
                epochs.append(state.history.epoch_seconds[-1])
                frames.append(seconds)
    epoch, frame = statistics.median(epochs), statistics.median(frames)
    print(f"median of {args.repeat}, {args.threads} thread(s): untested epoch {epoch:.2f} s, frame {frame:.3f} s, "
          f"frame / epoch {100 * frame / epoch:.1f} % (goal <= 5 %); one frame every 5 epochs adds "
          f"{100 * frame / epoch / 5:.1f} % to training")


if __name__ == "__main__":
    main()
