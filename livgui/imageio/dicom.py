"""Read a DICOM series into a :class:`~livgui.core.Volume` (HU, LPS memory convention).

Slices are ordered by ImagePositionPatient projected on the slice normal (row cosine x
column cosine), never by file name.  HU = stored x RescaleSlope + RescaleIntercept, per
slice.  Missing slices, conflicting duplicates, size/spacing outliers and missing decoders
are errors naming the file or position; identical duplicates, non-uniform spacing and
gantry tilt are reported in ``SourceInfo.warnings`` and flagged in ``SourceInfo.header``.

LivGUI never writes DICOM files, hence never a DICOM preamble: a preamble holding an
executable header (RELIABILITY row 22) is ignored on reading, and any future DICOM export
must zero the 128-byte preamble.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry, Reorientation, reorientation_to_lps
from livgui.core.progress import ProgressFn, check_cancel
from livgui.core.volume import SourceInfo, Volume
from livgui.imageio.dicom_decode import DicomStore, check_decodable, read_stored_pixels
from livgui.imageio.dicom_scan import ScanResult, SeriesInfo, SliceHeader, scan_dicom
from livgui.imageio.dicom_stack import StackGeometry, analyse_stack
from livgui.imageio.errors import ImageReadError
from livgui.imageio.layouts_common import choose_series

__all__ = ["ScanResult", "SeriesInfo", "read_dicom_series", "scan_dicom", "series_path"]

log = logging.getLogger(__name__)

_BATCH = 32
_INT16 = (-32768, 32767)


def series_path(series: SeriesInfo) -> str:
    """The archive, or the folder holding the series' files (for messages and SourceInfo)."""
    if series.archive is not None:
        return series.archive
    if len(series.files) == 1:
        return os.path.dirname(series.files[0]) or "."
    return os.path.commonpath(series.files)


def _check_uniform(series: SeriesInfo) -> None:
    """Rows/Columns and PixelSpacing must agree inside a series (row 18)."""
    slices = series.slices
    sizes = [(h.layout.rows, h.layout.columns) for h in slices]
    spacings = [h.pixel_spacing for h in slices]
    size = max(set(sizes), key=sizes.count)
    spacing = max(set(spacings), key=spacings.count)
    for h, sz, sp in zip(slices, sizes, spacings, strict=True):
        if sz != size:
            raise ImageReadError(
                h.name,
                f"Rows x Columns {sz[0]}x{sz[1]} differ from the series' {size[0]}x{size[1]}",
            )
        if not np.allclose(sp, spacing, rtol=1e-4, atol=1e-6):
            raise ImageReadError(
                h.name, f"PixelSpacing {sp} differs from the series' {spacing} (mm)"
            )


def _rescale(h: SliceHeader) -> tuple[float, float]:
    slope = 1.0 if h.slope is None else h.slope
    return slope, 0.0 if h.intercept is None else h.intercept


def _file_affine(kept: Sequence[SliceHeader], stack: StackGeometry) -> NDArray[np.float64]:
    """Affine of the file-order array ``[slice, row, column]`` to world LPS mm.

    PixelSpacing is (row spacing, column spacing): moving one column goes along the row
    cosine by the column spacing.  The slice column joins first and last positions, so a
    tilted stack gets a sheared (exact) affine.
    """
    first = kept[0]
    row_cos = np.asarray(first.orientation[:3], dtype=np.float64)
    col_cos = np.asarray(first.orientation[3:], dtype=np.float64)
    p0 = np.asarray(first.position, dtype=np.float64)
    if len(kept) > 1:
        step = (np.asarray(kept[-1].position) - p0) / (len(kept) - 1)
    else:
        step = np.asarray(stack.normal, dtype=np.float64)  # single slice: 1 mm nominal
    affine = np.eye(4)
    affine[:3, 0] = step
    affine[:3, 1] = col_cos * first.pixel_spacing[0]
    affine[:3, 2] = row_cos * first.pixel_spacing[1]
    affine[:3, 3] = p0
    return affine


class _Filler:
    """Writes HU slices into the memory-ordered output, choosing int16 when exact."""

    def __init__(
        self, kept: Sequence[SliceHeader], reo: Reorientation, file_shape: tuple[int, int, int]
    ) -> None:
        self.reo = reo
        self.direct = reo.perm[0] == 0  # slice axis stays z: fill each slice in place
        integral = all(float(v).is_integer() for h in kept for v in _rescale(h))
        dtype = np.int16 if integral else np.float32
        shape = tuple(file_shape[p] for p in reo.perm) if self.direct else file_shape
        self.out: NDArray[Any] = np.empty(shape, dtype=dtype)
        self.n = file_shape[0]

    def put(self, k: int, stored: NDArray[Any], h: SliceHeader) -> None:
        slope, intercept = _rescale(h)
        if self.out.dtype == np.int16:
            if slope == 1 and intercept == 0 and stored.dtype in (np.int16, np.uint8, np.int8):
                hu: NDArray[Any] = stored
            else:
                hu = stored.astype(np.int32) * int(slope) + int(intercept)
                if hu.size and (hu.min() < _INT16[0] or hu.max() > _INT16[1]):
                    self.out = self.out.astype(np.float32)  # rare: leave int16 for float
        if self.out.dtype != np.int16:
            hu = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        if self.direct:
            if self.reo.perm[1] == 2:
                hu = hu.T
            hu = hu[:: -1 if self.reo.flip[1] else 1, :: -1 if self.reo.flip[2] else 1]
            k = self.n - 1 - k if self.reo.flip[0] else k
        self.out[k] = hu

    def result(self) -> NDArray[Any]:
        if self.direct:
            return self.out
        return np.ascontiguousarray(self.reo.to_memory(self.out))


def _check_duplicates(store: DicomStore, series: SeriesInfo, stack: StackGeometry) -> list[str]:
    notes = []
    for i, j in stack.duplicates:
        a, b = series.slices[i], series.slices[j]
        pa = read_stored_pixels(store, a.name, a.layout)
        pb = read_stored_pixels(store, b.name, b.layout)
        if pa.shape == pb.shape and np.array_equal(pa, pb) and _rescale(a) == _rescale(b):
            notes.append(
                f"dropped {store.display(b.name)}: identical duplicate of {store.display(a.name)}"
            )
            continue
        where = float(np.dot(a.position, stack.normal))
        raise ImageReadError(
            store.display(b.name),
            f"different pixels at the same position ({where:.2f} mm along the slice normal) "
            f"as {store.display(a.name)}: conflicting duplicate slices",
        )
    return notes


def _warnings(series: SeriesInfo, kept: Sequence[SliceHeader], stack: StackGeometry) -> list[str]:
    out = list(stack.gaps) + list(stack.spacing_notes)
    missing = sum(1 for h in kept if h.slope is None or h.intercept is None)
    if missing:
        out.append(
            f"RescaleSlope/RescaleIntercept missing in {missing} file(s): slope 1, intercept 0 assumed"
        )
    if len({_rescale(h) for h in kept}) > 1:
        out.append("rescale slope/intercept differ between slices (applied per slice)")
    if stack.tilt_deg:
        out.append(
            f"gantry tilt of {stack.tilt_deg:.2f} degrees detected from the slice positions: "
            "the volume is kept on the sheared grid; masks written back follow it"
        )
    return out


def _read_pixels(
    store: DicomStore, kept: Sequence[SliceHeader], filler: _Filler,
    progress: ProgressFn | None, cancel: Callable[[], bool] | None,
) -> None:  # fmt: skip
    """Read batches on worker threads (file I/O releases the GIL) and fill in order.

    At most ``workers + 1`` batches are in flight so the read-ahead stays a few slices,
    keeping peak memory near the output size.
    """
    batches = [list(range(i, min(i + _BATCH, len(kept)))) for i in range(0, len(kept), _BATCH)]

    def load(batch: list[int]) -> list[NDArray[Any]]:
        return [read_stored_pixels(store, kept[k].name, kept[k].layout) for k in batch]

    workers = 2 if len(kept) >= 64 else 1
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[list[NDArray[Any]]]] = deque()
        for done, batch in enumerate(batches, 1):
            while len(pending) <= workers and done - 1 + len(pending) < len(batches):
                pending.append(pool.submit(load, batches[done - 1 + len(pending)]))
            arrays = pending.popleft().result()
            check_cancel(cancel)
            for k, arr in zip(batch, arrays, strict=True):
                filler.put(k, arr, kept[k])
            if progress is not None:
                progress(done / len(batches), f"read {batch[-1] + 1} of {len(kept)} slices")
        for future in pending:
            future.cancel()


def read_dicom_series(
    series_or_path: SeriesInfo | str | Path | Sequence[str | Path],
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    allow_gaps: bool = False,
) -> Volume:
    """Read one DICOM series as a HU volume ``data[z, y, x]`` in the LPS memory convention.

    Parameters
    ----------
    series_or_path
        A :class:`SeriesInfo` from :func:`scan_dicom`, or a folder / zip / DICOMDIR / file
        list holding exactly one non-localizer series.
    allow_gaps
        Stack across missing slices (reported in warnings, flagged non-uniform) instead
        of refusing.

    Returns
    -------
    Volume
        int16 when every slice's slope and intercept are integral and the HU fit, else
        float32.  ``source.header`` holds ``series_uid``, ``files`` (in file-array order),
        ``positions`` (LPS mm), ``nonuniform``, ``tilt_deg`` and the file affine.

    Raises
    ------
    ImageReadError
        Missing slices (naming the position), conflicting duplicates (naming both files),
        size or pixel-spacing outliers (naming the file), truncated or corrupt files.
    MissingDecoderError
        No installed plugin decodes the series' transfer syntax (names what to install).
    """
    series = (  # the one chooser (layouts_common): localizers never by default
        series_or_path if isinstance(series_or_path, SeriesInfo) else choose_series(series_or_path)
    )
    where = series_path(series)
    if not series.slices:
        raise ImageReadError(where, "series has no image files")
    _check_uniform(series)
    for syntax in {h.layout.transfer_syntax for h in series.slices}:
        check_decodable(where, syntax)
    stack = analyse_stack([h.position for h in series.slices], series.slices[0].orientation)
    if stack.gaps and not allow_gaps:
        raise ImageReadError(where, "; ".join(stack.gaps))
    kept = [series.slices[i] for i in stack.order]
    file_shape = (len(kept), kept[0].layout.rows, kept[0].layout.columns)
    file_affine = _file_affine(kept, stack)
    reo, memory_affine = reorientation_to_lps(file_affine, file_shape)
    with DicomStore(series.archive) as store:
        notes = _check_duplicates(store, series, stack)
        filler = _Filler(kept, reo, file_shape)
        _read_pixels(store, kept, filler, progress, cancel)
    warnings = notes + _warnings(series, kept, stack)
    for w in warnings:
        log.warning("%s: %s", where, w)
    header: dict[str, Any] = {
        "series_uid": series.series_uid,
        "series_key": series.key,
        "files": [h.name for h in kept],
        "positions": [list(h.position) for h in kept],
        "orientation": list(kept[0].orientation),
        "pixel_spacing": list(kept[0].pixel_spacing),
        "transfer_syntax": series.transfer_syntax,
        "slice_spacing": stack.step,
        "nonuniform": bool(stack.nonuniform or stack.gaps),
        "tilt_deg": stack.tilt_deg,
        "file_affine": file_affine.tolist(),
        "archive": series.archive,
    }
    source = SourceInfo(where, "dicom", reo, file_shape, header, tuple(warnings))
    data = filler.result()
    return Volume(
        data, Geometry(data.shape, memory_affine), source, series.description or "DICOM series"
    )
