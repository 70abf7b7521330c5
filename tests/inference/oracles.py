"""Oracle bundles and the numpy reference they must agree with (shared by tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from livgui.core import Geometry, Volume
from livgui.models.bundle import Bundle
from livgui.models.oracle import oracle_bundle
from livgui.models.preprocess import Preprocessing
from livgui.models.store import ModelStore

BODY_HU = -200.0  # stage 1 oracle: "body above -200 HU"
BONE_HU = 300.0  # stage 2 oracle: "bone above 300 HU" inside the body

LIVER_PREP = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=(48, 40))
LESION_PREP = Preprocessing(hu_window=(-500.0, 1500.0), target_size=None)


def install_oracles(
    store: ModelStore,
    liver_prep: Preprocessing = LIVER_PREP,
    lesion_prep: Preprocessing = LESION_PREP,
) -> tuple[Bundle, Bundle, Bundle]:
    """Install liver, lesion and one-stage oracles into ``store``; returns the bundles."""
    out = []
    for name, stage, thr, prep in (
        ("oracle-liver", "liver", (BODY_HU,), liver_prep),
        ("oracle-lesion", "lesion", (BONE_HU,), lesion_prep),
        ("oracle-onestage", "onestage", (BODY_HU, BONE_HU), lesion_prep),
    ):
        bundle, model = oracle_bundle(name, stage, thr, prep)
        out.append(store.install(bundle, model))
    return out[0], out[1], out[2]


def temp_store(root: Path) -> ModelStore:
    return ModelStore(user=root / "user", bundled=root / "bundled")


def reference(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the oracle cascade must produce, computed on the original grid."""
    body = largest_6_connected(hu > BODY_HU)
    bone = (hu > BONE_HU) & body
    return body, bone


def largest_6_connected(mask: np.ndarray) -> np.ndarray:
    """Written with scipy directly so the reference never shares code with the cascade."""
    labels, n = ndimage.label(mask)  # default structure: face (6-) connectivity
    if n == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.count_nonzero(a & b)) / s


def synthetic_ct(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Volume:
    """Body ellipse (40 HU) with an off-centre "spine" (700 HU) posterior-left, a
    right-anterior "rib" (500 HU) and a separate "table" (0 HU) that the largest-component
    step must drop; lungs (-800 HU) make holes.  Distances are in mm, so the anatomy keeps
    its size whatever the spacing."""
    nz, ny, nx = shape
    z, y, x = np.meshgrid(
        np.arange(nz) * spacing[0],
        np.arange(ny) * spacing[1],
        np.arange(nx) * spacing[2],
        indexing="ij",
    )
    cz, cy, cx = nz * spacing[0] / 2, ny * spacing[1] / 2, nx * spacing[2] / 2
    ry, rx = ny * spacing[1] * 0.33, nx * spacing[2] * 0.42
    hu = np.full(shape, -1000.0, dtype=np.float32)
    body = ((y - cy * 0.9) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
    hu[body] = 40.0
    lung = (((y - cy * 0.8) / (ry * 0.35)) ** 2 + ((x - cx * 0.6) / (rx * 0.25)) ** 2 < 1) & (
        z > cz
    )
    hu[lung] = -800.0
    spine = ((y - (cy * 0.9 + ry * 0.6)) / (ry * 0.22)) ** 2 + (
        (x - cx * 1.1) / (rx * 0.18)
    ) ** 2 < 1
    hu[spine & body] = 700.0
    rib = ((y - (cy * 0.9 - ry * 0.5)) / (ry * 0.15)) ** 2 + (
        (x - cx * 0.55) / (rx * 0.12)
    ) ** 2 < 1
    hu[rib & body & (z < cz * 1.2)] = 500.0
    table = (y > ny * spacing[1] * 0.92) & (y < ny * spacing[1] * 0.97)
    hu[table] = 0.0
    geom = Geometry.from_spacing(shape, spacing, origin_lps=(-120.0, -90.0, 30.0))
    return Volume(np.round(hu).astype(np.int16), geom, name="synthetic")
