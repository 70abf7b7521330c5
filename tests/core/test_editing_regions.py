"""Components, interpolation between key slices, accepting a prediction, correction effort."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from livgui.core import Geometry
from livgui.core.editing import (
    History,
    accept_prediction,
    active_edit_time,
    correction_effort,
    interpolate_slices,
    keep_largest,
    remove_island,
    remove_small,
    touched_mask,
)

GEOM = Geometry.from_spacing((12, 30, 30), (2.0, 1.0, 1.0))


def islands() -> np.ndarray:
    labels = np.zeros(GEOM.shape, np.uint8)
    labels[2:8, 2:20, 2:20] = 1  # big liver block (1944 voxels)
    labels[4, 8:10, 8:10] = 2  # lesion inside it
    labels[10, 25, 25] = 1  # a 1-voxel island
    labels[9, 24, 24] = 1  # touches the previous one diagonally only (26-connected)
    labels[1, 27:29, 2:4] = 1  # a 4-voxel island
    return labels


def test_remove_island_under_cursor_uses_26_connectivity() -> None:
    labels = islands()
    edit = remove_island(labels, (10, 25, 25), label=1)
    assert edit.changed == 2 and labels[9, 24, 24] == 0
    assert remove_island(labels, (0, 0, 0), label=1).is_empty


def test_remove_lesion_island_gives_liver_back() -> None:
    labels = islands()
    remove_island(labels, (4, 8, 8), label=2)
    assert labels[4, 8, 8] == 1 and not (labels == 2).any()


def test_keep_largest_and_remove_small_by_millilitres() -> None:
    labels = islands()
    keep_largest(labels, label=1)
    assert labels[10, 25, 25] == 0 and labels[1, 27, 2] == 0 and labels[4, 8, 8] == 2
    labels = islands()
    # voxel = 2 ul; the 2-voxel island is 0.004 ml, the 4-voxel one 0.008 ml
    remove_small(labels, GEOM, label=1, min_ml=0.006)
    assert labels[10, 25, 25] == 0 and labels[1, 27, 2] == 1 and labels[3, 3, 3] == 1


def test_interpolation_between_two_discs_grows_linearly() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    yy, xx = np.mgrid[0:30, 0:30]
    labels[0][(yy - 15) ** 2 + (xx - 15) ** 2 <= 4**2] = 1
    labels[10][(yy - 15) ** 2 + (xx - 15) ** 2 <= 12**2] = 1
    edit = interpolate_slices(labels, GEOM, "axial", [0, 10], label=1)
    radii = [np.sqrt(labels[k].sum() / np.pi) for k in range(11)]
    assert all(a <= b for a, b in itertools.pairwise(radii))
    assert radii[2] > radii[0] and radii[8] < radii[10]
    assert radii[5] == pytest.approx((radii[0] + radii[10]) / 2, abs=0.5)  # half way
    assert edit.origin[0] == 1 and edit.shape[0] == 9  # only the gap slices changed


def test_interpolation_moves_a_shape_on_the_sagittal_plane_and_only_adds() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    labels[2:5, 2:6, 4] = 1  # sagittal slice x=4: (row, col) = (z, y)
    labels[2:5, 5:9, 10] = 1  # x=10, shifted along y (overlapping: shapes morph, not jump)
    labels[0, 0, 7] = 2  # existing unrelated lesion in the gap stays
    interpolate_slices(labels, GEOM, "sagittal", [4, 10], label=1)
    centre_y = [np.argwhere(labels[:, :, x] == 1)[:, 1].mean() for x in range(4, 11)]
    assert all(a <= b for a, b in itertools.pairwise(centre_y))
    assert centre_y[0] < centre_y[3] < centre_y[6]
    assert labels[0, 0, 7] == 2
    with pytest.raises(ValueError, match="two edited key slices"):
        interpolate_slices(labels, GEOM, "axial", [3], label=1)


def test_accept_whole_prediction_keeps_manual_edits_unless_overwritten() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    hist = History(labels)
    hist.begin_step("manual")
    labels_before = labels.copy()
    labels[5, 5:10, 5:10] = 2
    from livgui.core.editing import Edit

    hist.add(Edit.from_boxes((0, 0, 0), labels_before, labels.copy()))
    hist.end_step()
    prediction = np.zeros(GEOM.shape, np.uint8)
    prediction[3:8, 3:20, 3:20] = 1
    protect = touched_mask((s.edit for s in hist.steps()), GEOM.shape)
    result = accept_prediction(labels, prediction, protect=protect)
    assert result.kept_manual == 25 and (labels[5, 5:10, 5:10] == 2).all()
    assert labels[3, 3, 3] == 1
    hist.commit("Accept prediction", result.edit)
    hist.undo()
    assert (labels == 0).sum() == labels.size - 25  # back to the manual edit only
    forced = accept_prediction(labels, prediction, protect=protect, overwrite=True)
    assert forced.kept_manual == 0 and np.array_equal(labels, prediction)


def test_accept_one_lesion_by_clicking_it() -> None:
    labels = np.zeros(GEOM.shape, np.uint8)
    prediction = np.zeros(GEOM.shape, np.uint8)
    prediction[2:8, 2:20, 2:20] = 1
    prediction[3:5, 4:6, 4:6] = 2
    prediction[6, 15:17, 15:17] = 2
    result = accept_prediction(labels, prediction, lesion_at=(3, 4, 4))
    assert result.edit.changed == 8 and labels.sum() == 16 and labels[6, 15, 15] == 0
    with pytest.raises(ValueError, match="no predicted lesion"):
        accept_prediction(labels, prediction, lesion_at=(0, 0, 0))


def test_correction_effort_dice_changed_voxels_and_active_time() -> None:
    original = np.zeros(GEOM.shape, np.uint8)
    original[2:6, 5:15, 5:15] = 1  # 400 voxels
    final = original.copy()
    final[2:6, 5:15, 14] = 0  # removed 40
    final[3, 6, 6] = 2
    effort = correction_effort(original, final, GEOM.voxel_volume_ml, [(0.0, 2.0), (100.0, 3.0)])
    assert effort["changed_voxels"] == 41 and effort["removed_voxels"] == 40
    assert effort["dice_liver"] == pytest.approx(2 * 360 / 760)
    assert effort["dice_lesion"] == 0.0
    assert effort["active_edit_s"] == pytest.approx(2.0 + 30.0 + 3.0)  # idle gap capped
    assert effort["changed_ml"] == pytest.approx(41 * 0.002)
    import json

    json.dumps(effort)  # JSON-safe
    assert active_edit_time([(0.0, 5.0), (1.0, 2.0), (4.0, 3.0)]) == pytest.approx(7.0)
