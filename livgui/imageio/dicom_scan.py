"""Scan DICOM headers and group them into series a user can pick from.

Headers only are read (``stop_before_pixels`` and ``specific_tags``); the byte offset of
each Pixel Data element is remembered so :mod:`livgui.imageio.dicom` can read pixels with a
single ``read`` per file.  Files are grouped by SeriesInstanceUID, then by
ImageOrientationPatient (within 1e-3); localizers are separated; non-images and junk are
skipped and counted.  The geometry of each group (order along the slice normal, gaps,
duplicates, spacing, tilt) is analysed by :func:`livgui.imageio.dicom_stack.analyse_stack`,
shared with the reader so both report the same problems.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from livgui.core.progress import ProgressFn, check_cancel
from livgui.imageio import dicom_decode
from livgui.imageio.dicom_decode import DicomStore, PixelLayout, syntax_label
from livgui.imageio.dicom_stack import analyse_stack
from livgui.imageio.safepaths import list_sources

__all__ = ["ScanResult", "SeriesInfo", "SliceHeader", "scan_dicom"]

log = logging.getLogger(__name__)

_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "SeriesDescription", "Modality", "ImageType", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns", "BitsAllocated",
    "BitsStored", "PixelRepresentation", "SamplesPerPixel", "RescaleSlope",
    "RescaleIntercept", "NumberOfFrames", "InstanceNumber",
]  # fmt: skip
_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_NON_IMAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation (DICOM SEG)",
    "1.2.840.10008.5.1.4.1.1.66.5": "surface segmentation",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
}
_BATCH = 64
SKIP_NOT_DICOM = "not a DICOM file"
SKIP_DICOMDIR = "DICOMDIR index"
SKIP_NON_IMAGE = "not an image"
SKIP_NO_POSITION = "no ImagePositionPatient/ImageOrientationPatient"
SKIP_MULTIFRAME = "multi-frame image (not supported)"


@dataclass(frozen=True)
class SliceHeader:
    """The header facts of one image file (positions in LPS mm, cosines unitless)."""

    name: str
    sop_instance_uid: str
    group_uid: str
    description: str
    modality: str
    image_type: tuple[str, ...]
    orientation: tuple[float, float, float, float, float, float]
    position: tuple[float, float, float]
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) as in the standard
    slope: float | None
    intercept: float | None
    instance_number: int
    layout: PixelLayout


@dataclass(frozen=True)
class SeriesInfo:
    """One pickable image series (a sub-group of a SeriesInstanceUID).

    ``files`` and ``slices`` are sorted along the slice normal (ascending).  ``shape`` is
    ``(files, rows, columns)`` of the first file; ``slice_spacing`` the median step in mm.
    ``problems`` lists missing slices (with their position), duplicates, non-uniform
    spacing, tilt, size/spacing outliers and a missing decoder.  ``archive`` is the zip
    file the ``files`` are members of, ``None`` for files on disk.
    """

    series_uid: str
    key: str
    label: str
    description: str
    modality: str
    n_files: int
    files: tuple[str, ...]
    shape: tuple[int, int, int]
    orientation: tuple[float, float, float, float, float, float]
    is_localizer: bool
    transfer_syntax: str
    slice_spacing: float
    problems: tuple[str, ...] = ()
    decodable: bool = True
    archive: str | None = None
    slices: tuple[SliceHeader, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_dicom` found.

    ``series``: non-localizers first, largest first.  ``skipped``: junk as ``(file,
    reason)`` (non-DICOM, DICOMDIR, non-image SOP classes).  ``unreadable``: files that look
    like DICOM but are truncated or malformed.  ``refused``: paths from archives/DICOMDIR
    that would leave the chosen root (never opened).
    """

    series: tuple[SeriesInfo, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def undecodable(self) -> tuple[SeriesInfo, ...]:
        """Series whose transfer syntax has no installed decoder."""
        return tuple(s for s in self.series if not s.decodable)

    def skip_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            counts[reason] = counts.get(reason, 0) + 1
        return counts


class _Skip(Exception):
    def __init__(self, reason: str, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable


# ---------------------------------------------------------------- header parsing


def _floats(ds: Any, keyword: str, n: int) -> tuple[float, ...]:
    value = ds.get(keyword)
    if value is None:
        raise _Skip(SKIP_NO_POSITION)
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise _Skip(f"malformed {keyword}", unreadable=True) from None
    if len(out) != n or not np.all(np.isfinite(out)):
        raise _Skip(f"malformed {keyword}", unreadable=True)
    return out


def _opt_float(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Skip(f"malformed {keyword}", unreadable=True) from None


def _read_dataset(store: DicomStore, name: str) -> tuple[Any, int, int]:
    """Header dataset, the offset where parsing stopped, and the file size."""
    with store.open(name) as fp:
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=_TAGS)
        except InvalidDicomError:
            fp.seek(0)
            if fp.read(2) not in (b"\x08\x00", b"\x02\x00"):
                raise _Skip(SKIP_NOT_DICOM) from None
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=_TAGS, force=True)
        offset = fp.tell()
        fp.seek(0, os.SEEK_END)
        size = fp.tell()
    return ds, offset, size


def _layout(ds: Any, offset: int, size: int) -> PixelLayout:
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    syntax = syntax or pydicom.uid.ImplicitVRLittleEndian
    bits = int(ds.get("BitsAllocated") or 16)
    layout = PixelLayout(
        transfer_syntax=syntax,
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        bits_allocated=bits,
        bits_stored=int(ds.get("BitsStored") or bits),
        signed=int(ds.get("PixelRepresentation") or 0) == 1,
        samples_per_pixel=int(ds.get("SamplesPerPixel") or 1),
        pixel_offset=offset if offset < size else None,
    )
    if offset >= size:
        raise _Skip("no pixel data", unreadable=True)
    if syntax in (pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian):
        needed = offset + 8 + layout.raw_nbytes
        if size < needed:
            raise _Skip(f"file is truncated: {size} bytes, pixel data needs {needed}", True)
    return layout


def _group_uid(ds: Any, name: str) -> str:
    uid = str(ds.get("SeriesInstanceUID") or "")
    if uid:
        return uid
    # No SeriesInstanceUID (seen in anonymised exports): fall back to study, number, folder.
    return f"no-uid:{ds.get('StudyInstanceUID', '')}:{ds.get('SeriesNumber', '')}:{os.path.dirname(name)}"


def parse_header(store: DicomStore, name: str) -> SliceHeader:
    """Read one file's header; raises ``_Skip`` for junk and unreadable files."""
    try:
        ds, offset, size = _read_dataset(store, name)
    except _Skip:
        raise
    except Exception as err:  # pydicom raises many types on truncated/garbled headers
        raise _Skip(f"header unreadable: {err}", unreadable=True) from None
    meta = getattr(ds, "file_meta", None)
    sop_class = str(
        ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID", "") if meta else "")
    )
    if sop_class == _DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise _Skip(SKIP_DICOMDIR)
    if sop_class in _NON_IMAGE_CLASSES:
        raise _Skip(SKIP_NON_IMAGE)
    if "Rows" not in ds or "Columns" not in ds:
        if not sop_class or "Image Storage" in str(pydicom.uid.UID(sop_class).name):
            raise _Skip(f"header incomplete (file truncated?) after {offset} bytes", True)
        raise _Skip(SKIP_NON_IMAGE)
    if int(ds.get("NumberOfFrames") or 1) > 1:
        raise _Skip(SKIP_MULTIFRAME)
    o = _floats(ds, "ImageOrientationPatient", 6)
    position = _floats(ds, "ImagePositionPatient", 3)
    spacing = _floats(ds, "PixelSpacing", 2) if "PixelSpacing" in ds else (1.0, 1.0)
    return SliceHeader(
        name=name,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        group_uid=_group_uid(ds, name),
        description=str(ds.get("SeriesDescription", "")),
        modality=str(ds.get("Modality", "")),
        image_type=tuple(str(v).upper() for v in (ds.get("ImageType") or ())),
        orientation=(o[0], o[1], o[2], o[3], o[4], o[5]),
        position=(position[0], position[1], position[2]),
        pixel_spacing=(spacing[0], spacing[1]),
        slope=_opt_float(ds, "RescaleSlope"),
        intercept=_opt_float(ds, "RescaleIntercept"),
        instance_number=int(ds.get("InstanceNumber") or 0),
        layout=_layout(ds, offset, size),
    )


# ---------------------------------------------------------------- sources


# ---------------------------------------------------------------- grouping


def _same_orientation(a: Sequence[float], b: Sequence[float]) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3


def _split_by_orientation(headers: list[SliceHeader]) -> list[list[SliceHeader]]:
    groups: list[list[SliceHeader]] = []
    for h in headers:
        for g in groups:
            if _same_orientation(g[0].orientation, h.orientation):
                g.append(h)
                break
        else:
            groups.append([h])
    return sorted(groups, key=len, reverse=True)


def _outlier_problems(slices: Sequence[SliceHeader]) -> list[str]:
    """Rows/Columns or PixelSpacing that differ from the series' majority (row 18)."""
    out = []
    sizes: list[tuple[float, float]] = [(h.layout.rows, h.layout.columns) for h in slices]
    spacings = [h.pixel_spacing for h in slices]
    for label, values in (("size", sizes), ("pixel spacing", spacings)):
        common = max(set(values), key=values.count)
        close = np.isclose(np.asarray(values, dtype=np.float64), common, rtol=1e-4, atol=1e-6)
        for i in np.flatnonzero(~close.all(axis=1)).tolist():
            name = slices[i].name
            out.append(
                f"{label} differs inside the series: {name} has {values[i]}, others {common}"
            )
    return out


def _label(info: dict[str, Any]) -> str:
    desc = info["description"] or "no description"
    text = f"{info['modality'] or '?'} {desc}: {info['n']} image(s) {info['rows']}x{info['cols']}"
    if info["localizer"]:
        text += " (localizer)"
    if info["syntax"] != "uncompressed":
        text += f", {info['syntax']}"
    if info.get("folder"):
        text += f" in {info['folder']}"
    return text


def _folder_hint(names: Sequence[str]) -> str:
    """The last two components of the folder the files share (tells apart series whose
    headers alike, e.g. 3D-IRCADb's CT and its mask series)."""
    try:
        common = os.path.commonpath([os.path.dirname(n) for n in names])
    except ValueError:
        return ""
    parts = [p for p in common.replace("\\", "/").split("/") if p]
    return "/".join(parts[-2:])


def _make_series(
    uid: str, key: str, slices: list[SliceHeader], majority: Sequence[float], archive: str | None
) -> SeriesInfo:
    first = slices[0]
    stack = analyse_stack([h.position for h in slices], first.orientation)
    ordered = [slices[i] for i in stack.order] + [slices[j] for _, j in stack.duplicates]
    problems = list(stack.problems) + _outlier_problems(slices)
    problems += [
        f"{slices[j].name} duplicates the position of {slices[i].name}" for i, j in stack.duplicates
    ]
    syntax_uid = first.layout.transfer_syntax
    syntaxes = {h.layout.transfer_syntax for h in slices}
    missing = [e for e in (dicom_decode.missing_decoder("", u) for u in syntaxes) if e]
    problems += [err.problem for err in missing]
    decodable = not missing
    localizer = any("LOCALIZER" in h.image_type for h in slices) or (
        len(slices) <= 3 and not _same_orientation(first.orientation, majority)
    )
    info = {
        "description": first.description, "modality": first.modality, "n": len(slices),
        "rows": first.layout.rows, "cols": first.layout.columns, "localizer": localizer,
        "syntax": syntax_label(syntax_uid), "folder": _folder_hint([h.name for h in slices]),
    }  # fmt: skip
    return SeriesInfo(
        series_uid=uid,
        key=key,
        label=_label(info),
        description=first.description,
        modality=first.modality,
        n_files=len(slices),
        files=tuple(h.name for h in ordered),
        shape=(len(stack.order), first.layout.rows, first.layout.columns),
        orientation=first.orientation,
        is_localizer=localizer,
        transfer_syntax=syntax_label(syntax_uid),
        slice_spacing=stack.step,
        problems=tuple(problems),
        decodable=decodable,
        archive=archive,
        slices=tuple(ordered),
    )


def group_series(headers: Sequence[SliceHeader], archive: str | None = None) -> list[SeriesInfo]:
    """Group headers by series UID then orientation; localizers last."""
    by_uid: dict[str, list[SliceHeader]] = {}
    for h in headers:
        by_uid.setdefault(h.group_uid, []).append(h)
    all_groups = _split_by_orientation(list(headers)) if headers else []
    majority = all_groups[0][0].orientation if all_groups else (1, 0, 0, 0, 1, 0)
    out = []
    for uid, members in by_uid.items():
        for k, group in enumerate(_split_by_orientation(members)):
            key = uid if k == 0 else f"{uid}#{k}"
            out.append(_make_series(uid, key, group, majority, archive))
    out.sort(key=lambda s: (s.is_localizer, -s.n_files, s.key))
    return out


# ---------------------------------------------------------------- the scan


def _parse_batch(store: DicomStore, names: Sequence[str]) -> list[SliceHeader | _Skip]:
    out: list[SliceHeader | _Skip] = []
    for name in names:
        try:
            out.append(parse_header(store, name))
        except _Skip as skip:
            out.append(skip)
    return out


def _auto_workers(n_files: int) -> int:
    # Header parsing is Python-bound (GIL): threads pay only for I/O (cold cache, network
    # shares).  Measured in benchmarks/bench_dicom_load.py.
    return 1 if n_files < 256 else min(4, os.cpu_count() or 1)


def scan_dicom(
    path: str | Path | Sequence[str | Path],
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Scan a folder (recursive), a zip of one, a DICOMDIR or a list of files.

    Only headers are read.  Progress is reported after every batch of 64 files and
    ``cancel`` checked between batches (raising :class:`~livgui.core.progress.Cancelled`).

    Returns
    -------
    ScanResult
        The series found (pick one and pass it to
        :func:`livgui.imageio.dicom.read_dicom_series`) and the files skipped, unreadable
        or refused, each with its reason.
    """
    refused: list[tuple[str, str]] = []
    archive, names = list_sources(path, refused)
    batches = [names[i : i + _BATCH] for i in range(0, len(names), _BATCH)]
    n_workers = workers if workers is not None else _auto_workers(len(names))
    found = _Found()
    pool = ThreadPoolExecutor(max(1, n_workers))
    try:
        with DicomStore(archive) as store:
            results = pool.map(lambda b: _parse_batch(store, b), batches)
            for done, batch in enumerate(results, start=1):
                check_cancel(cancel)
                found.add(store, batches[done - 1], batch)
                if progress is not None:
                    n = min(done * _BATCH, len(names))
                    progress(done / len(batches), f"read {n} of {len(names)} headers")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a cancel stops queued batches
    log.info("scanned %d files: %d images, %d skipped, %d unreadable",
             len(names), len(found.headers), len(found.skipped), len(found.unreadable))  # fmt: skip
    series = tuple(group_series(found.headers, archive))
    return ScanResult(series, tuple(found.skipped), tuple(found.unreadable), tuple(refused))


class _Found:
    """Headers, skipped and unreadable files collected during a scan."""

    def __init__(self) -> None:
        self.headers: list[SliceHeader] = []
        self.skipped: list[tuple[str, str]] = []
        self.unreadable: list[tuple[str, str]] = []

    def add(
        self, store: DicomStore, names: Sequence[str], items: list[SliceHeader | _Skip]
    ) -> None:
        for name, item in zip(names, items, strict=True):
            if isinstance(item, SliceHeader):
                self.headers.append(item)
            elif item.unreadable:
                self.unreadable.append((store.display(name), item.reason))
            else:
                self.skipped.append((store.display(name), item.reason))
