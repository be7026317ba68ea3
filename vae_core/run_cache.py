"""Arrays derived from one checkpoint version, kept in its run's cache/ folder under its SHA-256. No torch.

    from vae_core import run_cache
    means, error = run_cache.cached(path, "test-means", digest, lambda: latent.encode(vae, images).loc,
                                    expected=((10_000, None), np.floating))
    run_cache.unkept_reason(error)      # None once kept, else why not in the user's words

`cached` is the one "read the cache, else compute and store": a file that is
damaged, or not the array (or set of arrays) asked for, is deleted unread
beyond its headers and computed again; a value that could not be kept (a full
disk, a read-only folder) is still returned, with the error that kept it off
the disk. `digest` is the checkpoint's vae_core.runs.digest: a training run
that replaces the file never pairs one version with another's arrays.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vae_core import npz
from vae_core.files import SaveError, atomic_write
from vae_core.runs import CACHE_FOLDER, first_line

LOG = logging.getLogger(__name__)
FLOATS: npz.Expected = (None, np.floating)  # any shape of floats: what most caches hold


def cache_file(path: str | Path, name: str, digest: str, suffix: str = ".npy") -> Path:
    """Where an array derived from the checkpoint at `path` (with content `digest`) is kept."""
    return Path(path).parent / CACHE_FOLDER / f"{name}-{digest[:16]}{suffix}"


def cached_names(path: str | Path, digest: str) -> list[str]:
    """Names of the arrays cached for this checkpoint content, sorted."""
    suffix = f"-{digest[:16]}.npy"
    folder = Path(path).parent / CACHE_FOLDER
    return sorted(f.name[:-len(suffix)] for f in folder.glob(f"*{suffix}")) if folder.is_dir() else []


def cached(path: str | Path, name: str, digest: str, compute: Callable[[], Any],
           expected: npz.Expected | dict[str, npz.Expected] = FLOATS, limit: int = npz.MAX_ARRAY_BYTES,
           fits: Callable[[Any], bool] = lambda value: True) -> tuple[Any, OSError | None]:
    """The array `name` of this checkpoint version (a dict of arrays kept together when `expected` is a
    dict of them) and None: read from cache/ when it is there, `expected` and `fits`, else `compute()`d now
    and stored. When it cannot be stored, the value computed and the error that kept it off the disk;
    `compute` returning None (nothing to show) stores nothing."""
    value = (load_cached_set(path, name, digest, expected, limit) if isinstance(expected, dict)
             else load_cached(path, name, digest, *expected, limit=limit))
    if value is not None and fits(value):
        return value, None
    value = compute()
    return value, None if value is None else keep(path, name, digest, value)


def keep(path: str | Path, name: str, digest: str, value: np.ndarray | dict[str, Any]) -> OSError | None:
    """Store `value` (an array, or a dict of arrays kept together) as `name` of this checkpoint version:
    None once kept, else the error that kept it off the disk (logged; the caller still has `value`)."""
    try:
        (store_cached_set if isinstance(value, dict) else store_cached)(path, name, digest, value)
    except OSError as exc:  # SaveError (a full disk, a read-only folder), or cache/ taken by a file
        LOG.warning("A cache was not kept: %s", exc)
        return exc
    return None


def unkept_reason(error: OSError | None) -> str | None:
    """Why a cache file could not be written, in the user's words; None when it was."""
    if error is None:
        return None
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the run's folder is read-only"
    if error.errno in (errno.EEXIST, errno.ENOTDIR):  # mkdir of cache/ where a file by that name stands
        return f"the run's {CACHE_FOLDER!r} is a file, not a folder (move it away to keep results)"
    return first_line(error)


def load_cached(path: str | Path, name: str, digest: str, shape: tuple[int | None, ...] | None = None,
                dtype: type = np.floating, limit: int = npz.MAX_ARRAY_BYTES) -> np.ndarray | None:
    """The cached array `name` of this checkpoint content if it has `shape` (None axes: any length) and
    `dtype`, else None. A file that is damaged or not that array is deleted, unread beyond its header."""
    file = cache_file(path, name, digest)
    try:
        return npz.load_array(file, (shape, dtype), limit)
    except (FileNotFoundError, NotADirectoryError):  # not computed yet, or cache/ is a file
        return None
    except Exception:  # whatever a damaged file raises (ValueError, OSError, EOFError...): recomputed
        _discard(file)
        return None


def load_cached_set(path: str | Path, name: str, digest: str, expected: dict[str, npz.Expected] | None = None,
                    limit: int = npz.MAX_ARRAY_BYTES) -> dict[str, np.ndarray] | None:
    """The arrays cached together under `name` for this checkpoint content if they are the `expected` ones
    (see npz.npz_fits), else None. A file that is damaged or holds other arrays is deleted, never decompressed."""
    file = cache_file(path, name, digest, ".npz")
    try:
        return npz.load_set(file, expected, limit)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Exception:  # whatever a damaged archive raises (BadZipFile, zlib.error, EOFError...): recomputed
        _discard(file)
        return None


def _discard(file: Path) -> None:
    """Delete a cached file that is not to be trusted; one that cannot be deleted is refused again next time."""
    try:
        file.unlink(missing_ok=True)
    except OSError:
        pass


def store_cached(path: str | Path, name: str, digest: str, value: np.ndarray) -> None:
    """Keep `value` as the cached array `name` of this checkpoint content, written atomically; SaveError
    says why it could not be."""
    _store(cache_file(path, name, digest), lambda f: np.save(f, np.asarray(value), allow_pickle=False))


def store_cached_set(path: str | Path, name: str, digest: str, arrays: dict[str, Any]) -> None:
    """Keep `arrays` together as `name` for this checkpoint content, written atomically; SaveError says why
    it could not be."""
    _store(cache_file(path, name, digest, ".npz"),
           lambda f: np.savez_compressed(f, **{key: np.asarray(value) for key, value in arrays.items()}))


def _store(file: Path, write) -> None:
    """atomic_write(file, write), where a file standing in for the cache folder is a SaveError too."""
    try:
        atomic_write(file, write)
    except (FileExistsError, NotADirectoryError) as exc:  # mkdir of cache/ where a file by that name stands
        raise SaveError(exc.errno, f"cannot write {file}: {file.parent} is a file, not a folder; "
                                   f"move it away") from exc
