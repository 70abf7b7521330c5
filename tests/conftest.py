"""Shared fixtures: synthetic volume factories and the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from livgui.core import Geometry, LabelMap, Volume

#: Real CT shared beside the checkout (never copied into the repository).
SHARED_DATA = Path(
    os.environ.get(
        "LIVGUI_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test cleanly when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder absent: {SHARED_DATA}")
    return SHARED_DATA


def make_phantom(
    shape: tuple[int, int, int] = (24, 64, 64),
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.8),
    seed: int = 0,
) -> tuple[Volume, LabelMap]:
    """A body ellipse (~40 HU fat/muscle), a liver blob (~100 HU) with two lesions (~40 HU).

    The liver sits on the patient's right (low x in memory), anterior-ish, so orientation
    mistakes are visible.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float32)
    nz, ny, nx = shape
    hu = np.full(shape, -1000.0, dtype=np.float32)
    body = ((y - ny / 2) / (ny * 0.42)) ** 2 + ((x - nx / 2) / (nx * 0.45)) ** 2 < 1
    hu[body] = 30.0
    liver = (
        ((z - nz * 0.55) / (nz * 0.35)) ** 2
        + ((y - ny * 0.45) / (ny * 0.22)) ** 2
        + ((x - nx * 0.32) / (nx * 0.18)) ** 2
    ) < 1
    hu[liver] = 100.0
    les1 = ((z - nz * 0.55) / 3) ** 2 + ((y - ny * 0.45) / 4) ** 2 + ((x - nx * 0.30) / 4) ** 2 < 1
    les2 = ((z - nz * 0.7) / 2) ** 2 + ((y - ny * 0.38) / 2.5) ** 2 + (
        (x - nx * 0.38) / 2.5
    ) ** 2 < 1
    les1 &= liver
    les2 &= liver
    hu[les1 | les2] = 40.0
    hu += rng.normal(0, 5, size=shape).astype(np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[liver] = 1
    labels[les1 | les2] = 2
    geom = Geometry.from_spacing(shape, spacing, origin_lps=(-100.0, -80.0, 50.0))
    vol = Volume(np.round(hu).astype(np.int16), geom, name="phantom")
    return vol, LabelMap(labels, geom, name="reference")


@pytest.fixture
def phantom() -> tuple[Volume, LabelMap]:
    return make_phantom()
