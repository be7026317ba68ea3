"""Atomic writes: what a failed one is called, and what it leaves."""

from __future__ import annotations

import pytest

from vae_core.files import SaveError, atomic_write


def test_a_short_write_is_named_a_full_disk_and_the_old_file_kept(tmp_path):
    path = tmp_path / "test-means.npy"
    path.write_bytes(b"the old means")

    def write_part(f):  # numpy's words when the disk took only part of an array (no errno)
        f.write(b"part")
        raise OSError("20000 requested and 19424 written")

    with pytest.raises(SaveError, match=f"no space left on device while saving {path}"):
        atomic_write(path, write_part)
    assert path.read_bytes() == b"the old means"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left
