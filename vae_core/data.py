"""MNIST from the project's `data/` folder as preloaded tensors.

    from vae_core.data import load_mnist, batches
    mnist = load_mnist()                      # train 60000 x 784, test 10000 x 784, floats in [0, 1]
    for x in batches(mnist.train_images, 256, generator=g):
        ...

The shipped `.gz` files are extracted once, next to themselves, and checked
against the published MD5s; the network is never used. The IDX files are read
as torchvision.datasets.MNIST reads them, without importing torchvision (1.3 s).
Pixels stay grey in [0, 1], as in the tutorial.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from vae_core.config import DATA_ROOT, MNIST_SIDE
from vae_core.errors import DataError

DEFAULT_ROOT = DATA_ROOT  # the project's data/, where the shipped MNIST files are

# MD5 of each uncompressed file, as published with MNIST (see data/README.md).
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@dataclass(frozen=True)
class MNISTTensors:
    train_images: torch.Tensor  # (60000, 784) float32 in [0, 1]
    train_labels: torch.Tensor  # (60000,) int64
    test_images: torch.Tensor  # (10000, 784) float32 in [0, 1]
    test_labels: torch.Tensor  # (10000,) int64

    def limit(self, n: int | None) -> MNISTTensors:
        """The first `n` training images (all when n is None); the test set is kept whole."""
        if n is None:
            return self
        return MNISTTensors(self.train_images[:n], self.train_labels[:n], self.test_images, self.test_labels)

    def to(self, device: torch.device | str) -> MNISTTensors:
        """The same tensors on `device`."""
        return MNISTTensors(*(t.to(device) for t in (self.train_images, self.train_labels,
                                                     self.test_images, self.test_labels)))


def load_mnist(root: str | Path = DEFAULT_ROOT) -> MNISTTensors:
    """Both MNIST splits as float tensors, extracting and verifying the shipped files once."""
    train, test = (load_split(root, train) for train in (True, False))
    return MNISTTensors(train[0], train[1], test[0], test[1])


def load_split(root: str | Path = DEFAULT_ROOT, train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's images (n, 784) in [0, 1] and labels (n,); the test split by default."""
    raw = Path(root) / "MNIST" / "raw"
    for name, md5 in RAW_MD5.items():  # all four checked, whichever split is read
        _ensure_extracted(raw, name, md5)
    return _read_split(Path(root), raw, train)


def batches(images: torch.Tensor, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Mini-batches by index, shuffled when a generator is given; the last partial batch is kept."""
    n = images.shape[0]
    if generator is None:
        order = None
    else:
        order = torch.randperm(n, generator=generator).to(images.device)
    for start in range(0, n, batch_size):
        if order is None:
            yield images[start:start + batch_size]
        else:
            yield images[order[start:start + batch_size]]


def _read_split(root: Path, raw: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if train else "t10k"
    images = _read_idx(raw / f"{prefix}-images-idx3-ubyte", 3)
    labels = _read_idx(raw / f"{prefix}-labels-idx1-ubyte", 1)
    if tuple(images.shape[1:]) != (MNIST_SIDE, MNIST_SIDE) or images.shape[0] != labels.shape[0]:
        raise DataError(f"the MNIST files in {raw} hold {images.shape[0]} images of {tuple(images.shape[1:])} pixels "
                        f"and {labels.shape[0]} labels, not one label per {MNIST_SIDE} x {MNIST_SIDE} image. "
                        f"Restore the folder with `git checkout -- data/MNIST/raw`.")
    return images.reshape(images.shape[0], -1).float().div_(255.0), labels.long()


def _read_idx(path: Path, dims: int) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format: a 4-byte magic, big-endian sizes, the bytes), as uint8.
    What torchvision.datasets.MNIST reads (tests/test_data.py holds them equal), without importing
    torchvision, whose import (1.3 s here, most of it torch._dynamo) would double a training process's start."""
    data = path.read_bytes()
    header = 4 + 4 * dims
    if len(data) < header or data[:4] != bytes([0, 0, 0x08, dims]):
        raise DataError(f"cannot read MNIST from {path}: it is not an IDX file of {dims}-d unsigned bytes. "
                        f"Restore the folder with `git checkout -- data/MNIST/raw` and delete the extracted "
                        f"*-ubyte files.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    if len(data) != header + math.prod(shape):
        raise DataError(f"cannot read MNIST from {path}: its header promises {shape} bytes, and it holds "
                        f"{len(data) - header}. Restore the folder with `git checkout -- data/MNIST/raw` and "
                        f"delete the extracted *-ubyte files.")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).reshape(shape)


def _ensure_extracted(raw: Path, name: str, md5: str) -> None:
    target = raw / name
    if target.exists():
        # Checked once per process while the file stays as it was, as git's index trusts a file's stat: the four
        # MD5s cost 0.14 s of CPU at each load (the AppTest tests, which clear Streamlit's caches, load at each).
        identity = _identity(target)
        if _VERIFIED.get(target) == identity:
            return
        if hashlib.md5(target.read_bytes()).hexdigest() == md5:  # worth it to never read a damaged file
            _VERIFIED[target] = identity
            return
        target.unlink()  # changed since it was extracted: extracted again from the checked .gz below
    archive = raw / f"{name}.gz"
    if not archive.exists():
        raise DataError(f"missing MNIST file {archive}. Restore it with `git checkout -- {_rel(archive)}` "
                        f"or copy the official {archive.name} into {raw}.")
    # Extract into a temporary folder beside the target and rename, so that an
    # interrupted extraction never leaves a half-written file to be read later.
    with tempfile.TemporaryDirectory(dir=raw, prefix=".extract-") as tmp:
        extracted = Path(tmp) / name
        try:
            with gzip.open(archive) as source, open(extracted, "wb") as out:
                shutil.copyfileobj(source, out)
        except Exception as exc:  # gzip.BadGzipFile, EOFError, zlib.error...
            raise DataError(f"corrupt MNIST file {archive}: {exc}. Restore it with "
                            f"`git checkout -- {_rel(archive)}` or copy the official file.") from exc
        digest = hashlib.md5(extracted.read_bytes()).hexdigest()
        if digest != md5:
            raise DataError(f"corrupt MNIST file {archive}: its content has MD5 {digest}, expected {md5}. "
                            f"Restore it with `git checkout -- {_rel(archive)}` or copy the official file.")
        os.replace(extracted, target)
    _VERIFIED[target] = _identity(target)


# File -> its _identity when its MD5 last matched in this process.
_VERIFIED: dict[Path, tuple[int, int, int, int]] = {}


def _identity(path: Path) -> tuple[int, int, int, int]:
    """What changes when a file is replaced or written: its inode, size, and modification and change times (ns)."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
