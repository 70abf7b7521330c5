"""Connected components and bounding boxes with numpy alone (scipy used when present).

The GPU machines have torch, numpy and safetensors only, so the largest-connected-component
step has a pure numpy fallback: a vectorised union-find over the foreground voxels
(hook the larger root onto the smaller one along every face-neighbour edge, then pointer
jumping until every voxel points at its root; repeat until no edge joins two roots).
Connectivity is 6 (faces) in 3D, like ``scipy.ndimage.label``'s default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["bounding_box", "have_scipy", "largest_component"]

log = logging.getLogger(__name__)


def have_scipy() -> bool:
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError:
        return False
    return True


def _edges(
    fg: NDArray[np.int64], shape: tuple[int, ...]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Face-neighbour pairs ``(a, b)`` as positions in ``fg`` (sorted flat indices)."""
    a_parts, b_parts = [], []
    stride = 1
    for axis in range(len(shape) - 1, -1, -1):
        n = shape[axis]
        coord = (fg // stride) % n
        cand = np.flatnonzero(coord < n - 1)
        target = fg[cand] + stride
        pos = np.searchsorted(fg, target)
        pos_clip = np.minimum(pos, fg.size - 1)
        hit = fg[pos_clip] == target
        a_parts.append(cand[hit])
        b_parts.append(pos_clip[hit])
        stride *= n
    return np.concatenate(a_parts), np.concatenate(b_parts)


def _compress(parent: NDArray[np.int64]) -> NDArray[np.int64]:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def label_roots_numpy(
    mask: NDArray[np.bool_], tick: Callable[[], None] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Foreground flat indices and, for each, the smallest foreground position in its component."""
    fg = np.flatnonzero(mask.reshape(-1)).astype(np.int64)
    parent = np.arange(fg.size, dtype=np.int64)
    if fg.size == 0:
        return fg, parent
    a, b = _edges(fg, mask.shape)
    while a.size:
        pa, pb = parent[a], parent[b]
        keep = pa != pb
        a, b, pa, pb = a[keep], b[keep], pa[keep], pb[keep]
        if not a.size:
            break
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        parent = _compress(parent)
        if tick is not None:
            tick()
    return fg, parent


def largest_component(
    mask: NDArray[np.bool_],
    use_scipy: bool | None = None,
    tick: Callable[[], None] | None = None,
) -> NDArray[np.bool_]:
    """The largest face-connected component of ``mask`` (any dimension), as a new mask.

    Parameters
    ----------
    mask
        Boolean array (e.g. ``[z, y, x]``).
    use_scipy
        ``None``: scipy when installed; ``False``: always the numpy union-find.
    tick
        Called between union-find rounds (progress / cancel hook).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros_like(mask)
    if use_scipy is None:
        use_scipy = have_scipy()
    if use_scipy:
        from scipy import ndimage

        labels, count = ndimage.label(mask)
        if count <= 1:
            return mask.copy()
        sizes = np.bincount(labels.reshape(-1))
        sizes[0] = 0
        return np.asarray(labels == int(np.argmax(sizes)))
    fg, roots = label_roots_numpy(mask, tick)
    sizes = np.bincount(roots)
    keep = fg[roots == int(np.argmax(sizes))]
    out = np.zeros(mask.size, dtype=bool)
    out[keep] = True
    return out.reshape(mask.shape)


def bounding_box(
    mask: NDArray[np.bool_], tick: Callable[[], None] | None = None, chunk: int = 32
) -> tuple[slice, ...] | None:
    """Tight slices around the ``True`` voxels per axis, or ``None`` when empty.

    One pass over ``mask`` in chunks of ``chunk`` planes along axis 0 (``tick`` is called
    between them, a progress / cancel hook): a 512 x 512 x 1000 mask is never scanned as
    one block, so a caller can report progress at least every second.
    """
    if mask.ndim == 0 or mask.shape[0] == 0:
        return None
    first = np.zeros(mask.shape[0], dtype=bool)
    rest = [np.zeros(n, dtype=bool) for n in mask.shape[1:]]
    for start in range(0, mask.shape[0], max(1, chunk)):
        block = mask[start : start + chunk]
        axes = tuple(range(1, mask.ndim))
        first[start : start + block.shape[0]] = block.any(axis=axes) if axes else block
        for axis in range(1, mask.ndim):
            other = tuple(i for i in range(mask.ndim) if i != axis)
            rest[axis - 1] |= block.any(axis=other)
        if tick is not None:
            tick()
    if not first.any():
        return None
    out = []
    for hits in (first, *rest):
        where = np.flatnonzero(hits)
        out.append(slice(int(where[0]), int(where[-1]) + 1))
    return tuple(out)
