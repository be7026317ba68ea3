""".npy and .npz files that may be damaged or hostile, read without spending memory on what they claim.

    from vae_core import npz
    xy = npz.load_array(file, ((10_000, 2), np.floating))             # or ValueError saying why not
    preview = npz.load_set(file, {"samples": ((16, 28, 28), np.floating)}, limit=1 << 20)

`np.load` decompresses whatever an archive's entries expand to, and allocates
whatever shape an array's header names before reading its data (a 2 MB .npz
can hold 2 GiB of zeros; a header can name 5e7 x 2 or 20,000 x 20,000).
Here every header's shape and dtype, and every entry's uncompressed size, are
judged against what the caller expects before any array data is read.
Nothing here imports torch.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

# No array the app keeps is larger: the test set's latent means at the largest z_dim (10,000 x 4,096
# float32) take 164 MB. A header asking for more is damage, refused before any of its data is read.
MAX_ARRAY_BYTES = 256 << 20
# What an array must be: a shape whose None axes may have any length, and a dtype it must be of
# (np.floating, np.integer, np.uint8...); None for either accepts any (the byte limit still holds).
Expected = tuple[tuple[int | None, ...] | None, type | None]
ANY: Expected = (None, None)
_HEADER_ROOM = 64 << 10  # bytes an .npy header may add to its data in an archive's entry


def array_header(f) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an .npy stream's header declares, read without its data; ValueError if none."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:  # 3.0 only adds UTF-8 field names, which no array here has
        raise ValueError(f"an .npy format ({version[0]}.{version[1]}) this app never writes")
    return shape, dtype


def header_fits(shape: tuple[int, ...], dtype: np.dtype, expected: Expected = ANY,
                limit: int = MAX_ARRAY_BYTES) -> bool:
    """Whether an array of `shape` and `dtype` (from its header) is what `expected` asks and holds at most
    `limit` bytes; objects (pickles) never fit."""
    want_shape, want_dtype = expected
    if dtype.hasobject or (want_dtype is not None and not np.issubdtype(dtype, want_dtype)):
        return False
    if want_shape is not None and (len(shape) != len(want_shape)
                                   or any(w is not None and n != w for n, w in zip(shape, want_shape))):
        return False
    return int(np.prod(shape, dtype=object)) * dtype.itemsize <= limit  # Python ints: no overflow


def npz_fits(file: str | Path, expected: dict[str, Expected] | None = None, limit: int = MAX_ARRAY_BYTES,
             exact: bool = True) -> bool:
    """Whether the .npz at `file` holds the `expected` arrays (name: Expected; None: any names; `exact`:
    all of them, else some), each of at most `limit` bytes, judged from the zip's directory and each
    array's header alone: an entry that would expand beyond `limit` is refused before it is decompressed."""
    with zipfile.ZipFile(file) as archive:
        entries = archive.infolist()
        names = [entry.filename.removesuffix(".npy") for entry in entries]
        if expected is not None and (sorted(names) != sorted(expected) if exact else not set(names) <= set(expected)):
            return False
        if len(set(names)) != len(names):
            return False
        for entry, name in zip(entries, names):
            if entry.file_size > limit + _HEADER_ROOM:
                return False
            with archive.open(entry) as f:  # decompresses only as far as the header
                shape, dtype = array_header(f)
            if not header_fits(shape, dtype, expected[name] if expected else ANY, limit):
                return False
    return True


def load_array(file: str | Path, expected: Expected = ANY, limit: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """The array in the .npy at `file` if its header fits `expected` and `limit`, else ValueError; the data is
    read only then. OSError (a missing file) passes through."""
    with open(file, "rb") as f:
        if not header_fits(*array_header(f), expected, limit):
            raise ValueError(f"{Path(file).name} is not the array asked for")
        f.seek(0)
        return np.lib.format.read_array(f, allow_pickle=False)


def load_set(file: str | Path, expected: dict[str, Expected] | None = None, limit: int = MAX_ARRAY_BYTES,
             exact: bool = True) -> dict[str, np.ndarray]:
    """The arrays of the .npz at `file` if they fit (see npz_fits), else ValueError; nothing is decompressed
    before they are judged. OSError (a missing file) passes through."""
    if not npz_fits(file, expected, limit, exact):
        raise ValueError(f"{Path(file).name} holds other arrays than those asked for")
    with np.load(file, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays.files}
