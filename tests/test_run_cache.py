"""The arrays kept per checkpoint version (vae_core.run_cache): the one "read, else compute and keep", and cached
arrays that load but are wrong, each judged from its header (and a zip's directory) before use.

A cache file is real: written by numpy as the app writes it, or as damage
would leave it. A file far larger than it looks (2 GiB of zeros in a 2 MB
.npz, 50 million points in a sparse .npy) is refused from what its headers
declare, before any of its data is read.
"""

from __future__ import annotations

import errno
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from ui.home import KEPT, KEPT_ARRAYS, KEPT_BYTES
from vae_core import files, npz, run_cache, runs
from vae_core.files import SaveError

DIGEST = "ab" * 32
TWO_GIB = (32768, 65536)  # a uint8 picture of 2 GiB


def sparse_npy(file: Path, shape: tuple[int, ...], dtype=np.float64) -> Path:
    """A real .npy of zeros with `shape`: its header, then a hole the size of its data (nothing written)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.dtype(dtype)
    with open(file, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": shape})
        f.truncate(f.tell() + int(np.prod(shape, dtype=object)) * dtype.itemsize)
    return file


def zeros_npz(file: Path, arrays: dict[str, np.ndarray | tuple[int, ...]]) -> Path:
    """An .npz as np.savez_compressed writes it (a zip64 archive of deflated .npy members); a member given as a
    shape is that many uint8 zeros (2 GiB of zeros compress to about 2 MB).

    Deflating 2 GiB takes zlib about 5 CPU-s, so the zeros are deflated once per 16 MiB block: after a full
    flush the compressor starts afresh, so every block of zeros deflates to the same bytes, repeated here."""
    file.parent.mkdir(parents=True, exist_ok=True)
    block = bytes(1 << 24)
    with open(file, "wb") as out:
        directory = []
        for name, value in arrays.items():
            head, zeros = io.BytesIO(), 0
            if isinstance(value, np.ndarray):
                np.lib.format.write_array(head, value, allow_pickle=False)
            else:
                np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": value})
                zeros = int(np.prod(value))
            deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = [deflate.compress(head.getvalue()), deflate.flush(zlib.Z_FULL_FLUSH)]
            crc = zlib.crc32(head.getvalue())
            whole, rest = divmod(zeros, len(block))
            if whole:
                repeated = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
                data.append(repeated * whole)
                for _ in range(whole):
                    crc = zlib.crc32(block, crc)
            data += [deflate.compress(block[:rest]), deflate.flush()]
            crc = zlib.crc32(block[:rest], crc)
            packed, size, member = b"".join(data), len(head.getvalue()) + zeros, f"{name}.npy".encode()
            sizes = struct.pack("<HHQQ", 1, 16, size, len(packed))  # zip64: both sizes in the extra field
            directory.append((member, crc, sizes, out.tell()))
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc,
                                  0xFFFFFFFF, 0xFFFFFFFF, len(member), len(sizes)) + member + sizes + packed)
        start = out.tell()
        for member, crc, sizes, offset in directory:
            out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, zipfile.ZIP_DEFLATED, 0, 0x21, crc,
                                  0xFFFFFFFF, 0xFFFFFFFF, len(member), len(sizes), 0, 0, 0, 0, offset)
                      + member + sizes)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(directory), len(directory), out.tell() - start,
                              start, 0))
    return file


@pytest.fixture(scope="module")
def two_gib_npz(tmp_path_factory) -> Path:
    """A 2 MB .npz whose one picture holds 2 GiB of zeros."""
    return zeros_npz(tmp_path_factory.mktemp("bomb") / "bomb.npz", {"samples": TWO_GIB})


def test_an_npz_member_that_would_expand_past_the_limit_is_refused_from_the_zip_directory(two_gib_npz):
    assert two_gib_npz.stat().st_size < 3 << 20  # small on disk
    (member,) = zipfile.ZipFile(two_gib_npz).infolist()
    assert member.file_size > 2 << 30  # what the zip's directory says it expands to
    picture = {"samples": ((None, None), np.uint8)}
    assert not npz.npz_fits(two_gib_npz, picture, KEPT_BYTES)
    assert npz.npz_fits(two_gib_npz, picture, limit=4 << 30)  # its header is sound: only its size refuses it


def test_a_kept_set_over_the_limit_is_deleted_and_never_returned(two_gib_npz, tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    file = run_cache.cache_file(path, KEPT, DIGEST, ".npz")
    file.parent.mkdir()
    file.write_bytes(two_gib_npz.read_bytes())
    assert run_cache.load_cached_set(path, KEPT, DIGEST, {"samples": ((None, None), np.uint8)}, KEPT_BYTES) is None
    assert not file.exists()


def test_a_20000_by_20000_thumbnail_is_refused_by_the_kept_arrays_limit(tmp_path):
    file = zeros_npz(tmp_path / "big.npz", {"samples": (20000, 20000)})
    assert not npz.npz_fits(file, {"samples": KEPT_ARRAYS["samples"]}, KEPT_BYTES)


def test_a_set_with_a_missing_or_an_extra_array_is_refused(tmp_path):
    two = zeros_npz(tmp_path / "two.npz", {"a": np.zeros(3), "b": np.zeros(3)})
    want = {"a": ((3,), np.floating)}
    assert not npz.npz_fits(two, want)
    assert not npz.npz_fits(two, {**want, "b": want["a"], "c": want["a"]})
    assert npz.npz_fits(two, {**want, "b": want["a"]})


@pytest.mark.parametrize("shape, dtype", [((5, 2), np.float32), ((10000, 3), np.float32), ((10000,), np.float32),
                                          ((10000, 2), "<U3"), ((10000, 2), np.int64), ((10000, 2), object)],
                         ids=["5x2", "10000x3", "one axis", "strings", "integers", "objects"])
def test_a_cached_array_of_another_shape_or_dtype_does_not_fit(shape, dtype):
    assert not npz.header_fits(shape, np.dtype(dtype), ((10000, 2), np.floating))


def test_an_array_the_caller_asks_for_fits_with_any_length_on_a_free_axis():
    assert npz.header_fits((10000, 2), np.dtype(np.float32), ((10000, 2), np.floating))
    assert npz.header_fits((276, 368), np.dtype(np.uint8), ((None, None), np.uint8))


def test_a_sparse_map_of_50_million_points_is_judged_from_its_header_then_deleted(tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    file = sparse_npy(run_cache.cache_file(path, "tsne", DIGEST), (50_000_000, 2))
    with open(file, "rb") as f:
        assert npz.array_header(f) == ((50_000_000, 2), np.dtype(np.float64))  # 800 MB declared
    assert run_cache.load_cached(path, "tsne", DIGEST, shape=(10000, 2)) is None
    assert not file.exists()


def test_a_header_declaring_more_than_the_limit_does_not_fit_whatever_shape_was_asked():
    assert not npz.header_fits((50_000_000, 2), np.dtype(np.float64))  # 800 MB over 256 MB
    assert not npz.header_fits((2**40, 2**40), np.dtype(np.float64), ((None, None), np.floating))  # no overflow


def test_a_string_typed_cache_is_deleted_and_a_float_one_of_the_right_shape_returned(tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    run_cache.store_cached(path, "elbos", DIGEST, np.full(10000, "-90.5"))
    assert run_cache.load_cached(path, "elbos", DIGEST, shape=(10000,)) is None
    assert not run_cache.cache_file(path, "elbos", DIGEST).exists()
    run_cache.store_cached(path, "elbos", DIGEST, np.full(10000, -90.5, np.float32))
    assert run_cache.load_cached(path, "elbos", DIGEST, shape=(10000,)).tolist() == [-90.5] * 10000


def test_a_cache_folder_that_is_a_file_reads_as_nothing_cached_and_is_left_alone(tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    (tmp_path / runs.CACHE_FOLDER).write_text("not a folder")
    assert run_cache.load_cached(path, "tsne", DIGEST, shape=(10000, 2)) is None
    assert run_cache.load_cached_set(path, KEPT, DIGEST, KEPT_ARRAYS, KEPT_BYTES) is None
    assert (tmp_path / runs.CACHE_FOLDER).read_text() == "not a folder"


def test_a_file_standing_in_for_the_cache_folder_is_a_save_error_naming_it(tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    (tmp_path / runs.CACHE_FOLDER).write_text("not a folder")
    with pytest.raises(SaveError, match=r"cache is a file, not a folder; move it away"):
        run_cache.store_cached(path, "tsne", DIGEST, np.zeros((10000, 2)))


def test_arrays_cached_together_come_back_as_stored_and_a_damaged_set_is_deleted(tmp_path):
    path = tmp_path / runs.CHECKPOINT_FILE
    arrays = {"image": np.arange(12, dtype=np.uint8).reshape(3, 4), "name": np.asarray("tsne-p30")}
    run_cache.store_cached_set(path, "set", DIGEST, arrays)
    back = run_cache.load_cached_set(path, "set", DIGEST)
    assert back.keys() == arrays.keys() and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    file = run_cache.cache_file(path, "set", DIGEST, ".npz")
    file.write_bytes(file.read_bytes()[:40])  # cut short, as by a full disk outside atomic_write
    assert run_cache.load_cached_set(path, "set", DIGEST) is None and not file.exists()


class _Compute:
    """A computation that counts its calls."""

    def __init__(self, value) -> None:
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


@pytest.mark.parametrize("damage", ["cut short", "another shape", "strings"])
def test_cached_computes_again_and_replaces_a_damaged_or_wrong_array_then_reads_it(tmp_path, damage):
    path, xy = tmp_path / runs.CHECKPOINT_FILE, np.arange(20_000, dtype=np.float32).reshape(10_000, 2)
    run_cache.store_cached(path, "tsne", DIGEST, {"cut short": xy, "another shape": xy[:5],
                                                  "strings": xy.astype(str)}[damage])
    file = run_cache.cache_file(path, "tsne", DIGEST)
    if damage == "cut short":
        file.write_bytes(file.read_bytes()[:1000])
    compute = _Compute(xy)
    for _ in range(2):  # the second read comes from the file the first one replaced
        value, error = run_cache.cached(path, "tsne", DIGEST, compute, ((10_000, 2), np.floating))
        assert np.array_equal(value, xy) and error is None
    assert compute.calls == 1 and np.array_equal(np.load(file), xy)


def test_cached_reads_a_set_again_only_while_it_fits_and_replaces_one_that_does_not(tmp_path):
    path, expected = tmp_path / runs.CHECKPOINT_FILE, {"a": ((3,), np.floating)}
    run_cache.store_cached_set(path, "set", DIGEST, {"a": np.zeros(3)})
    compute = _Compute({"a": np.ones(3)})
    value, _ = run_cache.cached(path, "set", DIGEST, compute, expected, fits=lambda arrays: arrays["a"].sum() > 0)
    assert compute.calls == 1 and value["a"].tolist() == [1.0, 1.0, 1.0]
    value, _ = run_cache.cached(path, "set", DIGEST, compute, expected, fits=lambda arrays: arrays["a"].sum() > 0)
    assert compute.calls == 1 and value["a"].tolist() == [1.0, 1.0, 1.0]  # read: the one kept fits


def test_cached_on_a_full_disk_returns_the_value_with_why_it_was_not_kept_and_leaves_no_file(tmp_path, monkeypatch):
    path, xy = tmp_path / runs.CHECKPOINT_FILE, np.zeros((10_000, 2), np.float32)
    monkeypatch.setattr(files, "_free_bytes", lambda path: 0)  # the disk is full

    def short_write(f, value, allow_pickle):  # numpy's words when the disk took only part of an array
        raise OSError("20000 requested and 19424 written")

    monkeypatch.setattr(np, "save", short_write)
    value, error = run_cache.cached(path, "tsne", DIGEST, lambda: xy, ((10_000, 2), np.floating))
    assert value is xy and error.errno == errno.ENOSPC
    assert run_cache.unkept_reason(error) == "no space left on device"
    assert run_cache.cached_names(path, DIGEST) == [] and list((tmp_path / runs.CACHE_FOLDER).iterdir()) == []
