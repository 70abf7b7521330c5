"""Identity of case sources (content hashes) and safe case ids.

Sources are only ever read here: files are opened ``rb``, folders are listed.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from livgui.core.atomicio import sha256_file

__all__ = ["sanitize_case_id", "source_sha256", "unique_case_id"]

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}
MAX_ID_LENGTH = 64


def source_sha256(path: str | Path) -> str:
    """SHA-256 identifying a case source (hex).

    A file: the SHA-256 of its bytes.  A folder (DICOM series, case folder): the SHA-256 of
    the sorted list of ``relative/posix/path``, size and content SHA-256 of every regular
    file below it (hidden files and symbolic links skipped), so the hash does not depend on
    listing order or timestamps, and any renamed, added, removed or changed file changes
    it.  Reading every byte costs about as much as loading the series once, which the
    library does anyway to validate a case.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    outer = hashlib.sha256(b"livgui-folder-v1\n")
    entries = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            full = Path(folder, name)
            if name.startswith(".") or full.is_symlink() or not full.is_file():
                continue
            entries.append(full)
    for full in sorted(entries, key=lambda p: p.relative_to(path).as_posix()):
        rel = full.relative_to(path).as_posix()
        line = f"{rel}\t{full.stat().st_size}\t{sha256_file(full)}\n"
        outer.update(line.encode("utf-8", "surrogateescape"))
    return outer.hexdigest()


def sanitize_case_id(raw: str) -> str:
    """A case id that is safe as a folder name on every platform.

    Ids that are already plain (``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 64 characters, not
    a reserved Windows device name) are kept as they are.  Anything else (``/``, ``..``,
    ``:``, spaces, non-ASCII, over-long text from headers: RELIABILITY row 21) becomes the
    cleaned text (its end kept when too long, since ``dataset/sub/case`` ids name the case
    last) plus the first 8 hex digits of its SHA-256, so distinct raw ids stay distinct.
    """
    stem = raw.split(".", 1)[0].upper()
    if (
        _SAFE_ID.fullmatch(raw)
        and len(raw) <= MAX_ID_LENGTH
        and ".." not in raw
        and stem not in _WINDOWS_RESERVED
    ):
        return raw
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = _UNSAFE_CHARS.sub("_", raw).replace("..", "_").strip("._-")
    cleaned = cleaned[-(MAX_ID_LENGTH - 9) :].strip("._-")  # the tail names the case
    return f"{cleaned}_{digest}" if cleaned else f"case_{digest}"


def unique_case_id(wanted: str, taken: set[str]) -> str:
    """``wanted`` or, when already taken (case-insensitively), ``wanted-2``, ``wanted-3`` ..."""
    lowered = {t.lower() for t in taken}
    if wanted.lower() not in lowered:
        return wanted
    n = 2
    while f"{wanted}-{n}".lower() in lowered:
        n += 1
    return f"{wanted}-{n}"
