"""Atomic file writes: temp file in the target folder, fsync, ``os.replace``.

The target is therefore always either the complete old file or the complete new one, even
when the process is killed or the disk fills up mid-write (RELIABILITY rows 25-26).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["DiskFullError", "atomic_write", "atomic_write_bytes", "sha256_file"]


class DiskFullError(OSError):
    """Raised instead of ENOSPC/EDQUOT so callers can say "disk full" plainly."""


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(
    path: str | Path,
    write: Callable[[Path], None],
    verify: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``path`` atomically.

    ``write(tmp_path)`` produces the complete file at a temporary path in the same folder;
    ``verify(tmp_path)`` (optional) re-reads it and raises if it is wrong.  Only then is the
    temp file fsynced and renamed over the target.  On any failure the temp file is removed
    and the old target is untouched.
    """
    target = Path(path)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    # Keep the temp name short: a long target name plus a suffix can exceed NAME_MAX (255).
    stem = target.name.encode("utf-8")[:80].decode("utf-8", "ignore")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
        _fsync_dir(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(exc.errno, f"could not save {target}: disk full") from exc
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)
