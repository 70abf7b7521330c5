"""NIfTI-1/2 images and masks (``.nii``, ``.nii.gz``): read fast, reorient, write masks back.

Reading parses the header with nibabel, then inflates the voxel bytes with ISA-L
(:mod:`livgui.imageio.gz`) slab by slab straight into the final array (see
:mod:`livgui.imageio.nifti_core`).  No voxel is ever resampled: the file is brought to the
in-memory ``a[z, y, x]`` LPS convention (:mod:`livgui.core.geometry`) by permutations and
flips only, and :class:`~livgui.core.volume.SourceInfo` keeps what is needed to write a mask
back in the file's own axis order with the image's own qform and sform.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
from numpy.typing import NDArray

from livgui.core.atomicio import atomic_write, sha256_file
from livgui.core.geometry import Geometry, ras_to_lps
from livgui.core.progress import ProgressFn
from livgui.core.volume import LabelMap, SourceInfo, Volume
from livgui.imageio import gz
from livgui.imageio.errors import ImageReadError, ImageWriteError
from livgui.imageio.maskcheck import check_mask_shape, finish_labels, unexpected_label_values
from livgui.imageio.nifti_core import (
    ImageSink,
    RawSink,
    read_nifti_header,
    read_voxels,
    slabs,
)

__all__ = [
    "MASK_DESCRIPTION",
    "read_nifti",
    "read_nifti_header",
    "read_nifti_labels",
    "write_mask_nifti",
]

log = logging.getLogger(__name__)
nib: Any = nibabel  # untyped library

CancelFn = Callable[[], bool]


def read_nifti(
    path: str | Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    max_bytes: int | None = None,
) -> Volume:
    """Read a NIfTI CT volume into memory order ``data[z, y, x]`` (LPS), in HU.

    Parameters
    ----------
    path
        ``.nii`` or ``.nii.gz`` (compression is detected from the content).
    progress, cancel
        Called/checked once per slab of about 4 MiB.
    max_bytes
        Refuse (before allocating) when loading needs more bytes than this or than the
        memory available now, whichever is smaller.

    Returns
    -------
    Volume
        int16 data when the file holds unscaled integers within int16 range (int32 files
        of CT values included), else float32; NaN/Inf voxels are kept.
        ``source.header`` holds qform, sform, their codes, pixdim and the RAS affine;
        ``source.warnings`` notes such as a qform/sform disagreement.

    Raises
    ------
    ImageReadError
        With the path and the problem ("file is incomplete or corrupt", "not a NIfTI file",
        memory needed and available, real 4-D data ...).
    livgui.core.progress.Cancelled
        When ``cancel()`` returned True.
    """
    info = read_nifti_header(path)
    data, reo, affine = read_voxels(info, ImageSink, progress, cancel, max_bytes)
    for message in info.warnings:
        log.warning("%s: %s", info.path, message)
    source = SourceInfo(
        info.path, "nifti", reo, info.file_shape, info.source_header(), info.warnings
    )
    return Volume(data, Geometry(data.shape, affine), source=source, name=_stem(info.path))


def read_nifti_labels(
    path: str | Path,
    like: Volume | None = None,
    *,
    label_values: Mapping[float, int] | None = None,
    keep: Mapping[float, int] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    max_bytes: int | None = None,
) -> LabelMap:
    """Read a NIfTI mask as a uint8 label map (0 background, 1 liver, 2 lesion).

    Parameters
    ----------
    like
        The image the mask belongs to.  Its shape must match after both are reoriented
        (checked from the header, before reading voxels); other spacing, origin or
        direction is accepted with a warning naming the field in ``source.warnings``.
    label_values
        ``{stored: label}``: translate some values, keep the rest (which must be 0/1/2).
    keep
        ``{stored: label}``: translate these values and make every other value background,
        e.g. ``keep={5: 1}`` for the liver of a TotalSegmentator label map.

    Raises
    ------
    ImageReadError
        Shape mismatch (both shapes named), values other than 0/1/2 after mapping (listed;
        non-integral floats included), or any reading problem of :func:`read_nifti`.
    """
    info = read_nifti_header(path)
    reo, _, shape = info.orientation()
    if like is not None:
        check_mask_shape(info.path, shape, like, info.file_shape)
    raw, reo, affine = read_voxels(info, RawSink, progress, cancel, max_bytes)
    source = SourceInfo(
        info.path, "nifti", reo, info.file_shape, info.source_header(), info.warnings
    )
    geometry = Geometry(raw.shape, affine)
    return finish_labels(
        info.path, raw, geometry, like, source, label_values=label_values, keep=keep
    )


def _stem(path: str) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii", ".gz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


# --------------------------------------------------------------------------- writing masks

MASK_DESCRIPTION = b"LivGUI mask - research use only, not for diagnosis"


def write_mask_nifti(labels: LabelMap, path: str | Path, like: Volume) -> str:
    """Write a label map as a uint8 NIfTI mask that overlays ``like`` in any viewer.

    Parameters
    ----------
    labels
        Label map in memory order ``(z, y, x)`` on ``like``'s grid (values 0/1/2).
    path
        Target ``.nii`` or ``.nii.gz``; never one of the files the image or mask was read
        from.
    like
        The image.  When it came from NIfTI the mask is written in the image file's own axis
        order with its header geometry (qform, sform, codes, pixdim) copied verbatim;
        otherwise (DICOM, ...) in memory order with qform = sform = the volume's affine.

    Returns
    -------
    str
        SHA-256 (hex) of the file written.

    Notes
    -----
    uint8 without intensity scaling (slope 1, intercept 0); description "LivGUI mask -
    research use only, not for diagnosis".  Written atomically to a temporary file, which is
    re-read and compared voxel by voxel before it replaces the target, so the target is the
    complete old or complete new file.

    Raises
    ------
    ImageWriteError
        Bad target, labels not on ``like``'s grid or with values other than 0/1/2, or the
        re-read file does not match.
    livgui.core.atomicio.DiskFullError
        "could not save ...: disk full"; the target is unchanged.
    """
    target = Path(path)
    _check_target(target, labels, like)
    header, file_data = mask_header_and_data(labels, like)
    compress = target.name.lower().endswith(".gz")

    def write(tmp: Path) -> None:
        write_nifti_stream(tmp, header, file_data, compress)

    def verify(tmp: Path) -> None:
        verify_written(tmp, target, header, file_data)

    atomic_write(target, write, verify)
    log.info("wrote mask %s", target)
    return sha256_file(target)


def _check_target(target: Path, labels: LabelMap, like: Volume) -> None:
    name = target.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ImageWriteError(target, "a NIfTI mask file name must end with .nii or .nii.gz")
    if labels.data.shape != like.shape:
        raise ImageWriteError(
            target, f"mask shape {labels.data.shape} does not match the image shape {like.shape}"
        )
    for src in (like.source, labels.source):
        if src is not None and src.path and _same_file(target, Path(src.path)):
            raise ImageWriteError(
                target, "this is a file LivGUI read from; source files are never overwritten"
            )
    bad = unexpected_label_values(labels.data)
    if bad:
        raise ImageWriteError(target, f"label values {bad} are not 0, 1 or 2")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def mask_header_and_data(labels: LabelMap, like: Volume) -> tuple[Any, NDArray[np.uint8]]:
    """Header and file-ordered ``(i, j, k)`` uint8 array for a mask of ``like``.

    NIfTI images: the image's header is cloned (qform, sform, codes, pixdim, units kept
    byte for byte) and the labels go back through ``reorientation.to_file``.  Other
    sources: memory order, qform = sform = the volume's affine in RAS, codes 1 (scanner).
    """
    src = like.source
    if src is not None and src.format == "nifti" and "binary_header" in src.header:
        version2 = src.header.get("nifti_version") == 2
        klass: Any = nib.Nifti2Header if version2 else nib.Nifti1Header
        header = klass(binaryblock=src.header["binary_header"], check=False)
        data = src.reorientation.to_file(labels.data)
    else:
        header = nib.Nifti1Header()
        data = labels.data.transpose(2, 1, 0)
        affine_ras = ras_to_lps(like.geometry.affine)  # the same matrix maps LPS to RAS
        header.set_qform(affine_ras, code=1)
        header.set_sform(affine_ras, code=1)
        header.set_xyzt_units("mm", "sec")
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.uint8)
    header["scl_slope"] = 1.0
    header["scl_inter"] = 0.0
    header["cal_min"] = 0.0
    header["cal_max"] = 2.0
    header["descrip"] = MASK_DESCRIPTION
    header["aux_file"] = b""
    header.set_intent("label")
    header["vox_offset"] = len(header.binaryblock) + 4
    return header, data  # type: ignore[return-value]


def write_nifti_stream(
    path: Path, header: Any, file_data: NDArray[np.uint8], compress: bool
) -> None:
    """Write header, an empty extension flag and the voxels (Fortran order) to ``path``."""
    raw = file_data.T  # raw[k, j, i]: C order of this view is the file's Fortran order
    step = max(1, (4 << 20) // max(raw[0].size, 1))
    with gz.open_write(path, compress) as fh:
        fh.write(header.binaryblock)
        fh.write(b"\0" * (int(header["vox_offset"]) - len(header.binaryblock)))
        for k0 in range(0, raw.shape[0], step):
            fh.write(np.ascontiguousarray(raw[k0 : k0 + step]).data)


def verify_written(tmp: Path, target: Path, header: Any, file_data: NDArray[np.uint8]) -> None:
    """Re-read ``tmp`` and compare header geometry and every voxel with what was meant."""
    try:
        info = read_nifti_header(tmp)
        if (
            info.disk_dtype != np.uint8
            or info.file_shape != tuple(file_data.shape)
            or info.scaling is not None
        ):
            raise ImageWriteError(target, "re-read file has the wrong type, shape or scaling")
        for key in ("qform_code", "sform_code"):
            if int(info.header[key]) != int(header[key]):
                raise ImageWriteError(target, f"re-read file has another {key}")
        for name in ("get_qform", "get_sform"):
            if not np.allclose(getattr(info.header, name)(), getattr(header, name)(), atol=1e-5):
                raise ImageWriteError(target, f"re-read file has another {name[4:]}")
        raw = file_data.T
        for k0, k1, slab in slabs(info, None, None, None):
            if not np.array_equal(slab, raw[k0:k1]):
                raise ImageWriteError(target, f"re-read voxels differ in slices {k0}-{k1 - 1}")
    except ImageReadError as exc:
        raise ImageWriteError(target, f"re-reading the written file failed: {exc.problem}") from exc
