"""CHAOS CT and 3D-IRCADb-01 layouts on synthetic DICOM trees built in tmp_path."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from livgui.imageio.datasets import detect_layout, list_cases, load_case
from livgui.imageio.errors import ImageReadError
from tests.imageio.dicom_factory import AXIAL, SliceSpec, write_slice

N, ROWS, COLS = 6, 24, 20


def _pattern(k: int) -> np.ndarray:
    """A label pattern unique to slice k and asymmetric in-plane (flips show)."""
    out = np.zeros((ROWS, COLS), dtype=np.uint8)
    out[3 : 6 + k, 2:9] = 1
    out[15:18, 12 : 13 + k] = 1
    return out


def _write_chaos(root: Path, orientation=AXIAL) -> Path:
    """CHAOS CT case: file-name order runs top-down, i.e. against the position order.

    The CT's pixels repeat the PNG pattern (200 HU where liver), so a correct pairing
    gives reference == (HU > 100) whatever the orientation.
    """
    case = root / "CT" / "7"
    normal = np.cross(orientation[:3], orientation[3:])
    for k in range(N):  # k = position order, inferior to superior along the normal
        name_index = N - 1 - k  # file i0000 is the top slice
        hu = np.where(_pattern(k) > 0, 200, -1000).astype(np.int16)
        spec = SliceSpec(
            (hu + 1024).astype(np.uint16),
            tuple(np.array([-10.0, -20.0, 50.0]) + k * 2.5 * normal),
            orientation=orientation,
            intercept=-1024.0,
            instance_number=name_index + 1,
            extra={"SliceThickness": "5.0"},  # not the 2.5 mm step
        )
        write_slice(case / "DICOM_anon" / f"i{name_index:04d},0000b.dcm", spec)
        ground = case / "Ground"
        ground.mkdir(exist_ok=True)
        Image.fromarray(_pattern(k) * 255).save(ground / f"liver_GT_{name_index:03d}.png")
    return root


def test_chaos_png_k_pairs_with_the_kth_file_by_name_not_by_position(tmp_path):
    root = _write_chaos(tmp_path)
    assert detect_layout(root) == "chaos"
    assert detect_layout(root / "CT") == "chaos"
    (ref,) = list_cases(root)
    assert ref.case_id == "7" and ref.layout == "chaos"
    case = load_case(ref)
    assert case.volume.shape == (N, ROWS, COLS)
    assert case.volume.spacing[0] == pytest.approx(2.5)  # step, not SliceThickness
    expected = np.stack([_pattern(k) for k in range(N)])  # z = k (inferior -> superior)
    np.testing.assert_array_equal(case.reference.data, expected)
    np.testing.assert_array_equal(case.reference.data, case.volume.data > 100)
    # the naive pairing (PNG k -> k-th slice by position) would be upside down
    naive = np.stack(
        [np.asarray(Image.open(p)) > 127 for p in sorted((root / "CT/7/Ground").iterdir())]
    )
    assert not np.array_equal(naive, case.reference.data > 0)


@pytest.mark.parametrize(
    "orientation",
    [
        (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        (0.0, 1.0, 0.0, 1.0, 0.0, 0.0),
        (1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
    ],
)
def test_chaos_masks_follow_any_in_plane_orientation(tmp_path, orientation):
    case = load_case(list_cases(_write_chaos(tmp_path, orientation))[0])
    assert "".join(case.volume.geometry.orientation) == "LPS"
    np.testing.assert_array_equal(case.reference.data, case.volume.data > 100)
    assert case.reference.data.sum() == sum(_pattern(k).sum() for k in range(N))


def test_chaos_png_count_mismatch_is_a_clear_error(tmp_path):
    root = _write_chaos(tmp_path)
    (root / "CT/7/Ground/liver_GT_000.png").unlink()
    with pytest.raises(ImageReadError, match="5 PNG masks for 6 DICOM files"):
        load_case(list_cases(root)[0])


# ------------------------------------------------------------------ 3D-IRCADb


def _ircadb_slices(folder: Path, planes: np.ndarray, series_uid: str, ct: bool) -> None:
    for k, plane in enumerate(planes):  # image_0 is the most caudal slice
        stored = (plane + 1024).astype(np.uint16) if ct else plane.astype(np.uint8)
        spec = SliceSpec(
            stored,
            (0.0, 0.0, 2.0 * k),
            pixel_spacing=(0.7, 0.7),
            series_uid=series_uid,
            intercept=-1024.0 if ct else 0.0,
            instance_number=k + 1,
        )
        write_slice(folder / f"image_{k}", spec)


def _write_ircadb(case: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    liver = np.zeros((N, ROWS, COLS), bool)
    liver[1:5, 4:16, 2:10] = True
    tumour1 = np.zeros_like(liver)
    tumour1[2:4, 6:9, 3:6] = True
    tumour2 = np.zeros_like(liver)
    tumour2[3, 12:14, 8:12] = True  # partly outside the liver (x >= 10)
    hu = np.full(liver.shape, -1000, np.int16)
    hu[liver] = 100
    _ircadb_slices(case / "PATIENT_DICOM", hu, "1.2.9.1", ct=True)
    for name, mask, uid in (
        ("liver", liver, "1.2.9.2"),
        ("livertumor01", tumour1, "1.2.9.3"),
        ("livertumor02", tumour2, "1.2.9.4"),
        ("portalvein", liver, "1.2.9.5"),
    ):
        _ircadb_slices(case / "MASKS_DICOM" / name, mask.astype(np.uint8) * 255, uid, ct=False)
    return liver, tumour1, tumour2


def _zip_folder(folder: Path) -> None:
    with zipfile.ZipFile(folder.with_suffix(".zip"), "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(folder.parent).as_posix())
    for f in sorted(folder.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    folder.rmdir()


@pytest.mark.parametrize("zipped", [False, True])
def test_ircadb_liver_1_tumours_2_matched_by_prefix(tmp_path, zipped):
    case_dir = tmp_path / "3Dircadb1.5"
    liver, t1, t2 = _write_ircadb(case_dir)
    if zipped:
        _zip_folder(case_dir / "PATIENT_DICOM")
        _zip_folder(case_dir / "MASKS_DICOM")
    for where in (tmp_path, case_dir):
        assert detect_layout(where) == "ircadb"
    (ref,) = list_cases(tmp_path)
    assert ref.case_id == "3Dircadb1.5" and ref.patient_id == "3Dircadb1.5"
    case = load_case(ref)
    expected = np.zeros(liver.shape, np.uint8)
    expected[liver] = 1
    expected[t1 | t2] = 2
    np.testing.assert_array_equal(case.reference.data, expected)
    assert case.volume.shape == (N, ROWS, COLS)
    assert case.volume.spacing == pytest.approx((2.0, 0.7, 0.7))
    outside = int((t2 & ~liver).sum())
    assert outside > 0
    assert any(f"{outside} tumour voxel(s) lie outside the liver" in w for w in case.warnings)
    assert any("livertumor01, livertumor02" in w for w in case.warnings)


def test_ircadb_mask_on_other_positions_is_refused(tmp_path):
    case_dir = tmp_path / "3Dircadb1.6"
    _write_ircadb(case_dir)
    liver_dir = case_dir / "MASKS_DICOM" / "liver"
    for f in liver_dir.iterdir():
        f.unlink()
    planes = np.zeros((N, ROWS, COLS), np.uint8)
    for k, plane in enumerate(planes):
        spec = SliceSpec(plane, (5.0, 0.0, 2.0 * k), pixel_spacing=(0.7, 0.7), series_uid="9.9")
        write_slice(liver_dir / f"image_{k}", spec)
    with pytest.raises(ImageReadError, match="not at the CT's positions"):
        load_case(list_cases(case_dir)[0])


def test_ircadb_without_liver_mask_folder_is_a_clear_error(tmp_path):
    case_dir = tmp_path / "3Dircadb1.8"
    _write_ircadb(case_dir)
    for f in (case_dir / "MASKS_DICOM" / "liver").iterdir():
        f.unlink()
    (case_dir / "MASKS_DICOM" / "liver").rmdir()
    with pytest.raises(ImageReadError, match="no 'liver' mask folder"):
        load_case(list_cases(case_dir)[0])
