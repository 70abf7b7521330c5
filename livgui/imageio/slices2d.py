"""Folders of 2D image + mask slices (PNG / JPEG): ``<root>/images/*`` + ``<root>/masks/*``.

Each image/mask pair becomes a one-slice case (``z = 1``): sparse slices of one volume sit
at unknown, different depths, so stacking them would invent a volume.

Two conventions are known (facts in ``../shared/data/README.md``):

``msd-liver-2d``
    names ``{flipped|mirrored}_{VOLID}_{SLICE}.jpg``: axial slices of MSD Task03 / LiTS
    volumes, exported as ``data[:, :, k]`` (rows along the patient's x axis), HU saturated
    to 0..255, resized to 256x256 (about 1.5 mm per pixel) and written through
    ``ImageOps.flip`` (top-bottom) or ``ImageOps.mirror`` (left-right).  We undo that
    transform, then take the transpose rotated by 180 degrees, which is the radiological
    view (anterior up, patient's right on the image's left) of the memory convention.
    Masks are JPEG-smeared: liver (tumour included) where the mask exceeds 127.
    The same slice stored both flipped and mirrored is kept once.
``plain``
    any other names (``{VOLID}_{SLICE}.png`` in the Kaggle liver-tumour set): shown as
    stored, plane unknown.  RGB masks: blue = liver, red = tumour.  Grey masks: values
    0/1/2 in PNG are labels; anything else is thresholded at 127 to liver.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.geometry import Geometry
from livgui.core.progress import ProgressFn, check_cancel
from livgui.core.volume import LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError
from livgui.imageio.layouts_common import Case, CaseRef, is_hidden, natural_key

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUT",
    "MSD2D_SPACING_MM",
    "is_slice_folder",
    "list_slice_refs",
    "load_slice_case",
    "load_slice_cases",
    "read_mask_image",
    "to_radiological",
]

log = logging.getLogger(__name__)

LAYOUT = "slices2d"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: msd-liver-2d stores no spacing; 512 px of about 0.75 mm resized to 256 px.
MSD2D_SPACING_MM = 1.5
_MSD_NAME = re.compile(r"^(flipped|mirrored)_(\d+)_(\d+)$")
_VOL_SLICE_NAME = re.compile(r"^(.+)_(\d+)$")
#: In the msd-liver-2d convention the flipped copy is preferred when both exist.
_TRANSFORM_PREFERENCE = ("flipped", "mirrored")
_THRESHOLD = 127


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not is_hidden(p)
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def is_slice_folder(path: str | Path) -> bool:
    """True for a folder holding ``images/`` with PNG/JPEG files (and usually ``masks/``)."""
    root = Path(path)
    return root.is_dir() and bool(_image_files(root / "images"))


def _find_mask(masks: Path, image: Path) -> Path | None:
    same = masks / image.name
    if same.is_file():
        return same
    for suffix in IMAGE_SUFFIXES:
        candidate = masks / (image.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def _describe(image: Path) -> dict[str, Any]:
    """Case id, patient id and convention parsed from an image file name."""
    match = _MSD_NAME.match(image.stem)
    if match:
        transform, volid, index = match.groups()
        return {
            "case_id": f"{volid}_{index}",
            "patient_id": volid,
            "convention": "msd-liver-2d",
            "transform": transform,
            "slice_index": int(index),
        }
    loose = _VOL_SLICE_NAME.match(image.stem)
    return {
        "case_id": image.stem,
        "patient_id": loose.group(1) if loose else None,
        "convention": "plain",
        "transform": None,
    }


def list_slice_refs(path: str | Path) -> list[CaseRef]:
    """One :class:`CaseRef` per distinct slice of a 2D slice folder.

    Copies of one slice stored under several transforms (msd-liver-2d keeps 16 slices
    both flipped and mirrored) collapse into one ref; the others are listed in
    ``extra["duplicates"]``.  Images without a mask get ``reference_path=None``.
    """
    root = Path(path)
    images = _image_files(root / "images")
    if not images:
        raise ImageReadError(root, "no PNG/JPEG files in an images/ folder")
    groups: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for image in images:
        info = _describe(image)
        groups.setdefault(info["case_id"], []).append((image, info))
    refs = []
    for case_id, members in groups.items():
        members.sort(key=lambda m: _TRANSFORM_PREFERENCE.index(m[1]["transform"] or "flipped"))
        image, info = members[0]
        extra = {k: v for k, v in info.items() if k != "case_id"}
        extra["duplicates"] = tuple(str(m[0]) for m in members[1:])
        refs.append(CaseRef(case_id, LAYOUT, image, _find_mask(root / "masks", image), extra))
    return refs


def to_radiological(stored: NDArray[Any], transform: str | None) -> NDArray[Any]:
    """An msd-liver-2d slice as stored -> radiological view ``(y, x)``.

    Undo ``ImageOps.flip`` (top-bottom) or ``ImageOps.mirror`` (left-right), then take the
    transpose rotated by 180 degrees (rows of the export run along the patient's x axis).
    """
    if transform == "flipped":
        stored = stored[::-1, :]
    elif transform == "mirrored":
        stored = stored[:, ::-1]
    elif transform is not None:
        raise ValueError(f"unknown transform {transform!r}")
    return np.ascontiguousarray(np.rot90(stored.T, 2))


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ImageReadError(path, f"not a readable PNG/JPEG image ({err})") from None
    return image


def _read_intensity(path: Path) -> tuple[NDArray[np.int16], bool]:
    """Grey values of a slice image as int16 ``(rows, cols)``; True when 8-bit."""
    image = _open(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        data = np.asarray(image, dtype=np.int64)
        if data.min() < -32768 or data.max() > 32767:
            raise ImageReadError(path, "16-bit values do not fit int16 HU")
        return data.astype(np.int16), False
    return np.asarray(image.convert("L"), dtype=np.int16), True


def read_mask_image(path: str | Path) -> tuple[NDArray[np.uint8], str]:
    """A 2D mask file as labels ``(rows, cols)`` as stored, and how it was interpreted.

    RGB masks with colour: blue -> 1 (liver), red -> 2 (tumour).  Grey PNG masks with
    values in {0, 1, 2}: labels as is.  Otherwise (0/255, JPEG): 1 where above 127.
    """
    p = Path(path)
    image = _open(p)
    if image.mode in ("RGB", "RGBA", "P"):
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
        if int((rgb.max(axis=2) - rgb.min(axis=2)).max()) > 100:
            red, blue = rgb[..., 0], rgb[..., 2]
            out = np.zeros(rgb.shape[:2], dtype=np.uint8)
            out[(blue > _THRESHOLD) & (blue >= red)] = 1
            out[(red > _THRESHOLD) & (red > blue)] = 2
            return out, "RGB mask: blue -> liver (1), red -> tumour (2)"
    grey = np.asarray(image.convert("L"), dtype=np.uint8)
    if p.suffix.lower() == ".png" and int(grey.max()) <= 2:
        return grey.copy(), "grey mask values used as labels (0/1/2)"
    return (grey > _THRESHOLD).astype(np.uint8), "mask thresholded at 127 -> liver (1)"


def _msd_warnings(ref: CaseRef) -> list[str]:
    notes = [
        f"single axial slice {ref.extra.get('slice_index')} of volume {ref.patient_id} "
        "(z = 1; slice position unknown)",
        "pixel values are HU clipped to [0, 255] by the dataset export; stored as HU 0..255",
        f"pixel spacing not stored: about {MSD2D_SPACING_MM} mm, {MSD2D_SPACING_MM} mm assumed",
        f"undid ImageOps.{'flip' if ref.extra['transform'] == 'flipped' else 'mirror'} "
        "and turned into the radiological view",
        "mask thresholded at 127 (JPEG); liver includes tumour (no separate lesion label)",
    ]
    dups = ref.extra.get("duplicates") or ()
    if dups:
        names = ", ".join(Path(d).name for d in dups)
        notes.append(f"same slice also stored as {names}: one copy kept")
    return notes


def load_slice_case(ref: CaseRef) -> Case:
    """Load one image/mask pair of a 2D slice folder as a one-slice case."""
    grey, eight_bit = _read_intensity(ref.image_path)
    msd = ref.extra.get("convention") == "msd-liver-2d"
    labels, how = (None, "") if ref.reference_path is None else read_mask_image(ref.reference_path)
    if labels is not None and labels.shape != grey.shape:
        raise ImageReadError(
            ref.reference_path or "", f"mask {labels.shape} and image {grey.shape} differ in size"
        )
    if msd:
        transform = ref.extra.get("transform")
        grey = to_radiological(grey, transform)
        labels = None if labels is None else to_radiological(labels, transform)
        warnings = _msd_warnings(ref)
        spacing = (MSD2D_SPACING_MM,) * 3
    else:
        warnings = _plain_warnings(eight_bit, how)
        spacing = (1.0, 1.0, 1.0)
    if ref.reference_path is None:
        warnings.append("no mask file for this image")
    geometry = Geometry.from_spacing((1, grey.shape[0], grey.shape[1]), spacing)
    source = SourceInfo(
        str(ref.image_path),
        "msd-liver-2d" if msd else "2d-image",
        file_shape=grey.shape,
        header=dict(ref.extra),
        warnings=tuple(warnings),
    )
    volume = Volume(grey[np.newaxis], geometry, source, name=ref.case_id)
    reference = None
    if labels is not None:
        reference = LabelMap(labels[np.newaxis], geometry, name="reference")
    return Case(ref.case_id, LAYOUT, volume, reference, warnings, ref.patient_id)


def _plain_warnings(eight_bit: bool, how: str) -> list[str]:
    notes = [
        "not axial: plane unknown; shown as stored (a one-slice volume, no 3D geometry)",
        "pixel spacing not stored: 1 mm assumed",
    ]
    if eight_bit:
        notes.append("pixel values are 8-bit display values, not HU")
    if how:
        notes.append(how)
    return notes


def load_slice_cases(
    refs: Sequence[CaseRef],
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[Case]:
    """Load many slice cases in one call (all of msd-liver-2d takes about a second)."""
    out = []
    for i, ref in enumerate(refs):
        check_cancel(cancel)
        out.append(load_slice_case(ref))
        if progress is not None and (i % 32 == 0 or i == len(refs) - 1):
            progress((i + 1) / len(refs), f"slice {i + 1} of {len(refs)}")
    return out
