"""Turning one visible slice into display pixels: greyscale window and label overlays.

Only the visible slice is ever touched.  Window/level is a lookup table indexed by the raw
slice values (65,536 entries for 16-bit data), labels go through a 256-entry RGBA table,
and rendered overlay slices are kept in a small per-layer LRU cache so scrolling back and
forth costs nothing.  Pure numpy: the view wraps the arrays in QImages.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livgui.core.session import LabelLayer

__all__ = [
    "LABEL_COLOURS",
    "GreyMapper",
    "OverlayCache",
    "label_lut",
    "outline",
]

#: RGB per layer kind and label (1 liver, 2 lesion).  Chosen so that liver and lesion
#: differ in hue and lightness, and reference / prediction / correction differ from each
#: other (green-yellow, blue-magenta, orange-red), all readable on grey CT.
LABEL_COLOURS: dict[str, dict[int, tuple[int, int, int]]] = {
    "reference": {1: (40, 200, 90), 2: (255, 225, 0)},
    "prediction": {1: (50, 140, 255), 2: (255, 60, 220)},
    "correction": {1: (255, 140, 0), 2: (230, 20, 40)},
}
_OTHER_LABEL = (200, 200, 200)  # any unexpected label value


def label_lut(kind: str, opacity: float, style: str) -> NDArray[np.uint32]:
    """256-entry table of premultiplied ARGB32 pixels (as uint32) for one layer."""
    colours = LABEL_COLOURS.get(kind, LABEL_COLOURS["reference"])
    if style == "outline":
        alpha = float(np.clip(0.4 + opacity, 0.0, 1.0))
        alphas = {1: alpha, 2: alpha}
    else:
        # lesions a little more opaque than liver so they stay visible inside it
        alphas = {1: opacity, 2: float(np.clip(opacity * 1.4, 0.0, 1.0))}
    lut = np.zeros(256, dtype=np.uint32)
    for value in range(1, 256):
        r, g, b = colours.get(value, _OTHER_LABEL)
        a = alphas.get(value, opacity)
        pr, pg, pb, pa = (round(c * a) for c in (r, g, b, 255))
        lut[value] = (pa << 24) | (pr << 16) | (pg << 8) | pb
    return lut


def outline(labels2d: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Keep only the label pixels that touch a different label (4-neighbourhood)."""
    edge = np.zeros(labels2d.shape, dtype=bool)
    d = labels2d[1:, :] != labels2d[:-1, :]
    edge[1:, :] |= d
    edge[:-1, :] |= d
    d = labels2d[:, 1:] != labels2d[:, :-1]
    edge[:, 1:] |= d
    edge[:, :-1] |= d
    edge[0, :] = edge[-1, :] = True
    edge[:, 0] = edge[:, -1] = True
    return np.where(edge, labels2d, np.uint8(0))


_GREY32: NDArray[np.uint32] = (np.arange(256, dtype=np.uint32) * np.uint32(0x010101)) | np.uint32(
    0xFF000000
)


class GreyMapper:
    """Window/level for one volume's dtype: raw slice -> contiguous RGB32 grey image.

    16-bit and 8-bit integer data use a lookup table straight to 32-bit grey pixels (one
    ``take`` per slice; RGB32 is the format Qt's raster engine scales fastest, about 5x
    faster than 8-bit grey); other dtypes are scaled in float32 with NaN shown black.
    """

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = np.dtype(dtype)
        self._lut: NDArray[np.uint32] | None = None
        self._view: np.dtype[Any] | None = None
        self.low = 0.0
        self.high = 1.0
        if self.dtype.kind in "iu" and self.dtype.itemsize <= 2:
            self._view = np.dtype(f"u{self.dtype.itemsize}")

    def set_window(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(max(high, low + 1e-3))
        if self._view is None:
            return
        n = 1 << (8 * self.dtype.itemsize)
        values = np.arange(n, dtype=self._view).view(self.dtype).astype(np.float32)
        grey = np.clip(np.rint((values - self.low) * (255.0 / (self.high - self.low))), 0, 255)
        self._lut = _GREY32.take(grey.astype(np.uint8))

    def apply(self, plane: NDArray[Any]) -> NDArray[np.uint32]:
        """RGB32 pixels (``0xFFgggggg``) of a 2-D slice, C-contiguous."""
        if self._lut is not None and self._view is not None:
            return self._lut.take(plane.view(self._view))
        scale = np.float32(255.0 / (self.high - self.low))
        out = (plane.astype(np.float32) - np.float32(self.low)) * scale
        np.clip(out, 0, 255, out=out)
        out[~np.isfinite(out)] = 0
        return _GREY32.take(out.astype(np.uint8))


class OverlayCache:
    """Rendered ARGB32 slices of one layer, least recently used dropped first.

    The key holds the layer's data version and display state, so any edit or style
    change simply misses the cache.  ``None`` is cached for empty slices (nothing drawn).
    """

    def __init__(self, capacity: int = 12) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[Any, ...], NDArray[np.uint32] | None] = OrderedDict()
        self._lut_key: tuple[Any, ...] | None = None
        self._lut: NDArray[np.uint32] | None = None

    def clear(self) -> None:
        self._items.clear()

    def render(
        self, layer: LabelLayer, plane2d: NDArray[np.uint8], key: tuple[Any, ...]
    ) -> NDArray[np.uint32] | None:
        """ARGB32 image (rows, cols) of ``plane2d`` for ``layer``; ``None`` when empty."""
        full_key = (*key, layer.version, layer.style, round(layer.opacity, 3), layer.kind)
        if full_key in self._items:
            self._items.move_to_end(full_key)
            return self._items[full_key]
        image = self._render(layer, plane2d)
        self._items[full_key] = image
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return image

    def _render(self, layer: LabelLayer, plane2d: NDArray[np.uint8]) -> NDArray[np.uint32] | None:
        # one contiguous copy first: a sagittal slice is a strided gather, and any() plus
        # take() on the strided view would each walk it again (about 2x slower)
        plane2d = np.ascontiguousarray(plane2d)
        if not plane2d.any():
            return None
        lut_key = (layer.kind, round(layer.opacity, 3), layer.style)
        if lut_key != self._lut_key or self._lut is None:
            self._lut = label_lut(layer.kind, layer.opacity, layer.style)
            self._lut_key = lut_key
        values = outline(plane2d) if layer.style == "outline" else plane2d
        return self._lut.take(values)
