"""Build small synthetic DICOM files with pydicom for tests and benchmarks.

Files get random-looking names so no test can pass by sorting on the file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


def phantom_hu(n: int = 8, rows: int = 32, cols: int = 40, seed: int = 0) -> NDArray[np.int16]:
    """HU slices ``(n, rows, cols)``: air -1000 around a 40 HU body with a 200 HU marker.

    The marker sits at low column / low row in slice 0 only, so flips and slice order
    show.  Every slice differs (a per-slice offset), so stacking mistakes show too.
    """
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[:rows, :cols]
    body = ((r - rows / 2) / (rows * 0.4)) ** 2 + ((c - cols / 2) / (cols * 0.4)) ** 2 < 1
    out = np.full((n, rows, cols), -1000, dtype=np.int16)
    for k in range(n):
        out[k][body] = 40 + k + rng.integers(-3, 4, size=int(body.sum()))
    out[0, rows // 4, cols // 4] = 200
    return out


@dataclass
class SliceSpec:
    """Everything one synthetic slice file needs; defaults give a plain axial CT slice."""

    stored: NDArray[np.integer]
    position: Sequence[float]
    orientation: Sequence[float] = AXIAL
    pixel_spacing: Sequence[float] = (0.8, 0.7)  # (row spacing, column spacing)
    series_uid: str = "1.2.3.4"
    slope: float | None = 1.0
    intercept: float | None = 0.0
    description: str = "synthetic"
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL")
    instance_number: int = 1
    sop_class: str = CTImageStorage
    transfer_syntax: str = ExplicitVRLittleEndian
    preamble: bytes | None = None
    extra: dict[str, object] = field(default_factory=dict)


def make_dataset(spec: SliceSpec) -> Dataset:
    """An in-memory dataset with file meta for ``spec`` (uncompressed)."""
    stored = np.ascontiguousarray(spec.stored)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(spec.sop_class)
    sop_uid = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = UID(spec.sop_class)
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = spec.series_uid
    ds.Modality = "CT"
    ds.SeriesDescription = spec.description
    ds.PatientID = "anon"
    ds.ImageType = list(spec.image_type)
    ds.InstanceNumber = spec.instance_number
    ds.ImagePositionPatient = [f"{v:.6f}" for v in spec.position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in spec.orientation]
    ds.PixelSpacing = [f"{v:.6f}" for v in spec.pixel_spacing]
    ds.SliceThickness = "1.0"
    if spec.slope is not None:
        ds.RescaleSlope = f"{spec.slope:.8g}"
    if spec.intercept is not None:
        ds.RescaleIntercept = f"{spec.intercept:.8g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsAllocated - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    for key, value in spec.extra.items():
        setattr(ds, key, value)
    return ds


def write_slice(path: Path, spec: SliceSpec) -> Path:
    """Write one slice file (compressing when ``spec.transfer_syntax`` asks for it)."""
    ds = make_dataset(spec)
    if spec.transfer_syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        ds.compress(spec.transfer_syntax)
    elif spec.transfer_syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    if spec.preamble is not None:
        ds.preamble = spec.preamble.ljust(128, b"\0")[:128]
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    hu: NDArray[np.integer],
    *,
    step: float = 2.0,
    positions: Sequence[Sequence[float]] | None = None,
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-12.0, -14.0, 100.0),
    intercept: float = -1024.0,
    prefix: str = "",
    **spec_kw: object,
) -> list[Path]:
    """Write ``hu[k]`` as slice files; returns paths in slice order (k ascending).

    Slice ``k`` sits at ``origin + k * step * normal`` unless ``positions`` are given.
    Stored values are ``hu - intercept`` as uint16 (like most scanners).
    """
    row = np.asarray(orientation[:3])
    col = np.asarray(orientation[3:])
    normal = np.cross(row, col)
    rng = np.random.default_rng(len(hu))
    names = rng.permutation(len(hu))
    paths = []
    for k in range(len(hu)):
        pos = positions[k] if positions is not None else np.asarray(origin) + k * step * normal
        stored = (hu[k].astype(np.int32) - int(intercept)).astype(np.uint16)
        spec = SliceSpec(
            stored,
            tuple(float(v) for v in pos),
            orientation=orientation,
            intercept=intercept,
            instance_number=k + 1,
            **spec_kw,  # type: ignore[arg-type]
        )
        paths.append(write_slice(folder / f"{prefix}{names[k]:04d}_x.dcm", spec))
    return paths
