"""Lesion components, detection counts and the RECIST-like lesion table."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livgui.core import Geometry, LabelMap, Volume
from livgui.core.lesions import components, lesion_detection, lesion_table
from livgui.core.metrics import case_metrics
from tests.conftest import make_phantom


def _blob(shape, centre, radius) -> np.ndarray:
    z, y, x = np.indices(shape)
    return ((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2) <= radius**2


def test_diagonal_touching_lesions_are_one_with_26_and_two_with_6() -> None:
    m = np.zeros((6, 6, 6), bool)
    m[1:3, 1:3, 1:3] = True
    m[3:5, 3:5, 3:5] = True  # touches the first only at a corner
    assert components(m, 26)[1] == 1
    assert components(m, 6)[1] == 2
    labels = m.astype(np.uint8) * 2
    g = Geometry.from_spacing(m.shape)
    lm = LabelMap(labels, g)
    assert case_metrics(lm, lm, connectivity=6).detection.reference_lesions == 2
    assert len(lesion_table(lm, connectivity=26)) == 1
    with pytest.raises(ValueError, match="6 or 26"):
        components(m, 18)


def test_detection_any_overlap_and_threshold_by_hand() -> None:
    shape = (20, 40, 40)
    ref = (
        _blob(shape, (10, 10, 10), 4)
        | _blob(shape, (10, 30, 30), 4)
        | _blob(shape, (10, 10, 30), 3)
    )
    pred = (
        _blob(shape, (10, 10, 10), 4)  # exact: detected at both levels
        | _blob(shape, (10, 30, 34), 4)  # grazes lesion 2: any-overlap only
        | _blob(shape, (3, 33, 5), 2)  # false positive
    )
    d = lesion_detection(ref, pred)
    assert (d.reference_lesions, d.predicted_lesions) == (3, 3)
    assert d.any_overlap.true_positives == 2 and d.any_overlap.false_negatives == 1
    assert d.any_overlap.false_positives == 1
    assert d.any_overlap.recall == pytest.approx(2 / 3)
    assert d.any_overlap.precision == pytest.approx(2 / 3)
    assert d.at_threshold.true_positives == 1 and d.at_threshold.false_positives == 2
    assert d.at_threshold.recall == pytest.approx(1 / 3)
    assert d.at_threshold.precision == pytest.approx(1 / 3)


def test_lesion_split_by_the_model_still_counts_at_threshold() -> None:
    ref = np.zeros((5, 10, 30), bool)
    ref[1:4, 2:8, 2:28] = True
    pred = ref.copy()
    pred[:, :, [10, 19]] = False  # three pieces of 8 columns out of 26
    d = lesion_detection(ref, pred)
    assert d.predicted_lesions == 3
    assert d.at_threshold.recall == 1.0
    # each piece alone covers < 50 % of the union with the lesion
    assert d.at_threshold.precision == 0.0


def test_ellipse_diameters_within_one_voxel() -> None:
    # Rotated ellipse, semi-axes 30 and 12 pixels, 0.7 mm pixels, on the middle slice.
    yy, xx = np.mgrid[:100, :100]
    th = np.deg2rad(30)
    u = (xx - 50) * np.cos(th) + (yy - 50) * np.sin(th)
    v = -(xx - 50) * np.sin(th) + (yy - 50) * np.cos(th)
    labels = np.zeros((5, 100, 100), np.uint8)
    labels[2][(u / 30) ** 2 + (v / 12) ** 2 <= 1] = 2
    labels[1][(u / 20) ** 2 + (v / 8) ** 2 <= 1] = 2  # smaller slice above: not measured
    g = Geometry.from_spacing(labels.shape, (3.0, 0.7, 0.7))
    (lesion,) = lesion_table(LabelMap(labels, g))
    assert lesion.axial_slice == 2
    assert lesion.longest_axial_diameter_mm == pytest.approx(60 * 0.7, abs=0.7)
    assert lesion.perpendicular_diameter_mm == pytest.approx(24 * 0.7, abs=0.7)


def test_anisotropic_pixels_measure_in_mm() -> None:
    labels = np.zeros((1, 20, 40), np.uint8)
    labels[0, 5:15, 5:35] = 2  # 10 rows x 30 columns
    g = Geometry.from_spacing(labels.shape, (5.0, 2.0, 0.5))
    (lesion,) = lesion_table(LabelMap(labels, g))
    # 10 rows of 2 mm = 20 mm; 30 columns of 0.5 mm = 15 mm: the long axis is y.
    diagonal = np.hypot(20.0, 15.0)
    assert lesion.longest_axial_diameter_mm == pytest.approx(diagonal, abs=2.0)
    assert lesion.longest_axial_diameter_mm > 20.0


def test_table_volume_hu_centroid_bbox_and_order() -> None:
    vol, labels = make_phantom()
    table = lesion_table(labels, vol)
    assert len(table) == 2
    assert table[0].volume_ml >= table[1].volume_ml and [t.id for t in table] == [1, 2]
    for les in table:
        assert 20.0 < les.mean_hu < 60.0  # lesions are ~40 HU in the phantom
        z0, y0, x0, z1, y1, x1 = les.bbox_zyx
        cz, cy, cx = les.centroid_zyx
        assert z0 <= cz < z1 and y0 <= cy < y1 and x0 <= cx < x1
        world = labels.geometry.index_to_world(np.array(les.centroid_zyx))
        assert np.allclose(world, les.centroid_lps_mm)
        assert les.voxels * labels.geometry.voxel_volume_ml == pytest.approx(les.volume_ml)
        json.dumps(les.to_json(), allow_nan=False)


def test_table_without_lesions_and_grid_mismatch() -> None:
    g = Geometry.from_spacing((4, 4, 4))
    assert lesion_table(LabelMap(np.ones((4, 4, 4), np.uint8), g)) == []
    other = Volume(np.zeros((4, 4, 5), np.int16), Geometry.from_spacing((4, 4, 5)))
    with pytest.raises(ValueError, match="different grids"):
        lesion_table(LabelMap(np.full((4, 4, 4), 2, np.uint8), g), other)


def test_bbox_centroid_and_slice_are_absolute_grid_positions() -> None:
    labels = np.zeros((20, 30, 40), np.uint8)
    labels[5:9, 10:13, 20:30] = 2  # 4 x 3 x 10 block
    labels[15, 2, 2] = 2  # a one-voxel lesion far away
    g = Geometry.from_spacing(labels.shape, (2.0, 1.0, 0.5), origin_lps=(10.0, 20.0, 30.0))
    big, small = lesion_table(LabelMap(labels, g))
    assert big.bbox_zyx == (5, 10, 20, 9, 13, 30)
    assert big.centroid_zyx == (6.5, 11.0, 24.5)
    assert big.centroid_lps_mm == (10.0 + 24.5 * 0.5, 20.0 + 11.0, 30.0 + 6.5 * 2.0)
    assert 5 <= big.axial_slice < 9
    assert small.bbox_zyx == (15, 2, 2, 16, 3, 3) and small.axial_slice == 15
    assert small.voxels == 1 and small.volume_ml == pytest.approx(0.001)
