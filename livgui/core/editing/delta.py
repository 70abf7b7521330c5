"""An edit as a delta inside its bounding box (ARCHITECTURE habit 3).

An :class:`Edit` remembers the old and new label values of the voxels it changed, never a
copy of the whole volume.  Two storage forms, whichever is smaller:

* **dense**: the box ``labels[z0:z1, y0:y1, x0:x1]`` before and after (2 bytes a box voxel);
* **sparse**: flat indices into the box (uint32) with the old and new value of each changed
  voxel (6 bytes a changed voxel).

The box is always tightened to the voxels that really changed.  Edits are immutable (their
arrays are read-only), so they can be handed to a journal thread without copying.

:func:`encode_edit` / :func:`decode_edit` give a compact, pickle-free binary form (a struct
header and a zlib-compressed payload) used by the history file and the autosave journal.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["Box", "Edit", "decode_edit", "encode_edit", "merge_edits"]

#: ``(z0, y0, x0, z1, y1, x1)`` half-open voxel bounds in array order.
Box = tuple[int, int, int, int, int, int]

_HEADER = struct.Struct("<4sB3I3II")  # magic, form, origin zyx, shape zyx, n entries
_MAGIC = b"LGE1"
_DENSE, _SPARSE = 0, 1


_A = TypeVar("_A", bound=np.generic)


def _readonly(a: NDArray[_A]) -> NDArray[_A]:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Edit:
    """Old and new label values inside a box of a ``labels[z, y, x]`` uint8 array.

    Attributes
    ----------
    origin
        ``(z0, y0, x0)`` voxel index of the box corner.
    shape
        ``(nz, ny, nx)`` box size in voxels (all zero for an empty edit).
    old, new
        Dense form: uint8 arrays of ``shape``.  Sparse form: 1-D uint8 values.
    index
        ``None`` for the dense form; else sorted flat (C-order) uint32 indices into the box.
    changed
        Number of voxels whose value differs.
    """

    origin: tuple[int, int, int]
    shape: tuple[int, int, int]
    old: NDArray[np.uint8]
    new: NDArray[np.uint8]
    index: NDArray[np.uint32] | None
    changed: int

    @classmethod
    def empty(cls) -> Edit:
        none = np.zeros(0, np.uint8)
        return cls((0, 0, 0), (0, 0, 0), none, none, np.zeros(0, np.uint32), 0)

    @classmethod
    def from_boxes(
        cls, origin: tuple[int, int, int], old: NDArray[np.uint8], new: NDArray[np.uint8]
    ) -> Edit:
        """Delta between two same-shaped boxes whose corner is ``origin``.

        The box is tightened to the changed voxels and the smaller form is chosen.  The
        inputs are not kept (the edit owns copies).
        """
        if old.shape != new.shape or old.ndim != 3:
            raise ValueError(f"old and new boxes differ in shape: {old.shape} vs {new.shape}")
        diff = old != new
        n = int(np.count_nonzero(diff))
        if n == 0:
            return cls.empty()
        nz = [np.flatnonzero(diff.any(axis=ax)) for ax in ((1, 2), (0, 2), (0, 1))]
        lo = tuple(int(a[0]) for a in nz)
        hi = tuple(int(a[-1]) + 1 for a in nz)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        o = (origin[0] + lo[0], origin[1] + lo[1], origin[2] + lo[2])
        shape = (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2])
        box_old, box_new, box_diff = old[sl], new[sl], diff[sl]
        if 6 * n < 2 * box_diff.size:
            idx = np.flatnonzero(box_diff).astype(np.uint32)
            flat_old, flat_new = box_old.reshape(-1)[idx], box_new.reshape(-1)[idx]
            return cls(o, shape, _readonly(flat_old), _readonly(flat_new), _readonly(idx), n)
        return cls(o, shape, _readonly(box_old.copy()), _readonly(box_new.copy()), None, n)

    @property
    def is_empty(self) -> bool:
        return self.changed == 0

    @property
    def form(self) -> Literal["dense", "sparse"]:
        return "dense" if self.index is None else "sparse"

    @property
    def box(self) -> Box:
        (z, y, x), (a, b, c) = self.origin, self.shape
        return (z, y, x, z + a, y + b, x + c)

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        b = self.box
        return (slice(b[0], b[3]), slice(b[1], b[4]), slice(b[2], b[5]))

    @property
    def nbytes(self) -> int:
        """Memory held by the delta arrays, in bytes."""
        extra = 0 if self.index is None else int(self.index.nbytes)
        return int(self.old.nbytes + self.new.nbytes) + extra

    def apply(self, labels: NDArray[np.uint8]) -> None:
        """Write the new values into ``labels`` (in place)."""
        self.write_into(labels, (0, 0, 0), "new")

    def revert(self, labels: NDArray[np.uint8]) -> None:
        """Write the old values back into ``labels`` (in place)."""
        self.write_into(labels, (0, 0, 0), "old")

    def write_into(
        self,
        target: NDArray[np.uint8],
        target_origin: tuple[int, int, int],
        which: Literal["old", "new"],
    ) -> None:
        """Write old or new values into ``target``, an array whose corner is ``target_origin``."""
        if self.is_empty:
            return
        values = self.new if which == "new" else self.old
        z, y, x = (self.origin[i] - target_origin[i] for i in range(3))
        a, b, c = self.shape
        view = target[z : z + a, y : y + b, x : x + c]
        if view.shape != self.shape:
            raise ValueError(f"edit box {self.box} does not fit an array of shape {target.shape}")
        if self.index is None:
            view[...] = values
        else:
            iz, iy, ix = np.unravel_index(self.index, self.shape)
            view[iz, iy, ix] = values

    def mark(self, mask: NDArray[np.bool_]) -> None:
        """Set ``mask`` True at every voxel this edit changed (``mask[z, y, x]``)."""
        if self.is_empty:
            return
        view = mask[self.slices]
        if self.index is None:
            view |= self.old != self.new
        else:
            view[np.unravel_index(self.index, self.shape)] = True


def merge_edits(edits: list[Edit], labels: NDArray[np.uint8]) -> Edit:
    """One edit equal to applying ``edits`` in order, given ``labels`` *after* all of them.

    Reads the union box of ``labels`` (the end state) and reverts the edits into a copy in
    reverse order to get the start state: the cost is one box copy, not one per dab.
    """
    live = [e for e in edits if not e.is_empty]
    if not live:
        return Edit.empty()
    if len(live) == 1:
        return live[0]
    lo = [min(e.box[i] for e in live) for i in range(3)]
    hi = [max(e.box[i + 3] for e in live) for i in range(3)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    new = labels[sl]
    old = new.copy()
    origin = (lo[0], lo[1], lo[2])
    for e in reversed(live):
        e.write_into(old, origin, "old")
    return Edit.from_boxes(origin, old, new)


def encode_edit(edit: Edit, level: int = 1) -> bytes:
    """Compact binary form of an edit: struct header + zlib-compressed arrays."""
    if edit.index is None:
        form, n, payload = _DENSE, edit.old.size, edit.old.tobytes() + edit.new.tobytes()
    else:
        # Sorted indices delta-encode to small numbers that compress well.
        steps = np.diff(edit.index, prepend=np.uint32(0)).astype(np.uint32)
        form, n = _SPARSE, int(edit.index.size)
        payload = steps.tobytes() + edit.old.tobytes() + edit.new.tobytes()
    head = _HEADER.pack(_MAGIC, form, *edit.origin, *edit.shape, n)
    return head + zlib.compress(payload, level)


def decode_edit(data: bytes | memoryview) -> Edit:
    """Inverse of :func:`encode_edit`; raises ``ValueError`` on malformed input."""
    if len(data) < _HEADER.size:
        raise ValueError("edit record too short")
    magic, form, z, y, x, a, b, c, n = _HEADER.unpack_from(data, 0)
    if magic != _MAGIC or form not in (_DENSE, _SPARSE):
        raise ValueError("not an edit record")
    try:
        raw = zlib.decompress(bytes(data[_HEADER.size :]))
    except zlib.error as exc:
        raise ValueError(f"edit record payload is corrupt: {exc}") from exc
    size = a * b * c
    if form == _DENSE:
        if n != size or len(raw) != 2 * size:
            raise ValueError("dense edit record has the wrong length")
        old = np.frombuffer(raw, np.uint8, size).reshape(a, b, c)
        new = np.frombuffer(raw, np.uint8, size, offset=size).reshape(a, b, c)
        return Edit((z, y, x), (a, b, c), old, new, None, int(np.count_nonzero(old != new)))
    if len(raw) != 6 * n:
        raise ValueError("sparse edit record has the wrong length")
    index = np.cumsum(np.frombuffer(raw, np.uint32, n), dtype=np.uint32)
    if n and int(index[-1]) >= size:
        raise ValueError("sparse edit record indexes outside its box")
    old = np.frombuffer(raw, np.uint8, n, offset=4 * n)
    new = np.frombuffer(raw, np.uint8, n, offset=5 * n)
    return Edit((z, y, x), (a, b, c), old, new, _readonly(index), n)
