import hashlib
import os
from pathlib import Path
import shutil

import pytest
import torch

from vae_core.data import DataError, batches, load_mnist, load_split

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "MNIST" / "raw"


def test_loader_reproduces_the_published_label_counts(mnist):
    assert torch.bincount(mnist.train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_images_are_flat_grey_floats_in_unit_interval(mnist):
    assert mnist.train_images.shape == (60000, 784) and mnist.test_images.shape == (10000, 784)
    assert mnist.train_images.dtype == torch.float32
    assert 0.0 == mnist.train_images.min() and mnist.train_images.max() == 1.0
    # Grey, not binarised: many pixels strictly between 0 and 1.
    assert ((mnist.train_images > 0) & (mnist.train_images < 1)).sum() > 1_000_000
    assert mnist.train_images.mean().item() * 255 == pytest.approx(33.318, abs=1e-3)
    assert mnist.train_images.std().item() * 255 == pytest.approx(78.567, abs=1e-3)


def test_batches_keep_the_last_partial_batch_and_cover_every_image_once():
    images = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    parts = list(batches(images, 4, torch.Generator().manual_seed(0)))
    assert [p.shape[0] for p in parts] == [4, 4, 2]
    assert sorted(torch.cat(parts).squeeze(1).tolist()) == list(range(10))
    assert torch.cat(parts).squeeze(1).tolist() != list(range(10))  # shuffled


def _copy_raw(tmp_path: Path, skip: str | None = None) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in SHIPPED.glob("*.gz"):
        if gz.name != skip:
            shutil.copy(gz, raw / gz.name)
    return raw


def test_missing_file_error_names_the_file_and_the_fix(tmp_path):
    _copy_raw(tmp_path, skip="t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match=r"missing MNIST file .*t10k-labels-idx1-ubyte\.gz.*git checkout"):
        load_mnist(tmp_path)


def test_corrupt_archive_error_names_the_file(tmp_path):
    raw = _copy_raw(tmp_path)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"corrupt MNIST file .*train-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path)


def test_archive_with_wrong_content_is_caught_by_its_checksum(tmp_path):
    import gzip
    raw = _copy_raw(tmp_path)
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 10008))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: its content has MD5"):
        load_mnist(tmp_path)
    assert not (raw / "t10k-labels-idx1-ubyte").exists()  # nothing half-checked is left to be read



def test_one_split_loads_on_its_own(mnist):
    from vae_core.data import load_split
    images, labels = load_split(train=False)
    assert torch.equal(images, mnist.test_images) and torch.equal(labels, mnist.test_labels)


def test_an_extracted_file_damaged_later_is_extracted_again(tmp_path):
    raw = _copy_raw(tmp_path)
    images, _ = load_split(tmp_path, train=False)  # extracts the test files
    extracted = raw / "t10k-images-idx3-ubyte"
    data = bytearray(extracted.read_bytes())
    data[5000:5100] = b"\xff" * 100  # pixels changed on disk after extraction
    extracted.write_bytes(bytes(data))
    again, _ = load_split(tmp_path, train=False)
    assert torch.equal(again, images)


def test_a_file_damaged_with_its_old_size_and_times_is_still_caught(tmp_path):
    raw = _copy_raw(tmp_path)
    images, _ = load_split(tmp_path, train=False)
    extracted = raw / "t10k-images-idx3-ubyte"
    before = extracted.stat()
    data = bytearray(extracted.read_bytes())
    data[5000:5100] = b"\xff" * 100
    extracted.write_bytes(bytes(data))
    os.utime(extracted, ns=(before.st_atime_ns, before.st_mtime_ns))  # the size and times it had: its ctime moved
    again, _ = load_split(tmp_path, train=False)
    assert torch.equal(again, images)


def test_an_unchanged_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    raw = _copy_raw(tmp_path)
    load_split(tmp_path, train=False)
    hashed = []
    md5 = hashlib.md5
    monkeypatch.setattr(hashlib, "md5", lambda data: hashed.append(len(data)) or md5(data))
    load_split(tmp_path, train=False)
    assert hashed == []  # all four were checked by the first load and are as they were
    (raw / "t10k-labels-idx1-ubyte").touch()
    load_split(tmp_path, train=False)
    assert hashed == [10008]  # the touched one only


@pytest.mark.parametrize("train", [True, False])
def test_the_split_read_without_torchvision_equals_torchvisions_mnist(mnist, train):
    from torchvision.datasets import MNIST

    reference = MNIST(SHIPPED.parent.parent, train=train, download=False)
    images, labels = (mnist.train_images, mnist.train_labels) if train else (mnist.test_images, mnist.test_labels)
    assert torch.equal(images, reference.data.reshape(len(reference), -1).float().div_(255.0))
    assert torch.equal(labels, reference.targets.long())
