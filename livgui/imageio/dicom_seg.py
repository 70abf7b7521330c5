"""Read a DICOM Segmentation (SEG) object onto a CT volume's grid (highdicom, MIT).

The SEG frames are placed by their plane positions: highdicom builds the SEG's own volume
(array plus an index-to-LPS affine) and the affine is composed with the CT's inverse
affine.  The result must be a signed axis permutation with an integral offset (the SEG
was drawn on this CT's slices); otherwise the SEG is refused, never resampled.
Segments named like "liver" become label 1, "tumor"/"tumour"/"lesion"/"metastasis" label 2
(lesions drawn over the liver win).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.volume import LESION, LIVER, LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError

__all__ = ["read_dicom_seg", "segment_label_value"]

log = logging.getLogger(__name__)

_LIVER = re.compile(r"liver", re.IGNORECASE)
_LESION = re.compile(r"tumou?r|lesion|metasta|cancer|neoplasm", re.IGNORECASE)
_TOL = 1e-2  # in voxels: SEG positions are printed decimals


def segment_label_value(*names: str) -> int:
    """LivGUI label for a segment from its label / property names (0: not used)."""
    text = " ".join(names)
    if _LESION.search(text):
        return LESION
    if _LIVER.search(text):
        return LIVER
    return 0


def _segment_values(seg: Any) -> dict[int, int]:
    values: dict[int, int] = {}
    for number in seg.segment_numbers:
        desc = seg.get_segment_description(number)
        prop = getattr(desc.segmented_property_type, "meaning", "")
        values[int(number)] = segment_label_value(str(desc.segment_label), str(prop))
    return values


def _placement(
    seg_affine: NDArray[np.float64], seg_shape: tuple[int, ...], like: Volume, path: Path
) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[bool, bool, bool]]:
    """(memory start (z, y, x), array axis per memory axis, flip per memory axis)."""
    m = np.linalg.inv(like.geometry.affine) @ seg_affine  # seg (i, j, k) -> memory (x, y, z)
    lin = m[:3, :3]
    rounded = np.round(lin)
    if not np.allclose(lin, rounded, atol=_TOL) or sorted(np.abs(rounded).sum(axis=0)) != [1, 1, 1]:
        raise ImageReadError(path, "SEG frames are not on the CT grid (other spacing or direction)")
    offset = m[:3, 3]
    if not np.allclose(offset, np.round(offset), atol=_TOL):
        raise ImageReadError(path, "SEG frame positions fall between the CT voxels")
    start = [0, 0, 0]
    axes = [0, 0, 0]
    flips = [False, False, False]
    for a in range(3):
        b = int(np.argmax(np.abs(rounded[:, a])))  # memory index axis (x=0, y=1, z=2)
        mem = 2 - b
        axes[mem] = a
        flips[mem] = rounded[b, a] < 0
        first = int(np.round(offset[b]))
        start[mem] = first - (seg_shape[a] - 1) if flips[mem] else first
    return (
        (start[0], start[1], start[2]),
        (axes[0], axes[1], axes[2]),
        (flips[0], flips[1], flips[2]),
    )


def _paste(
    out: NDArray[np.uint8], block: NDArray[np.uint8], start: tuple[int, int, int], path: Path
) -> None:
    stop = [s + n for s, n in zip(start, block.shape, strict=True)]
    if min(start) < 0 or any(e > n for e, n in zip(stop, out.shape, strict=True)):
        raise ImageReadError(
            path, f"SEG covers voxels outside the CT grid {out.shape} (starts at {start})"
        )
    region = out[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
    np.maximum(region, block, out=region)


def read_dicom_seg(path: str | Path, like: Volume) -> LabelMap:
    """A DICOM SEG as a 0/1/2 :class:`LabelMap` on ``like``'s grid.

    Parameters
    ----------
    path
        The SEG file.
    like
        The CT volume the SEG was drawn on (memory convention ``[z, y, x]``).

    Raises
    ------
    ImageReadError
        Not a SEG, no liver/lesion segment, or frames not on ``like``'s grid.
    """
    import highdicom as hd

    p = Path(path)
    try:
        seg = hd.seg.segread(p)
    except Exception as err:  # highdicom/pydicom raise many types on non-SEG input
        raise ImageReadError(p, f"not a readable DICOM SEG ({err})") from err
    values = _segment_values(seg)
    if not any(values.values()):
        names = [str(seg.get_segment_description(n).segment_label) for n in values]
        raise ImageReadError(p, f"no liver or lesion segment (segments: {', '.join(names)})")
    numbers = sorted(values)
    try:
        vol = seg.get_volume(segment_numbers=numbers, combine_segments=False, dtype=np.uint8)
    except Exception as err:
        raise ImageReadError(p, f"SEG frames do not form a volume ({err})") from err
    arr = np.asarray(vol.array)  # (i, j, k, segment)
    start, axes, flips = _placement(
        np.asarray(vol.affine, dtype=np.float64), arr.shape[:3], like, p
    )
    out = np.zeros(like.shape, dtype=np.uint8)
    for s_index, number in enumerate(numbers):
        label = values[number]
        if label == 0:
            continue
        block = np.transpose(arr[..., s_index] > 0, axes)
        block = block[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
        _paste(out, block.astype(np.uint8) * np.uint8(label), start, p)
    source = SourceInfo(str(p), "dicom-seg", header={"segments": values})
    return LabelMap(out, like.geometry, name=p.stem, source=source)
