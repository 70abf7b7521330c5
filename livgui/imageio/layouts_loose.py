"""A plain folder of loose NIfTI files: each image is a case, masks paired by name.

Users often keep their own CT as ``case12.nii.gz`` beside ``case12_seg.nii.gz`` (or
``_mask``, ``_label``, ``_labels``, ``_gt``, ``-segmentation`` ...).  Files whose stem ends
in such a word are masks; every other NIfTI file is an image.  A mask is paired with the
image whose stem it starts with; masks with no image are ignored (and named by
:func:`unpaired_masks`).  Labels are read as LiTS labels (0/1/2); anything else is refused
by the mask reader with the values listed.
"""

from __future__ import annotations

import re
from pathlib import Path

from livgui.imageio.layouts_common import CaseRef, is_hidden, natural_key
from livgui.imageio.layouts_nifti import is_nifti_name, nifti_stem

__all__ = ["is_loose_nifti_folder", "list_loose_nifti", "unpaired_masks"]

_MASK_SUFFIX = re.compile(
    r"^(?P<image>.+?)[ _.-]+(seg|segmentation|mask|masks|label|labels|gt|groundtruth|ref|reference)$",
    re.IGNORECASE,
)


_MASK_ONLY = re.compile(
    r"^(seg|segmentation|mask|masks|label|labels|gt)([ _.-]?\d+)?$", re.IGNORECASE
)


def _files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and is_nifti_name(p) and not is_hidden(p)),
        key=lambda p: natural_key(p.name),
    )


def _split(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """Images, and masks keyed by the image stem they name."""
    images: list[Path] = []
    masks: dict[str, Path] = {}
    for path in _files(folder):
        stem = nifti_stem(path)
        match = _MASK_SUFFIX.match(stem)
        if _MASK_ONLY.match(stem):
            masks.setdefault(f"\0{stem}", path)  # a mask naming no image
        elif match:
            masks.setdefault(match.group("image"), path)
        else:
            images.append(path)
    return images, masks


def is_loose_nifti_folder(path: Path) -> bool:
    """A folder holding at least one loose NIfTI image directly.

    Only the folder the user chose is read this way (see ``datasets._collect``).
    """
    return path.is_dir() and bool(_split(path)[0])


def list_loose_nifti(path: Path) -> list[CaseRef]:
    """One case per image file, with its mask when one is named after it."""
    images, masks = _split(path)
    return [
        CaseRef(nifti_stem(img), "nifti-folder", img, masks.get(nifti_stem(img)), {})
        for img in images
    ]


def unpaired_masks(path: Path) -> list[Path]:
    """Mask files in ``path`` that name no image there."""
    images, masks = _split(path)
    stems = {nifti_stem(p) for p in images}
    return [m for stem, m in masks.items() if stem not in stems]
