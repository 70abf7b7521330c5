"""NIfTI dataset layouts (LiTS, MSD Task03, TotalSegmentator), detection and listing."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from livgui.imageio.datasets import (
    detect_layout,
    list_cases,
    load_case,
    load_cases,
    pair_case,
)
from livgui.imageio.errors import ImageReadError
from tests.conftest import make_phantom

# A LiTS-like affine: RAS with the first axis flipped (stored "LAS"), 0.7 mm in-plane.
LAS = np.array([[-0.7, 0, 0, 90.0], [0, 0.7, 0, -60.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])
RAS = np.diag([1.5, 1.5, 1.5, 1.0])


def _write(path: Path, memory: np.ndarray, affine=LAS, dtype=None) -> Path:
    """Write a memory-ordered (z, y, x) LPS array as a NIfTI stored with ``affine``.

    The file array is (x, y, z); an axis whose code is R or A runs against memory's L or
    P, so it is reversed to keep every voxel at its world position.
    """
    arr = np.transpose(memory, (2, 1, 0))  # (x, y, z) with x->L, y->P, z->S
    codes = nib.aff2axcodes(affine)
    if codes[0] == "R":
        arr = arr[::-1]
    if codes[1] == "A":
        arr = arr[:, ::-1]
    img = nib.Nifti1Image(np.ascontiguousarray(arr).astype(dtype or memory.dtype), affine)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


@pytest.fixture
def phantom_small():
    return make_phantom(shape=(8, 24, 28))


def test_lits_volumes_pair_with_segmentations_by_number(tmp_path, phantom_small):
    vol, labels = phantom_small
    _write(tmp_path / "volume-3.nii", vol.data)
    _write(tmp_path / "segmentation-3.nii", labels.data)
    _write(tmp_path / "volume-12.nii", vol.data)
    assert detect_layout(tmp_path) == "lits"
    refs = list_cases(tmp_path)
    assert [r.case_id for r in refs] == ["volume-3", "volume-12"]
    assert refs[1].reference_path is None
    case = load_case(refs[0])
    assert "".join(case.volume.geometry.orientation) == "LPS"
    np.testing.assert_array_equal(case.volume.data, vol.data)
    np.testing.assert_array_equal(case.reference.data, labels.data)
    missing = load_case(refs[1])
    assert missing.reference is None and any("no reference" in w for w in missing.warnings)


def test_lits_single_file_and_kaggle_split_folders(tmp_path, phantom_small):
    vol, labels = phantom_small
    _write(tmp_path / "volume_pt1" / "volume-0.nii", vol.data)
    _write(tmp_path / "volume_pt2" / "volume-1.nii", vol.data)
    _write(tmp_path / "segmentations" / "segmentation-0.nii", labels.data)
    _write(tmp_path / "segmentations" / "segmentation-1.nii", labels.data)
    refs = list_cases(tmp_path)
    assert [(r.case_id, r.reference_path.name) for r in refs] == [
        ("volume-0", "segmentation-0.nii"),
        ("volume-1", "segmentation-1.nii"),
    ]
    (single,) = list_cases(tmp_path / "volume_pt2" / "volume-1.nii")
    assert single.layout == "lits" and single.reference_path.name == "segmentation-1.nii"


def test_lits_mask_of_other_shape_or_labels_is_refused(tmp_path, phantom_small):
    vol, labels = phantom_small
    _write(tmp_path / "volume-1.nii", vol.data)
    _write(tmp_path / "segmentation-1.nii", labels.data[:-1])
    with pytest.raises(ImageReadError, match="does not match the image shape"):
        load_case(list_cases(tmp_path)[0])
    bad = labels.data.copy()
    bad[0, 0, 0] = 7
    _write(tmp_path / "segmentation-1.nii", bad)
    with pytest.raises(ImageReadError, match="unexpected label values 7"):
        load_case(list_cases(tmp_path)[0])


def test_msd_task03_skips_macos_forks_and_lists_test_images(tmp_path, phantom_small):
    vol, labels = phantom_small
    root = tmp_path / "Task03_Liver"
    _write(root / "imagesTr" / "liver_0.nii.gz", vol.data)
    _write(root / "labelsTr" / "liver_0.nii.gz", labels.data)
    (root / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"\0" * 4096)  # AppleDouble junk
    _write(root / "imagesTs" / "liver_140.nii.gz", vol.data)
    assert detect_layout(root) == "msd"
    refs = list_cases(root)
    assert [r.case_id for r in refs] == ["liver_0", "imagesTs/liver_140"]
    case = load_case(refs[0])
    np.testing.assert_array_equal(case.reference.data, labels.data)
    assert load_case(refs[1]).reference is None


def test_totalsegmentator_subjects_binary_liver_and_empty_masks(tmp_path, phantom_small):
    vol, labels = phantom_small
    for name, liver in (("s0001", labels.data > 0), ("s0002", np.zeros_like(labels.data))):
        _write(tmp_path / name / "ct.nii.gz", vol.data, RAS)
        _write(tmp_path / name / "segmentations" / "liver.nii.gz", liver.astype(np.uint8), RAS)
    assert detect_layout(tmp_path) == "totalsegmentator"
    cases = load_cases(list_cases(tmp_path))
    assert [c.case_id for c in cases] == ["s0001", "s0002"]
    np.testing.assert_array_equal(cases[0].reference.data, (labels.data > 0).astype(np.uint8))
    assert cases[0].patient_id == "s0001"
    assert any("no liver voxels" in w for w in cases[1].warnings)


def test_totalsegmentator_examples_load_model_output_as_prediction(tmp_path, phantom_small):
    vol, labels = phantom_small
    multi = np.where(labels.data > 0, 5, 0).astype(np.uint8)
    multi[0, 0, :3] = 2  # a kidney: not liver
    _write(tmp_path / "example_ct.nii.gz", vol.data, RAS, dtype=np.int32)
    _write(tmp_path / "example_ct_sm.nii.gz", vol.data[:4], RAS)
    _write(tmp_path / "example_seg.nii.gz", multi[:4], RAS)  # belongs to the 4-slice CT
    _write(tmp_path / "example_seg_fast_force_split.nii.gz", multi, RAS)
    assert detect_layout(tmp_path) == "totalsegmentator-examples"
    refs = {r.case_id: r for r in list_cases(tmp_path)}
    assert refs["example_ct"].extra["prediction_path"].name == "example_seg_fast_force_split.nii.gz"
    assert refs["example_ct_sm"].extra["prediction_path"].name == "example_seg.nii.gz"
    case = load_case(refs["example_ct"])
    assert case.reference is None
    np.testing.assert_array_equal(case.prediction.data, (labels.data > 0).astype(np.uint8))
    assert case.volume.data.dtype == np.int16  # int32 file of CT values
    assert any("model output" in w and "not a manual reference" in w for w in case.warnings)


def test_collection_of_datasets_is_listed_with_unique_ids(tmp_path, phantom_small):
    vol, labels = phantom_small
    for site in ("siteA", "siteB"):
        _write(tmp_path / site / "volume-1.nii.gz", vol.data)
        _write(tmp_path / site / "segmentation-1.nii.gz", labels.data)
    # a lone image is a case when pointed at, not when met while walking a collection
    # (it could be a mask of a layout not recognised)
    _write(tmp_path / "loose" / "scan.nii.gz", vol.data)
    assert detect_layout(tmp_path) is None
    refs = list_cases(tmp_path)
    assert [r.case_id for r in refs] == ["siteA/volume-1", "siteB/volume-1"]
    assert [r.layout for r in refs] == ["lits", "lits"]
    (loose,) = list_cases(tmp_path / "loose" / "scan.nii.gz")
    assert (loose.case_id, loose.layout) == ("scan", "image")
    with pytest.raises(ImageReadError, match="holds 2 cases"):
        load_case(tmp_path)
    one = load_case(tmp_path / "siteA")
    np.testing.assert_array_equal(one.reference.data, labels.data)


def test_explicit_pair_and_missing_paths(tmp_path, phantom_small):
    vol, labels = phantom_small
    image = _write(tmp_path / "ct.nii.gz", vol.data)
    mask = _write(tmp_path / "my_mask.nii.gz", labels.data)
    ref = pair_case(image, mask)
    assert ref.layout == "pair" and ref.case_id == "ct"
    case = load_case(ref)
    np.testing.assert_array_equal(case.reference.data, labels.data)
    assert load_case(pair_case(image)).reference is None
    with pytest.raises(ImageReadError, match="no such file or folder"):
        list_cases(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("hello")
    assert detect_layout(tmp_path / "notes.txt") is None


def test_dicom_folder_with_nrrd_masks_beside_it(tmp_path):
    import nrrd

    from tests.imageio.dicom_factory import phantom_hu, write_series

    hu = phantom_hu(n=4, rows=16, cols=18)
    write_series(tmp_path / "ct", hu, step=2.0)
    liver = np.zeros((4, 16, 18), np.int16)
    liver[1:3, 4:10, 5:12] = 1
    both = liver.copy()
    both[:, 12:15, 8:10] = 2  # spine
    header = {
        "space": "left-posterior-superior",
        "space directions": np.diag([0.7, 0.8, 2.0]),
        "space origin": np.array([-12.0, -14.0, 100.0]),
    }
    for name, arr in (("liver_seg.nrrd", liver), ("liver_spine_seg.nrrd", both)):
        nrrd.write(str(tmp_path / name), np.transpose(arr, (2, 1, 0)), header)
    assert detect_layout(tmp_path) == "dicom-with-masks"
    (ref,) = list_cases(tmp_path)
    assert ref.reference_path.name == "liver_seg.nrrd"
    assert [Path(p).name for p in ref.extra["other_references"]] == ["liver_spine_seg.nrrd"]
    case = load_case(ref)
    np.testing.assert_array_equal(case.reference.data, liver)
    assert any("other masks for this image" in w for w in case.warnings)
