"""The peak memory (RSS) of a training process, estimated from its Config alone, before anything is allocated.

    from vae_core.memory import training_bytes
    training_bytes(Config()) / 2**30                    # about 1.2 GiB: the tutorial's settings
    training_bytes(Config(batch_size=60000)) / 2**30    # about 3.3 GiB (3.0 measured)

The start rule (vae_core.start) refuses, in the app, a run whose estimate passes the server's budget ($VAE_MEMORY_GIB).
The terms are fitted to the peak RSS (ru_maxrss) of real `python -m vae_core
train --epochs 1` runs on CPU: batches of 16 to 60,000, the tutorial's hidden
layer and wider or deeper ones (2000; 1000,1000), the tutorial's z_dim and 8
times it; `python -m bench.train_memory` measures them again
and prints each beside this estimate. No torch import: the Train page checks
a start with it.
"""

from __future__ import annotations

from vae_core.config import Config
from vae_core.sizes import parameter_count

MIB = 2**20
FLOAT = 4  # bytes: every tensor is float32
# The process before its first step: Python with torch and Pyro imported (not torchvision, nor torch's
# dynamo: see vae_core.data and vae_core.adam) and both MNIST splits preloaded as float32 (70,000 x 784
# x 4 B = 220 MB, more while the bytes are converted). 826 MiB measured for a whole run at batch 256.
BASE_BYTES = 800 * MIB
PARAM_COPIES = 4  # the weights, their gradients and Adam's two moments
# Floats one training step holds per image of its batch, forward and backward, Pyro's traces of model
# and guide included: per pixel, per hidden unit (summed over the layers) and per latent dimension.
# Fitted: batch 60,000 at hidden 400 peaks 2.1 GB above the base, 9,100 floats per image.
STEP_FLOATS = (8, 4, 16)
# The test pass and the ELBO's parts at a test epoch (the first epoch is one) run without gradients in
# batches of 8 training batches (vae_core.train), of at most the 10,000 test images, and what they take
# adds to what the allocator kept from the steps: floats per image, as above.
TEST_BATCHES = 8
TEST_IMAGES = 10_000
TEST_FLOATS = (2, 1, 10)
# The latent map after the last epoch: openTSNE over the 10,000 test codes, about 3 copies of them
# beside its neighbour graph (175 MiB above the base measured at z 50, 215 MiB at z 400).
MAP_BYTES = 200 * MIB
MAP_FLOATS_PER_Z = 3 * TEST_IMAGES
# Peaks of one setting move by about 5 % between runs (the allocator): the fit plus 10 %, so that the
# estimate stays above what was measured (3 to 27 % above it).
MARGIN = 1.1


def training_bytes(config: Config) -> int:
    """Peak RSS of `python -m vae_core train` with `config`, in bytes, erring high."""
    x, z, hidden = config.x_dim, config.z_dim, sum(config.hidden)

    def floats(per_image: tuple[int, int, int], images: int) -> int:
        per_pixel, per_unit, per_latent = per_image
        return images * (per_pixel * x + per_unit * hidden + per_latent * z)

    weights = PARAM_COPIES * parameter_count(config)
    step = floats(STEP_FLOATS, config.batch_size)
    test = floats(TEST_FLOATS, min(TEST_BATCHES * config.batch_size, TEST_IMAGES))
    latent_map = MAP_BYTES + FLOAT * MAP_FLOATS_PER_Z * z
    return int(MARGIN * (BASE_BYTES + FLOAT * weights + max(FLOAT * (step + test), latent_map)))
