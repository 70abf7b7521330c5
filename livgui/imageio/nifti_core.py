"""NIfTI-1/2 internals: header checks and streaming voxel reads (public API in ``nifti``).

Reading parses the header with nibabel, then inflates the voxel bytes with ISA-L
(:mod:`livgui.imageio.gz`) slab by slab straight into the final array: for the usual axial
files (the file's slowest axis is superior-inferior) each slab is flipped/transposed into
its place, so the peak memory is about one volume; other axis orders read into one raw
buffer first (about two volumes).  No voxel is ever resampled: the file is brought to the
in-memory ``a[z, y, x]`` LPS convention (:mod:`livgui.core.geometry`) by permutations and
flips only, and :class:`~livgui.core.volume.SourceInfo` keeps what is needed to write a mask
back in the file's own axis order with the image's own qform and sform.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import nibabel as nib
import numpy as np
import psutil
from numpy.typing import NDArray

from livgui.core.geometry import Reorientation, ras_to_lps, reorientation_to_lps
from livgui.core.progress import ProgressFn, check_cancel
from livgui.imageio import gz
from livgui.imageio.errors import ImageReadError

__all__ = ["ImageSink", "NiftiHeaderInfo", "RawSink", "read_nifti_header", "read_voxels", "slabs"]

log = logging.getLogger(__name__)

_SLAB_BYTES = 4 << 20  # inflate about 4 MiB of voxels per step (progress/cancel granularity)
_QS_TOLERANCE_MM = 1e-3
_INT16 = np.iinfo(np.int16)
_SMALL_INTS = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_CORRUPT = "file is incomplete or corrupt"

CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class NiftiHeaderInfo:
    """What the header says, checked, before any voxel is read.

    Attributes
    ----------
    path, compressed
        The file and whether its content (not its name) is gzip.
    header
        The nibabel header (``Nifti1Header`` or ``Nifti2Header``).
    file_shape
        Spatial shape in the file's own axis order ``(i, j, k)``.
    disk_dtype
        Voxel dtype as stored (byte order included).
    offset
        Byte offset of the voxels in the (decompressed) stream.
    scaling
        ``(slope, intercept)`` when the header asks for intensity scaling, else None.
    affine_ras
        The affine nibabel would use (sform when its code > 0, else qform, else pixdim).
    warnings
        Notes for the user (e.g. qform/sform disagreement).
    """

    path: str
    compressed: bool
    header: Any
    file_shape: tuple[int, int, int]
    disk_dtype: np.dtype[Any]
    offset: int
    scaling: tuple[float, float] | None
    affine_ras: NDArray[np.float64]
    warnings: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of voxel data the header declares."""
        return int(np.prod(self.file_shape, dtype=np.int64)) * self.disk_dtype.itemsize

    def orientation(self) -> tuple[Reorientation, NDArray[np.float64], tuple[int, int, int]]:
        """Reorientation to memory order, the memory affine (LPS) and the memory shape."""
        reo, affine = reorientation_to_lps(ras_to_lps(self.affine_ras), self.file_shape)
        shape = tuple(self.file_shape[p] for p in reo.perm)
        return reo, affine, (shape[0], shape[1], shape[2])

    def source_header(self) -> dict[str, Any]:
        """Plain values a mask writer needs to reproduce the image's header geometry."""
        hdr = self.header
        return {
            "nifti_version": 2 if isinstance(hdr, nib.Nifti2Header) else 1,
            "binary_header": bytes(hdr.binaryblock),
            "qform": np.array(hdr.get_qform(), dtype=np.float64),
            "sform": np.array(hdr.get_sform(), dtype=np.float64),
            "qform_code": int(hdr["qform_code"]),
            "sform_code": int(hdr["sform_code"]),
            "pixdim": tuple(float(v) for v in hdr["pixdim"]),
            "affine_ras": np.array(self.affine_ras),
            "disk_dtype": str(self.disk_dtype),
            "scaling": self.scaling,
        }


def read_nifti_header(path: str | Path) -> NiftiHeaderInfo:
    """Parse and check a NIfTI header (content sniffed: a ``.nii`` named ``.nii.gz`` works).

    Raises
    ------
    ImageReadError
        "not a NIfTI file", "file is incomplete or corrupt", unsupported data (real 4-D,
        complex/RGB voxels) or an invalid header.
    """
    p = str(path)
    try:
        block, compressed = gz.read_head(p, 540)
    except gz.DECOMPRESSION_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise ImageReadError(p, f"cannot open: {exc.strerror or exc}") from exc
        raise ImageReadError(p, f"{_CORRUPT} ({exc})") from exc
    size = _sizeof_hdr(block)
    header = _parse_header(p, block, size)
    return _header_info(p, compressed, header)


def _sizeof_hdr(block: bytes) -> int:
    if len(block) < 348:
        return 0
    for size in (int.from_bytes(block[:4], "little"), int.from_bytes(block[:4], "big")):
        if size in (348, 540):
            return size
    return 0


def _parse_header(path: str, block: bytes, size: int) -> Any:
    if size == 348 and block[344:348] in (b"n+1\0", b"ni1\0"):
        if block[344:348] == b"ni1\0":
            raise ImageReadError(path, "this is a NIfTI pair header (.hdr/.img): not supported")
        klass: Any = nib.Nifti1Header
    elif size == 540 and len(block) >= 540 and block[4:8] == b"n+2\0":
        klass = nib.Nifti2Header
    else:
        raise ImageReadError(path, "not a NIfTI file (no NIfTI header found)")
    try:
        return klass(binaryblock=block[:size], check=True)
    except Exception as exc:  # nibabel raises several types for bad headers
        raise ImageReadError(path, f"invalid NIfTI header: {exc}") from exc


def _header_info(path: str, compressed: bool, header: Any) -> NiftiHeaderInfo:
    shape = tuple(int(s) for s in header.get_data_shape())
    if not shape or min(shape) <= 0:
        raise ImageReadError(path, f"header declares an empty image of shape {shape}")
    extra = shape[3:]
    if any(s != 1 for s in extra):
        raise ImageReadError(
            path,
            f"this is {len(shape)}-D data of shape {shape} ({int(np.prod(extra))} volumes): "
            "LivGUI reads one 3-D CT volume; extract the one you need first",
        )
    file_shape = (*shape, 1, 1)[:3]
    dtype = header.get_data_dtype()
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ImageReadError(path, f"voxel type {dtype} (complex or RGB) is not a CT volume")
    try:
        slope, inter = header.get_slope_inter()
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception as exc:
        raise ImageReadError(path, f"invalid NIfTI header: {exc}") from exc
    if not np.all(np.isfinite(affine)):
        raise ImageReadError(path, "invalid NIfTI header: the affine is not finite")
    scaling = None if slope is None or (slope == 1.0 and inter == 0.0) else (slope, inter)
    minimum = 544 if isinstance(header, nib.Nifti2Header) else 352
    offset = max(int(header["vox_offset"]), minimum)
    fs = (file_shape[0], file_shape[1], file_shape[2])
    return NiftiHeaderInfo(
        path, compressed, header, fs, dtype, offset, scaling, affine, _qs_warnings(header)
    )


def _qs_warnings(header: Any) -> tuple[str, ...]:
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    if qcode > 0 and scode > 0:
        diff = float(np.max(np.abs(header.get_qform() - header.get_sform())))
        if diff > _QS_TOLERANCE_MM:
            return (
                f"qform and sform disagree (by up to {diff:.3g} mm); using the sform "
                f"(code {scode}) as nibabel does; masks are saved with both unchanged",
            )
    if qcode == 0 and scode == 0:
        return ("header has neither qform nor sform: orientation assumed from voxel sizes",)
    return ()


def _check_memory(info: NiftiHeaderInfo, needed: int, max_bytes: int | None) -> None:
    available = int(psutil.virtual_memory().available)
    if max_bytes is not None:
        available = min(available, int(max_bytes))
    if needed > available:
        raise ImageReadError(
            info.path,
            f"image of shape {info.file_shape} ({info.disk_dtype}) needs {_gib(needed)} of "
            f"memory to load but only {_gib(available)} is available",
        )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def _check_plain_size(info: NiftiHeaderInfo) -> None:
    if info.compressed:
        return
    size = Path(info.path).stat().st_size
    if size < info.offset + info.nbytes:
        raise ImageReadError(
            info.path,
            f"{_CORRUPT}: it holds {size} bytes but the header needs {info.offset + info.nbytes}",
        )


def slabs(
    info: NiftiHeaderInfo,
    target: NDArray[Any] | None,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
) -> Iterator[tuple[int, int, NDArray[Any]]]:
    """Yield ``(k0, k1, raw[k0:k1])`` where ``raw[k, j, i]`` is the file voxel ``(i, j, k)``.

    With ``target`` (shape ``(nk, nj, ni)``) slabs are read straight into it; otherwise a
    small staging buffer is reused, so callers must copy each slab before the next one.
    """
    ni, nj, nk = info.file_shape
    per_slice = ni * nj * info.disk_dtype.itemsize
    step = max(1, _SLAB_BYTES // max(per_slice, 1))
    staging = None if target is not None else np.empty((min(step, nk), nj, ni), info.disk_dtype)
    try:
        stream, _ = gz.open_read(info.path)
    except OSError as exc:
        raise ImageReadError(info.path, f"cannot open: {exc.strerror or exc}") from exc
    try:
        with stream:
            stream.seek(info.offset)
            for k0 in range(0, nk, step):
                check_cancel(cancel)
                k1 = min(nk, k0 + step)
                slab = target[k0:k1] if target is not None else staging[: k1 - k0]  # type: ignore[index,unused-ignore]
                _fill(info, stream, slab)
                yield k0, k1, slab
                if progress is not None:
                    progress(k1 / nk, f"reading {Path(info.path).name}")
            if info.compressed:
                stream.read(1)  # reaching the end of the stream verifies the gzip CRC
    except gz.DECOMPRESSION_ERRORS as exc:
        raise ImageReadError(info.path, f"{_CORRUPT} ({exc})") from exc


def _fill(info: NiftiHeaderInfo, stream: IO[bytes], slab: NDArray[Any]) -> None:
    got = gz.read_into(stream, slab.data.cast("B"))
    if got < slab.nbytes:
        raise ImageReadError(info.path, f"{_CORRUPT}: the voxel data ends early")


def _slab_to_memory(slab: NDArray[Any], reo: Reorientation) -> NDArray[Any]:
    """Raw slab ``(k, j, i)`` to memory axes, valid when memory z is file axis k."""
    view = np.transpose(slab, (0, 2 - reo.perm[1], 2 - reo.perm[2]))
    return view[tuple(slice(None, None, -1) if f else slice(None) for f in reo.flip)]


class ImageSink:
    """Collects slabs into the output volume, choosing int16 or float32 HU.

    Integer voxels without scaling stay int16 while they fit (int32 files of CT values do);
    a slab out of int16 range switches the whole volume to float32.  Scaled or float data is
    float32 (scaling computed in float64 per slab).
    """

    def __init__(self, shape: tuple[int, int, int], info: NiftiHeaderInfo) -> None:
        self.scaling = info.scaling
        integral = info.disk_dtype.kind in "biu" and self.scaling is None
        self.checked = integral and info.disk_dtype not in _SMALL_INTS
        self.out = np.empty(shape, np.int16 if integral else np.float32)

    def put(self, z0: int, z1: int, part: NDArray[Any]) -> None:
        if self.scaling is not None:
            slope, inter = self.scaling
            self.out[z0:z1] = part.astype(np.float64) * slope + inter
            return
        if self.checked and self.out.dtype == np.int16 and part.size:
            lo, hi = int(part.min()), int(part.max())
            if lo < _INT16.min or hi > _INT16.max:
                log.info("values %d..%d exceed int16: keeping float32", lo, hi)
                self.out = self.out.astype(np.float32)  # rows filled so far convert exactly
        np.copyto(self.out[z0:z1], part, casting="unsafe")


class RawSink:
    """Keeps the stored values (native byte order; scaled data as float32) for masks."""

    def __init__(self, shape: tuple[int, int, int], info: NiftiHeaderInfo) -> None:
        self.scaling = info.scaling
        dtype = np.float32 if self.scaling is not None else info.disk_dtype.newbyteorder("=")
        self.out = np.empty(shape, dtype)

    def put(self, z0: int, z1: int, part: NDArray[Any]) -> None:
        if self.scaling is not None:
            slope, inter = self.scaling
            self.out[z0:z1] = part.astype(np.float64) * slope + inter
        else:
            np.copyto(self.out[z0:z1], part)


def read_voxels(
    info: NiftiHeaderInfo,
    sink_type: type[ImageSink] | type[RawSink],
    progress: ProgressFn | None,
    cancel: CancelFn | None,
    max_bytes: int | None,
) -> tuple[NDArray[Any], Reorientation, NDArray[np.float64]]:
    reo, affine, shape = info.orientation()
    streaming = reo.perm[0] == 2  # memory z is the file's slowest axis: fill in place
    out_bytes = int(np.prod(shape, dtype=np.int64)) * 4
    if sink_type is ImageSink and info.disk_dtype in _SMALL_INTS and info.scaling is None:
        out_bytes //= 2
    staging = min(info.nbytes, _SLAB_BYTES * 2) if streaming else info.nbytes
    _check_memory(info, out_bytes + staging, max_bytes)
    _check_plain_size(info)
    sink = sink_type(shape, info)
    nk = info.file_shape[2]
    if streaming:
        for k0, k1, slab in slabs(info, None, progress, cancel):
            z0, z1 = (nk - k1, nk - k0) if reo.flip[0] else (k0, k1)
            sink.put(z0, z1, _slab_to_memory(slab, reo))
    else:
        ni, nj, _ = info.file_shape
        raw = np.empty((nk, nj, ni), info.disk_dtype)
        for _ in slabs(info, raw, progress, cancel):
            pass
        sink.put(0, shape[0], reo.to_memory(raw.transpose(2, 1, 0)))
        del raw
    return sink.out, reo, affine
