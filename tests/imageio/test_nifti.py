"""NIfTI reading details: dtypes, scaling, 4-D, NIfTI-2, byte order, progress and cancel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from livgui.core import Cancelled, CancelToken, LabelMap
from livgui.imageio import nifti_core
from livgui.imageio.errors import ImageReadError
from livgui.imageio.nifti import read_nifti, read_nifti_header, read_nifti_labels, write_mask_nifti

RAS = np.diag([0.8, 0.8, 2.5, 1.0])


def save(path, data, affine=RAS, *, dtype=None, slope=None, inter=None, klass=nib.Nifti1Image):
    img = klass(data, affine, dtype=dtype or data.dtype)
    img.set_sform(affine, code=2)
    img.set_qform(affine, code=1)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return path


def reference(path):
    """What nibabel gives, brought to memory order with LivGUI's reorientation."""
    img = nib.load(str(path))
    vol = read_nifti(path)
    return vol, vol.source.reorientation.to_memory(
        np.squeeze(img.get_fdata(), axis=3) if img.ndim == 4 else img.get_fdata()
    )


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.int16, np.int16),
        (np.uint8, np.int16),
        (np.int32, np.int16),
        (np.uint16, np.int16),
        (np.float32, np.float32),
        (np.float64, np.float32),
    ],
)
def test_dtypes_keep_int16_when_integral_and_in_range(tmp_path, dtype, expected):
    rng = np.random.default_rng(0)
    lo = 0 if np.dtype(dtype).kind == "u" else -1024
    data = rng.integers(lo, 255, size=(12, 10, 6)).astype(dtype)
    vol, ref = reference(save(tmp_path / "a.nii.gz", data, dtype=dtype))
    assert vol.data.dtype == expected
    np.testing.assert_array_equal(vol.data, ref.astype(expected))


def test_int32_out_of_int16_range_becomes_float32_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(nifti_core, "_SLAB_BYTES", 10 * 12 * 4)  # one slice per slab
    data = np.zeros((12, 10, 6), np.int32)
    data[..., 0] = -1000
    data[3, 4, 5] = 70000  # in the last slab: switch after earlier slabs were int16
    vol, ref = reference(save(tmp_path / "a.nii.gz", data))
    assert vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data, ref)


def test_scaled_data_is_float32_hu(tmp_path):
    stored = np.arange(12 * 10 * 6, dtype=np.int16).reshape(12, 10, 6)
    vol, ref = reference(save(tmp_path / "s.nii.gz", stored, slope=0.5, inter=-1024))
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, ref)
    assert vol.data.min() == -1024.0


def test_singleton_fourth_dimension_accepted_real_4d_refused(tmp_path):
    data = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4, 1)
    vol, ref = reference(save(tmp_path / "one.nii.gz", data))
    assert vol.shape == (4, 5, 6)
    np.testing.assert_array_equal(vol.data, ref)
    labels = LabelMap.empty_like(vol)
    out = tmp_path / "m.nii.gz"
    write_mask_nifti(labels, out, vol)
    assert nib.load(str(out)).shape == (6, 5, 4)

    p = save(tmp_path / "four.nii.gz", np.zeros((6, 5, 4, 3), np.int16))
    with pytest.raises(ImageReadError, match=r"4-D data of shape \(6, 5, 4, 3\) \(3 volumes\)"):
        read_nifti(p)


def test_nifti2_and_big_endian_files(tmp_path):
    data = np.random.default_rng(1).integers(-1000, 1000, (7, 8, 9)).astype(np.int16)
    vol2, ref2 = reference(save(tmp_path / "v2.nii.gz", data, klass=nib.Nifti2Image))
    np.testing.assert_array_equal(vol2.data, ref2)
    assert vol2.source.header["nifti_version"] == 2
    labels = LabelMap.empty_like(vol2)
    labels.data[1, 2, 3] = 1
    write_mask_nifti(labels, tmp_path / "m2.nii.gz", vol2)
    back = nib.load(str(tmp_path / "m2.nii.gz"))
    assert isinstance(back, nib.Nifti2Image) and np.allclose(back.affine, RAS)

    hdr = nib.Nifti1Header(endianness=">")
    hdr.set_data_dtype(np.int16)
    big = nib.Nifti1Image(data.astype(">i2"), RAS, header=hdr)
    nib.save(big, str(tmp_path / "big.nii"))
    assert read_nifti_header(tmp_path / "big.nii").disk_dtype == np.dtype(">i2")
    vol_be, ref_be = reference(tmp_path / "big.nii")
    assert vol_be.data.dtype == np.int16 and vol_be.data.dtype.isnative
    np.testing.assert_array_equal(vol_be.data, ref_be)


def test_nifti_pair_and_complex_are_refused_clearly(tmp_path):
    nib.save(nib.Nifti1Pair(np.zeros((4, 4, 4), np.int16), RAS), str(tmp_path / "pair.hdr"))
    with pytest.raises(ImageReadError, match=r"NIfTI pair"):
        read_nifti(tmp_path / "pair.hdr")
    p = save(tmp_path / "c.nii", np.zeros((4, 4, 4), np.complex64))
    with pytest.raises(ImageReadError, match="complex or RGB"):
        read_nifti(p)


def test_progress_reaches_one_and_cancel_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(nifti_core, "_SLAB_BYTES", 16 * 16 * 2 * 2)  # two slices per slab
    p = save(tmp_path / "p.nii.gz", np.zeros((16, 16, 10), np.int16))
    seen: list[float] = []
    read_nifti(p, progress=lambda f, msg: seen.append(f))
    assert len(seen) == 5 and seen == sorted(seen) and seen[-1] == 1.0

    token = CancelToken()

    def cancel_after_first(fraction, message):
        token.cancel()

    with pytest.raises(Cancelled):
        read_nifti(p, progress=cancel_after_first, cancel=token)


def test_header_info_exposes_geometry_fields(tmp_path):
    p = save(tmp_path / "h.nii.gz", np.zeros((6, 5, 4), np.int16))
    info = read_nifti_header(p)
    assert info.compressed and info.file_shape == (6, 5, 4) and info.offset == 352
    header = read_nifti(p).source.header
    assert header["qform_code"] == 1 and header["sform_code"] == 2
    assert np.allclose(header["qform"], RAS) and np.allclose(header["sform"], RAS)
    assert header["pixdim"][1:4] == pytest.approx((0.8, 0.8, 2.5))
    assert len(header["binary_header"]) == 348


def test_reading_labels_checks_shape_from_the_header_first(tmp_path):
    img = read_nifti(save(tmp_path / "i.nii.gz", np.zeros((6, 5, 4), np.int16)))
    m = save(tmp_path / "m.nii.gz", np.zeros((6, 5, 4), np.uint8))
    labels = read_nifti_labels(m, img)
    assert labels.data.dtype == np.uint8 and labels.geometry is img.geometry
    assert labels.name == "m.nii.gz"
