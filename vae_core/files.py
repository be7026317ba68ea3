"""Files written so that a reader never sees half of one: atomic writes, and what a killed write leaves.

    from vae_core.files import atomic_write, SaveError, remove_temp_files
    atomic_write(path, lambda f: f.write(data))   # temp file + fsync + os.replace (+ fsync of the folder)
    remove_temp_files(folder)                     # at a run's start, under its lock

A full disk or a read-only folder raises SaveError, in words, and the old file
is left as it was.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path


class SaveError(OSError):
    """A file could not be written (no space left, a read-only folder); what was there is intact."""


# Free space under which a failed write is put down to a full disk: torch.save reports one
# as "RuntimeError: [enforce fail at inline_container.cc] . unexpected pos", not as ENOSPC.
_NEARLY_FULL = 1 << 20  # bytes
# numpy's tofile (under np.save) on a short write: counts of items, not bytes.
_SHORT_WRITE = re.compile(r"(?P<requested>\d+) requested and (?P<written>\d+) written")


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temp file beside `path`, fsync it, then rename it over `path`.

    A full disk or a read-only folder raises SaveError, saying so; the old file is untouched.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        error = save_error(path, exc)
        if error is exc:
            raise
        raise error from exc
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # Judged before the temp file goes: deleting it frees the space that ran out.
        error = save_error(path, exc) if isinstance(exc, (OSError, RuntimeError)) else exc
        Path(tmp).unlink(missing_ok=True)
        if error is exc:
            raise
        raise error from exc
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_error(path: Path, exc: BaseException) -> BaseException:
    """SaveError in words for a full disk or a read-only folder; any other failure as it was."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or _short_write(exc) or (
            isinstance(exc, (OSError, RuntimeError)) and code is None and _free_bytes(path) < _NEARLY_FULL):
        return SaveError(code or errno.ENOSPC, f"no space left on device while saving {path}")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return SaveError(code, f"cannot write {path}: the folder is read-only or not writable")
    return exc


def _short_write(exc: BaseException) -> bool:
    """True for numpy's words for a write the disk took only part of ("20000 requested and 19424 written"),
    which carry no errno: the write stopped short because the space ran out."""
    found = isinstance(exc, (OSError, RuntimeError)) and _SHORT_WRITE.search(str(exc))
    return bool(found) and int(found["written"]) < int(found["requested"])


def _free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path.parent).free
    except OSError:
        return 1 << 62


def remove_temp_files(folder: str | Path, shared: Iterable[str] = (), grace_s: float = 60.0) -> list[Path]:
    """Delete what saves killed midway left in `folder` (atomic_write's temp files); returns them.

    Call it only while holding the run's lock: a live writer's temp file looks the same. Files
    named in `shared` are also written by processes without the lock (the app's stop request),
    so their temp files count as left behind only once `grace_s` old; `shared` holding "*" says
    that of every file in `folder` (a cache the app's views write).
    """
    now = time.time()
    stale = []
    for file in sorted(Path(folder).glob(".*.tmp")):
        target = file.name[1:].rsplit(".", 2)[0]  # ".stop.json.k2j4.tmp" -> "stop.json"
        try:
            if (target in shared or "*" in shared) and now - file.stat().st_mtime < grace_s:
                continue
            file.unlink()
        except FileNotFoundError:  # its writer renamed it into place meanwhile
            continue
        stale.append(file)
    return stale
