"""Real CT from ../shared/data (skipped cleanly when absent): geometry, HU, masks on images."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from livgui.core import LabelMap
from livgui.imageio.errors import ImageReadError
from livgui.imageio.nifti import read_nifti, read_nifti_labels, write_mask_nifti
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata

TS = ("totalsegmentator",)


def _nibabel_in_memory_order(path, vol):
    return vol.source.reorientation.to_memory(nib.load(str(path)).get_fdata())


def test_example_ct_int32_on_disk_loads_as_int16_identical_to_nibabel():
    p = shared_path(*TS, "reference_files", "example_ct.nii.gz")
    assert nib.load(str(p)).get_data_dtype() == np.int32
    vol = read_nifti(p)
    assert vol.data.dtype == np.int16
    assert vol.shape == (112, 101, 122)
    assert vol.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert vol.geometry.orientation == ("L", "P", "S")
    np.testing.assert_array_equal(vol.data, _nibabel_in_memory_order(p, vol))
    lo, hi = vol.finite_range()
    assert -1300 < lo < -900 and 1000 < hi < 4000  # air and bone/metal in HU


def test_example_ct_sm_and_its_totalsegmentator_liver():
    image = shared_path(*TS, "reference_files", "example_ct_sm.nii.gz")
    seg = shared_path(*TS, "reference_files", "example_seg.nii.gz")
    vol = read_nifti(image)
    assert vol.data.dtype == np.int16 and vol.shape == (30, 101, 122)
    with pytest.raises(ImageReadError, match="unexpected label values"):
        read_nifti_labels(seg, vol)  # a multi-organ model output, not 0/1/2
    liver = read_nifti_labels(seg, vol, keep={5: 1})
    assert liver.source.warnings == ()
    assert 10_000 < int(liver.data.sum()) < 100_000
    assert 20 < float(vol.data[liver.data > 0].mean()) < 160


def test_s0009_liver_mask_sits_on_the_liver():
    vol = read_nifti(shared_path(*TS, "subjects", "s0009", "ct.nii.gz"))
    mask_path = shared_path(*TS, "subjects", "s0009", "segmentations", "liver.nii.gz")
    liver = read_nifti_labels(mask_path, vol)
    assert liver.source.warnings == ()
    assert vol.shape == (185, 119, 119) and vol.spacing == pytest.approx((1.5, 1.5, 1.5))
    inside = vol.data[liver.data > 0]
    assert inside.size > 50_000
    # Measured 53.5 HU: soft-tissue liver (the top of the scan cuts it); never air/fat/bone.
    assert 40 < float(inside.mean()) < 160
    # The liver lies on the patient's right: low memory x (the image's left half).
    xs = np.nonzero(liver.data)[2]
    assert xs.mean() < vol.shape[2] / 2


def test_s0002_mask_with_1e4_affine_difference_loads_without_error():
    vol = read_nifti(shared_path(*TS, "subjects", "s0002", "ct.nii.gz"))
    mask_path = shared_path(*TS, "subjects", "s0002", "segmentations", "liver.nii.gz")
    liver = read_nifti_labels(mask_path, vol)
    assert liver.source.warnings == ()  # 0.04 mm at the far corner: same grid
    assert liver.data.shape == vol.shape
    assert int(liver.data.sum()) == 0  # s0002 is a negative (no liver in view)


def test_real_mask_round_trip_is_byte_identical_in_voxels_and_geometry(tmp_path):
    vol = read_nifti(shared_path(*TS, "subjects", "s0009", "ct.nii.gz"))
    mask_path = shared_path(*TS, "subjects", "s0009", "segmentations", "liver.nii.gz")
    liver = read_nifti_labels(mask_path, vol)
    out = tmp_path / "liver_copy.nii.gz"
    write_mask_nifti(LabelMap(liver.data, vol.geometry), out, vol)
    original, written = nib.load(str(mask_path)), nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(written.dataobj), np.asarray(original.dataobj))
    assert np.allclose(written.affine, original.affine, atol=1e-3)
    assert written.get_data_dtype() == np.uint8


def test_totalsegmentator_las_mask_aligns_with_its_dicom_series():
    dicom = pytest.importorskip("livgui.imageio.dicom")
    folder = shared_path(*TS, "reference_files", "example_ct_dicom")
    seg = shared_path(*TS, "reference_files", "example_seg_dicom.nii.gz")
    vol = dicom.read_dicom_series(folder)
    assert nib.aff2axcodes(nib.load(str(seg)).affine) == ("L", "A", "S")
    liver = read_nifti_labels(seg, vol, keep={5: 1})
    assert liver.source.warnings == ()  # same grid after both are reoriented
    assert 40 < float(vol.data[liver.data > 0].mean()) < 160  # measured 89 HU
