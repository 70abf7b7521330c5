"""Per-case metrics: values a reviewer can check by hand, conventions, JSON safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livgui.core import Geometry, LabelMap
from livgui.core.metrics import case_metrics, study_slice_metrics
from livgui.core.progress import Cancelled, CancelToken
from livgui.core.surface import surface_distances, surface_mask
from tests.conftest import make_phantom


def _maps(ref: np.ndarray, pred: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> tuple[LabelMap, LabelMap]:
    g = Geometry.from_spacing(ref.shape, spacing)
    return LabelMap(ref.astype(np.uint8), g, "ref"), LabelMap(pred.astype(np.uint8), g, "pred")


def _cube(shape=(20, 30, 30), lo=5, size=10, shift=(0, 0, 0), label=1) -> np.ndarray:
    a = np.zeros(shape, np.uint8)
    z, y, x = (lo + s for s in shift)
    a[z : z + size, y : y + size, x : x + size] = label
    return a


def _brute_force(a: np.ndarray, b: np.ndarray, spacing) -> tuple[float, float, float]:
    """Independent oracle: all pairwise distances between the surface voxels."""
    pa = np.argwhere(surface_mask(a)) * np.asarray(spacing)
    pb = np.argwhere(surface_mask(b)) * np.asarray(spacing)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    d_ab, d_ba = d.min(axis=1), d.min(axis=0)
    hd95 = max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))
    assd = (d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size)
    return float(hd95), float(assd), float(max(d_ab.max(), d_ba.max()))


def test_identical_masks_are_perfect() -> None:
    ref, pred = _maps(_cube(), _cube())
    m = case_metrics(ref, pred)
    assert m.liver.dice == 1.0 and m.liver.iou == 1.0
    assert m.liver.hd95_mm == 0.0 and m.liver.assd_mm == 0.0
    assert m.mean_iou == 1.0


def test_shifted_cube_dice_iou_and_volumes_by_hand() -> None:
    # 10^3 cubes shifted 2 voxels in x overlap in 8*10*10 = 800 voxels.
    ref, pred = _maps(_cube(), _cube(shift=(0, 0, 2)), spacing=(2.0, 1.0, 0.5))
    m = case_metrics(ref, pred)
    assert m.liver.dice == pytest.approx(1600 / 2000)
    assert m.liver.iou == pytest.approx(800 / 1200)
    assert m.liver.reference_ml == pytest.approx(1000 * 2.0 * 1.0 * 0.5 / 1000)
    assert m.liver.hausdorff_mm == pytest.approx(2 * 0.5)  # two voxels of 0.5 mm in x


def test_single_voxel_distances_follow_the_spacing_of_the_shift_axis() -> None:
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros((10, 10, 10), bool)
    a[2, 2, 2] = True
    b[2, 2, 5] = True  # 3 voxels apart along x
    for spacing, expected in (((1, 1, 1), 3.0), ((5.0, 1, 0.8), 2.4), ((0.8, 7.0, 2.0), 6.0)):
        d = surface_distances(a, b, spacing)
        assert d.hd95_mm == pytest.approx(expected)
        assert d.assd_mm == pytest.approx(expected)


def test_anisotropic_spacing_scales_hd_along_z_only() -> None:
    ref = _cube()
    shifted = _cube(shift=(1, 0, 0))
    iso = case_metrics(*_maps(ref, shifted, (1.0, 1.0, 1.0))).liver
    thick = case_metrics(*_maps(ref, shifted, (5.0, 1.0, 1.0))).liver
    assert iso.hausdorff_mm == pytest.approx(1.0)
    assert thick.hausdorff_mm == pytest.approx(5.0)
    assert thick.hd95_mm is not None and iso.hd95_mm is not None
    assert thick.hd95_mm > iso.hd95_mm
    # a shift in x is blind to the slice thickness
    xs = case_metrics(*_maps(ref, _cube(shift=(0, 0, 1)), (5.0, 1.0, 1.0))).liver
    assert xs.hausdorff_mm == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surface_distances_match_a_brute_force_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((12, 16, 16))
    c1, c2 = rng.uniform(5, 10, 3), rng.uniform(5, 10, 3)
    a = ((z - c1[0]) / 4) ** 2 + ((y - c1[1]) / 5) ** 2 + ((x - c1[2]) / 3) ** 2 < 1
    b = ((z - c2[0]) / 3) ** 2 + ((y - c2[1]) / 4) ** 2 + ((x - c2[2]) / 5) ** 2 < 1
    spacing = (2.5, 0.7, 0.9)
    got = surface_distances(a, b, spacing)
    hd95, assd, hd = _brute_force(a, b, spacing)
    assert got.hd95_mm == pytest.approx(hd95)
    assert got.assd_mm == pytest.approx(assd)
    assert got.max_mm == pytest.approx(hd)


def test_empty_mask_conventions() -> None:
    empty = np.zeros((8, 8, 8), np.uint8)
    both = case_metrics(*_maps(empty, empty))
    assert both.liver.dice == 1.0 and both.liver.note == "both empty"
    assert both.liver.hd95_mm is None and both.liver.assd_mm is None
    assert both.detection.any_overlap.recall is None
    assert both.detection.any_overlap.precision is None
    assert both.classes_present == ("background",) and both.mean_iou == 1.0

    one = _cube((8, 8, 8), 2, 3)
    missed = case_metrics(*_maps(one, empty))
    assert missed.liver.dice == 0.0 and missed.liver.iou == 0.0
    assert missed.liver.note == "prediction empty"
    assert missed.liver.hd95_mm is None
    extra = case_metrics(*_maps(empty, _cube((8, 8, 8), 2, 3, label=2)))
    assert extra.lesion.note == "reference empty"
    assert extra.detection.any_overlap.recall is None
    assert extra.detection.any_overlap.precision == 0.0
    assert extra.detection.any_overlap.false_positives == 1


def test_json_has_no_nan_even_for_empty_masks() -> None:
    empty = np.zeros((6, 6, 6), np.uint8)
    for ref, pred in ((empty, empty), (_cube((6, 6, 6), 1, 3), empty)):
        doc = case_metrics(*_maps(ref, pred)).to_json()
        text = json.dumps(doc, allow_nan=False)
        assert "conventions" in doc and "research use only" in text
        json.dumps(study_slice_metrics(*_maps(ref, pred)), allow_nan=False)


def test_different_grids_are_refused_naming_both() -> None:
    a = LabelMap(np.zeros((4, 5, 6), np.uint8), Geometry.from_spacing((4, 5, 6)), "ref")
    b = LabelMap(np.zeros((4, 5, 7), np.uint8), Geometry.from_spacing((4, 5, 7)), "pred")
    with pytest.raises(ValueError, match=r"shape=\(4, 5, 6\).*shape=\(4, 5, 7\)"):
        case_metrics(a, b)
    c = LabelMap(np.zeros((4, 5, 6), np.uint8), Geometry.from_spacing((4, 5, 6), (2, 1, 1)))
    with pytest.raises(ValueError, match="spacing"):
        case_metrics(a, c)


def test_class_iou_and_mean_over_present_classes() -> None:
    ref = _cube()
    ref[8:11, 8:11, 8:11] = 2
    pred = ref.copy()
    pred[pred == 2] = 1  # lesion missed, liver perfect
    m = case_metrics(*_maps(ref, pred))
    ious = dict(m.iou_per_class)
    assert ious["liver"] == 1.0 and ious["background"] == 1.0 and ious["lesion"] == 0.0
    assert m.mean_iou == pytest.approx(2 / 3)
    assert m.lesion.reference_ml == pytest.approx(27 / 1000)


def test_lesion_free_case_is_not_rewarded_in_mean_iou() -> None:
    ref, pred = _cube(), _cube(shift=(0, 0, 2))
    m = case_metrics(*_maps(ref, pred))
    assert "lesion" not in m.classes_present
    assert m.mean_iou == pytest.approx((dict(m.iou_per_class)["background"] + 800 / 1200) / 2)


def test_phantom_against_itself_and_cancel() -> None:
    _, ref = make_phantom()
    m = case_metrics(ref, ref.copy())
    assert m.lesion.dice == 1.0 and m.detection.reference_lesions == 2
    assert m.detection.at_threshold.recall == 1.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        case_metrics(ref, ref.copy(), cancel=token)


def test_progress_is_reported_up_to_completion() -> None:
    _, ref = make_phantom()
    seen: list[float] = []
    case_metrics(ref, ref.copy(), progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_study_slice_metrics_pooled_and_per_slice() -> None:
    ref, pred = _maps(_cube(), _cube(shift=(0, 0, 2)))
    doc = study_slice_metrics(ref, pred)
    liver_all = doc["liver"]["all"]
    # pooled over slices the 2-D counts add up to the 3-D ones
    assert liver_all["dice"] == pytest.approx(0.8)
    assert liver_all["iou_foreground"] == pytest.approx(800 / 1200)
    bg = (20 * 900 - 1200) / (20 * 900 - 800)
    assert liver_all["iou_background"] == pytest.approx(bg)
    assert liver_all["miou"] == pytest.approx((bg + 800 / 1200) / 2)
    # 10 slices hold the liver (Dice 0.8 each), 10 are empty in both (1.0 each)
    assert liver_all["mean_slice_dice"] == pytest.approx(0.9)
    assert doc["liver"]["reference_foreground"]["slices_used"] == 10
    assert doc["liver"]["reference_foreground"]["mean_slice_dice"] == pytest.approx(0.8)
    assert doc["lesion"]["reference_foreground"]["slices_used"] == 0
    assert doc["lesion"]["reference_foreground"]["dice"] is None
