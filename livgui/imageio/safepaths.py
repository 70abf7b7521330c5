"""Root confinement for paths taken from file content (zip members, DICOMDIR records).

RELIABILITY rows 19-21: a path that comes from inside a file (an archive member name, a
DICOMDIR ``ReferencedFileID``) is resolved against the root the user chose and must stay
under it; ``..`` components, absolute paths, drive letters and symbolic links that leave
the root are refused and never opened.  Output names are never built from raw header
strings: :func:`safe_name` turns any text into a short, portable file-name component.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PureWindowsPath

from livgui.imageio.errors import ImageReadError

__all__ = [
    "MAX_MEMBER_BYTES",
    "UnsafePathError",
    "confined_path",
    "dicomdir_files",
    "is_within",
    "list_sources",
    "safe_name",
    "safe_zip_members",
    "walk_confined",
]

#: Archive members larger than this (declared uncompressed size) are refused (zip bombs).
MAX_MEMBER_BYTES = 2 << 30

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class UnsafePathError(ValueError):
    """A path from file content would leave the chosen root."""

    def __init__(self, root: str | Path, name: str, why: str) -> None:
        self.root = str(root)
        self.name = name
        self.why = why
        super().__init__(f"{root}: refused {name!r}: {why}")


def is_within(root: Path, candidate: Path) -> bool:
    """True when ``candidate`` (after resolving links) lies inside ``root`` (resolved)."""
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _relative_parts(name: str) -> list[str]:
    """Components of a relative path from file content; raises ValueError when unsafe."""
    if not name or "\x00" in name:
        raise ValueError("empty name or NUL character")
    win = PureWindowsPath(name)
    if win.drive or win.root or name.startswith(("/", "\\")):
        raise ValueError("absolute path")
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError("'..' component leaves the root")
    if not parts:
        raise ValueError("empty path")
    return parts


def confined_path(root: str | Path, name: str | Iterable[str]) -> Path:
    """Join a path taken from file content onto ``root``, refusing any escape.

    Parameters
    ----------
    root
        The folder the user chose.
    name
        A relative path (``/`` or ``\\`` separated) or its components (DICOMDIR
        ``ReferencedFileID`` values).

    Raises
    ------
    UnsafePathError
        For absolute paths, ``..`` components, or links resolving outside ``root``.
    """
    root_path = Path(root)
    text = name if isinstance(name, str) else "/".join(str(p) for p in name)
    try:
        parts = _relative_parts(text)
    except ValueError as err:
        raise UnsafePathError(root_path, text, str(err)) from None
    candidate = root_path.joinpath(*parts)
    if not is_within(root_path, candidate):
        raise UnsafePathError(root_path, text, "resolves outside the root (symbolic link)")
    return candidate


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def safe_zip_members(
    archive: zipfile.ZipFile,
) -> tuple[list[zipfile.ZipInfo], list[tuple[str, str]]]:
    """Split an archive's file members into safe ones and refused ones.

    Refused: absolute names, ``..`` components, symbolic-link entries (their target could
    point anywhere) and members declaring more than :data:`MAX_MEMBER_BYTES`.  Members are
    only ever read in memory, never extracted.

    Returns
    -------
    safe, refused
        ``safe`` in archive order; ``refused`` as ``(member name, reason)`` pairs.
    """
    safe: list[zipfile.ZipInfo] = []
    refused: list[tuple[str, str]] = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        try:
            _relative_parts(info.filename)
        except ValueError as err:
            refused.append((info.filename, str(err)))
            continue
        if _is_zip_symlink(info):
            refused.append((info.filename, "symbolic link inside the archive"))
        elif info.file_size > MAX_MEMBER_BYTES:
            refused.append((info.filename, f"declares {info.file_size} bytes"))
        else:
            safe.append(info)
    return safe, refused


def walk_confined(root: str | Path, refused: list[tuple[str, str]]) -> Iterator[Path]:
    """Regular files under ``root`` (recursive, sorted), never following links out of it.

    Symbolic links (files or folders) whose target lies outside ``root`` are appended to
    ``refused`` as ``(path, reason)`` and skipped; folder links are never descended into.
    """
    root_path = Path(root)
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                if not is_within(root_path, path):
                    refused.append((str(path), "symbolic link points outside the root"))
                    continue
                if not path.is_file():
                    continue
            elif not path.is_file():
                continue
            yield path


def safe_name(text: str, max_len: int = 48) -> str:
    """A portable file-name component derived from untrusted text (UIDs, PatientID ...).

    Only ``[A-Za-z0-9._-]`` survive; leading dots are removed (no ``..`` or hidden
    names); a short hash of the original keeps distinct inputs distinct.  Never empty.
    """
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    cleaned = re.sub(r"\.{2,}", ".", _UNSAFE_CHARS.sub("_", text)).lstrip("._").rstrip("_")
    cleaned = cleaned[: max(0, max_len - 9)]
    return f"{cleaned}_{digest}" if cleaned else digest


def dicomdir_files(path: Path, refused: list[tuple[str, str]]) -> list[str]:
    """Files a DICOMDIR references, each confined to the DICOMDIR's folder (row 19).

    Records whose ``ReferencedFileID`` is absolute, has ``..`` components or resolves
    through a link outside the folder are appended to ``refused`` and never opened.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as err:
        raise ImageReadError(path, f"not a readable DICOMDIR ({err})") from err
    out: dict[str, None] = {}
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(ref)] if isinstance(ref, str) else [str(v) for v in ref]
        try:
            target = confined_path(path.parent, parts)
        except UnsafePathError as err:
            refused.append(("/".join(parts), err.why))
            continue
        if target.is_file():
            out[str(target)] = None
    return list(out)


def list_sources(
    path: str | Path | Sequence[str | Path], refused: list[tuple[str, str]]
) -> tuple[str | None, list[str]]:
    """``(archive or None, file names)`` for a folder, zip, DICOMDIR or list of files.

    Folders are walked recursively without following links out of them; zip members are
    filtered by :func:`safe_zip_members` (names returned are member names of the
    archive); DICOMDIR records are confined by :func:`dicomdir_files`.  Everything refused
    is appended to ``refused`` as ``(path, reason)``.
    """
    if not isinstance(path, str | Path):
        return None, [str(p) for p in path]
    p = Path(path)
    if p.is_dir():
        return None, [str(f) for f in walk_confined(p, refused)]
    if not p.exists():
        raise ImageReadError(p, "no such file or folder")
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            safe, bad = safe_zip_members(zf)
        refused.extend((f"{p}:{n}", why) for n, why in bad)
        return str(p), [i.filename for i in safe]
    if p.name.upper() == "DICOMDIR":
        return None, dicomdir_files(p, refused)
    return None, [str(p)]
