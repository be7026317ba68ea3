"""Real timeline frames for the Timeline's tests: a small model trained in-process, recorded after each epoch.

    state = record(folder, mnist, Config(epochs=3, limit=1024, batch_size=128, test_every=1))
    # folder/checkpoint.pt, folder/timeline/epoch-0001.npz ... epoch-0003.npz

The frames are what the trainer records (vae_core.timeline's docstring): the codes of the fixed
2,000-digit subset of the test set, KL per dimension and the active units over the whole test set.
"""

from __future__ import annotations

from pathlib import Path

from vae_core import checkpoint as ckpt
from vae_core import runs, timeline
from vae_core.monitor import timeline_frame
from vae_core.config import Config
from vae_core.data import MNISTTensors
from vae_core.train import Callbacks, TrainState, fit, new_state


def frame_of(state: TrainState, mnist: MNISTTensors) -> timeline.Frame:
    """The frame of the model as it is after `state.epoch` epochs, as the trainer records it."""
    labels = mnist.test_labels.numpy()
    indices = timeline.subset(labels)
    vae = state.vae.eval()
    frame = timeline_frame(vae, state.epoch, mnist.test_images, indices, labels[indices])
    vae.train()
    return frame


class _Recorder(Callbacks):
    def __init__(self, folder: Path, mnist: MNISTTensors):
        self.folder, self.mnist = folder, mnist

    def on_epoch_end(self, state: TrainState) -> None:
        timeline.write_frame(self.folder, frame_of(state, self.mnist))


def record(folder: Path, mnist: MNISTTensors, config: Config) -> TrainState:
    """Train `config` on `mnist` from scratch, a frame written into run folder `folder` after every epoch and
    the checkpoint saved at the end (folder/checkpoint.pt)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = new_state(config)
    fit(state, mnist, callbacks=_Recorder(folder, mnist))
    ckpt.save_state(state, folder / runs.CHECKPOINT_FILE)
    return state



THREE_EPOCHS = Config(epochs=3, limit=1024, batch_size=128, test_every=1)  # a frame at each of 3 short epochs
