"""Each editing tool on small synthetic masks: what a radiologist clicking would expect."""

from __future__ import annotations

import numpy as np
import pytest

from livgui.core import Geometry
from livgui.core.editing import (
    BrushOptions,
    Edit,
    PlanePoint,
    brush,
    flood_fill_2d,
    polygon_fill,
    rasterize_polygon,
    step_name,
    stroke_points,
    threshold_fill,
)

GEOM = Geometry.from_spacing((10, 40, 40), (2.0, 0.5, 1.0))  # z, y, x mm


def empty() -> np.ndarray:
    return np.zeros(GEOM.shape, np.uint8)


def test_brush_disc_is_an_ellipse_in_voxels_under_anisotropic_spacing() -> None:
    labels = empty()
    edit = brush(labels, GEOM, PlanePoint("axial", 5, 20, 20), BrushOptions(size_mm=8.0))
    painted = np.argwhere(labels == 1)
    assert set(painted[:, 0]) == {5}  # a disc stays in its slice
    # radius 4 mm: 8 voxels along y (0.5 mm), 4 voxels along x (1 mm)
    assert painted[:, 1].min() == 12 and painted[:, 1].max() == 28
    assert painted[:, 2].min() == 16 and painted[:, 2].max() == 24
    assert edit.changed == len(painted)
    assert edit.shape == (1, 17, 9)  # the delta is the bounding box, not the volume


def test_brush_sphere_spans_slices_and_tiny_brush_paints_the_voxel_under_the_cursor() -> None:
    labels = empty()
    brush(labels, GEOM, PlanePoint("coronal", 20, 5, 20), BrushOptions(size_mm=8.0, sphere=True))
    assert set(np.argwhere(labels == 1)[:, 0]) == {3, 4, 5, 6, 7}  # 4 mm / 2 mm per slice
    labels2 = empty()
    brush(labels2, GEOM, PlanePoint("sagittal", 3, 4, 7), BrushOptions(size_mm=0.1))
    assert np.argwhere(labels2).tolist() == [[4, 7, 3]]  # sagittal: (row, col) = (z, y)


def test_eraser_semantics_lesion_gives_liver_back_liver_clears_both() -> None:
    labels = empty()
    labels[5, 10:30, 10:30] = 1
    labels[5, 15:25, 15:25] = 2
    at = PlanePoint("axial", 5, 20, 20)
    brush(labels, GEOM, at, BrushOptions(size_mm=40.0, label=2, erase=True))
    assert not (labels == 2).any() and (labels[5, 15:25, 15:25] == 1).all()
    labels[5, 15:25, 15:25] = 2
    brush(labels, GEOM, at, BrushOptions(size_mm=4.0, label=1, erase=True))
    assert labels[5, 20, 20] == 0 and labels[5, 16, 16] == 2  # cleared only under the brush


def test_painting_liver_keeps_lesion_and_painting_lesion_works_outside_liver() -> None:
    labels = empty()
    labels[5, 20, 20] = 2
    brush(labels, GEOM, PlanePoint("axial", 5, 20, 20), BrushOptions(size_mm=3.0, label=1))
    assert labels[5, 20, 20] == 2 and labels[5, 20, 21] == 1
    brush(labels, GEOM, PlanePoint("axial", 5, 2, 2), BrushOptions(size_mm=1.0, label=2))
    assert labels[5, 2, 2] == 2


def test_hu_limited_brush_paints_only_inside_the_range() -> None:
    labels, hu = empty(), np.full(GEOM.shape, -100, np.int16)
    hu[:, :, 20:] = 80
    opts = BrushOptions(size_mm=20.0, hu_range=(40.0, 200.0))
    brush(labels, GEOM, PlanePoint("axial", 5, 20, 20), opts, hu=hu)
    assert labels[5, 20, 25] == 1 and labels[5, 20, 15] == 0
    assert (labels[hu < 40] == 0).all()
    with pytest.raises(ValueError, match="HU range needs the CT"):
        brush(labels, GEOM, PlanePoint("axial", 5, 20, 20), opts)


def test_edit_undo_redo_round_trip_and_out_of_volume_dab_is_empty() -> None:
    labels = empty()
    edit = brush(labels, GEOM, PlanePoint("axial", 5, 39, 39), BrushOptions(size_mm=6.0))
    after = labels.copy()
    edit.revert(labels)
    assert not labels.any()
    edit.apply(labels)
    assert np.array_equal(labels, after)
    assert brush(labels, GEOM, PlanePoint("axial", 5, 60, 60), BrushOptions()).is_empty


def test_sparse_and_dense_edit_forms_are_chosen_by_size() -> None:
    old = np.zeros((1, 50, 50), np.uint8)
    new = old.copy()
    new[0, 0, 0] = new[0, 49, 49] = 1  # two voxels far apart: sparse is smaller
    sparse = Edit.from_boxes((0, 0, 0), old, new)
    assert sparse.form == "sparse" and sparse.nbytes == 12
    two = new.copy()
    new[0, 10:40, 10:40] = 2
    dense = Edit.from_boxes((0, 0, 0), old, new)
    assert dense.form == "dense" and dense.changed == 902
    for e, expected in ((sparse, two), (dense, new)):
        target = old.copy()
        e.apply(target)
        assert np.array_equal(target, expected)


def test_stroke_points_fill_gaps_of_a_fast_drag() -> None:
    a, b = PlanePoint("axial", 5, 0, 0), PlanePoint("axial", 5, 0, 30)
    pts = stroke_points(a, b, GEOM, size_mm=4.0)
    assert pts[-1] == b and len(pts) == 30  # 30 mm at most 1 mm apart
    labels = empty()
    for p in [a, *pts]:
        brush(labels, GEOM, p, BrushOptions(size_mm=4.0))
    assert labels[5, 0, 0:31].all()


def test_flood_fill_fills_a_hole_in_the_plane_only() -> None:
    labels = empty()
    labels[:, 10:30, 10:30] = 1
    labels[:, 15:25, 15:25] = 0  # a hole in every slice
    edit = flood_fill_2d(labels, PlanePoint("axial", 4, 20, 20), label=1)
    assert (labels[4, 10:30, 10:30] == 1).all()
    assert (labels[3, 15:25, 15:25] == 0).all()
    assert edit.changed == 100 and labels[4, 0, 0] == 0


def test_flood_erase_removes_the_connected_lesion_in_the_slice() -> None:
    labels = empty()
    labels[2, 10:30, 10:30] = 1
    labels[2, 12:15, 12:15] = 2
    labels[2, 20:23, 20:23] = 2
    flood_fill_2d(labels, PlanePoint("axial", 2, 13, 13), label=2, erase=True)
    assert labels[2, 13, 13] == 1 and labels[2, 21, 21] == 2


def test_threshold_fill_2d_and_3d() -> None:
    labels, hu = empty(), np.zeros(GEOM.shape, np.int16)
    hu[2:6, 5:15, 5:15] = 100
    hu[2:6, 25:35, 25:35] = 100  # a second, disconnected blob
    at = PlanePoint("axial", 3, 10, 10)
    threshold_fill(labels, hu, at, (50.0, 150.0), label=1)
    assert labels.sum() == 100 and (labels[3, 5:15, 5:15] == 1).all()
    labels[:] = 0
    threshold_fill(labels, hu, at, (50.0, 150.0), label=2, three_d=True)
    assert (labels[2:6, 5:15, 5:15] == 2).all() and labels.sum() == 2 * 400
    assert threshold_fill(labels, hu, PlanePoint("axial", 0, 0, 0), (50.0, 150.0), 1).is_empty


def test_rasterize_polygon_square_and_rules() -> None:
    square = [(2, 2), (2, 7), (7, 7), (7, 2)]
    inside = rasterize_polygon(square, (10, 10))
    assert inside.sum() == 36 and inside[2:8, 2:8].all()  # centres on the outline count
    # a loop traced twice: even-odd makes it empty, nonzero keeps it filled
    twice = square + square
    assert rasterize_polygon(twice, (10, 10), "nonzero").sum() == 36
    star = [(0, 5), (9, 8), (3, 0), (3, 10), (9, 2)]  # pentagram
    eo = rasterize_polygon(star, (12, 12), "even-odd")
    nz = rasterize_polygon(star, (12, 12), "nonzero")
    assert not eo[5, 5] and nz[5, 5]  # the centre pentagon is a hole only for even-odd


def test_polygon_fill_and_cut_on_coronal_plane() -> None:
    labels = empty()
    tri = [(1, 5), (8, 5), (8, 30)]  # (row, col) = (z, x) on a coronal slice
    polygon_fill(labels, "coronal", 12, tri, label=2)
    assert labels[5, 12, 10] == 2 and labels[5, 11, 10] == 0 and labels[2, 12, 25] == 0
    polygon_fill(labels, "coronal", 12, [(0, 0), (0, 39), (9, 39), (9, 0)], label=2, erase=True)
    assert labels.max() == 1  # the cut gave liver back


def test_step_names_for_the_history_list() -> None:
    at = PlanePoint("axial", 84, 1, 1)
    assert step_name("Brush", 2, at, 6.0) == "Brush 6 mm on lesion, axial 84"
    assert step_name("Keep largest", 1) == "Keep largest on liver"
