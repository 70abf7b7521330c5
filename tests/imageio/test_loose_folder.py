"""A plain folder of the user's own NIfTI files lists one case per image."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from livgui.imageio import list_cases, load_case
from livgui.imageio.layouts_loose import unpaired_masks
from tests.conftest import make_phantom


def _write(path, array, dtype):
    img = nib.Nifti1Image(np.asarray(array, dtype=dtype), np.diag([-0.8, -0.8, 2.5, 1.0]))
    nib.save(img, path)


def test_images_become_cases_and_masks_pair_by_name(tmp_path):
    vol, ref = make_phantom(shape=(8, 32, 32))
    # the affine's (-x, -y) columns point to patient left/posterior: file (i, j, k) = (x, y, z)
    file_order = np.transpose(vol.data, (2, 1, 0))
    mask_order = np.transpose(ref.data, (2, 1, 0))
    _write(tmp_path / "case1.nii.gz", file_order, np.int16)
    _write(tmp_path / "case1_seg.nii.gz", mask_order, np.uint8)
    _write(tmp_path / "case2.nii.gz", file_order, np.int16)
    _write(tmp_path / "stray-mask.nii.gz", mask_order, np.uint8)
    _write(tmp_path / "segmentation-3.nii.gz", mask_order, np.uint8)

    refs = list_cases(tmp_path)
    assert [(r.case_id, r.reference_path is not None) for r in refs] == [
        ("case1", True),
        ("case2", False),
    ]
    assert sorted(p.name for p in unpaired_masks(tmp_path)) == [
        "segmentation-3.nii.gz",
        "stray-mask.nii.gz",
    ]

    case = load_case(refs[0])
    assert case.reference is not None
    assert np.array_equal(case.reference.data, ref.data)
    assert np.array_equal(case.volume.data, vol.data)
    assert load_case(refs[1]).reference is None


def test_loose_files_inside_a_collection_are_not_taken_for_cases(tmp_path):
    vol, _ = make_phantom(shape=(4, 16, 16))
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "scan.nii.gz", np.transpose(vol.data, (2, 1, 0)), np.int16)
    assert list_cases(tmp_path) == []
    assert [r.case_id for r in list_cases(tmp_path / "sub")] == ["scan"]
