"""DICOM series: geometry lands in the LPS memory convention, scans sort junk out, real CT reads.

A marker voxel (200 HU, slice 0, row rows/4, column cols/4) is placed in world LPS from the
header geometry; after reading, the memory volume must hold it at the same world point.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from livgui.core.progress import Cancelled, CancelToken
from livgui.imageio.dicom import read_dicom_series, scan_dicom
from livgui.imageio.dicom_seg import read_dicom_seg
from livgui.imageio.errors import ImageReadError
from tests.conftest import shared_path
from tests.imageio.dicom_factory import (
    AXIAL,
    CORONAL,
    SliceSpec,
    make_dataset,
    phantom_hu,
    write_series,
    write_slice,
)

FEET_FIRST = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # FFS: rows run to the patient's right
SPACING = (0.8, 0.7)  # factory default (row spacing, column spacing)


def _marker_world(orientation, origin, rows: int, cols: int) -> np.ndarray:
    row_cos = np.asarray(orientation[:3])
    col_cos = np.asarray(orientation[3:])
    r, c = rows // 4, cols // 4
    return np.asarray(origin) + c * SPACING[1] * row_cos + r * SPACING[0] * col_cos


def _check_marker(vol, orientation, origin) -> None:
    idx = np.argwhere(vol.data == 200)
    assert len(idx) == 1
    world = vol.geometry.index_to_world(idx[0].astype(float))
    np.testing.assert_allclose(world, _marker_world(orientation, origin, 32, 40), atol=1e-4)
    assert vol.geometry.orientation == ("L", "P", "S")


@pytest.mark.parametrize(
    ("orientation", "step"),
    [(AXIAL, 2.0), (AXIAL, -2.0), (FEET_FIRST, 2.0), (FEET_FIRST, -2.0), (CORONAL, 3.0)],
    ids=["head-first", "reversed-order", "feet-first", "feet-first-reversed", "coronal"],
)
def test_any_slice_order_or_patient_position_lands_z_superior(
    tmp_path: Path, orientation, step
) -> None:
    hu = phantom_hu(6)
    origin = (-12.0, -14.0, 100.0)
    write_series(tmp_path, hu, step=step, orientation=orientation, origin=origin)
    vol = read_dicom_series(tmp_path)
    _check_marker(vol, orientation, origin)
    # z runs to superior: world z grows with the first memory index.
    z0 = vol.geometry.index_to_world(np.array([0.0, 0, 0]))[2]
    z1 = vol.geometry.index_to_world(np.array([1.0, 0, 0]))[2]
    assert z1 > z0 or orientation == CORONAL
    assert vol.source is not None and vol.source.format == "dicom"
    assert vol.data.flags.c_contiguous


def test_pixel_spacing_is_row_spacing_then_column_spacing(tmp_path: Path) -> None:
    write_series(tmp_path, phantom_hu(3), step=2.5)
    vol = read_dicom_series(tmp_path)
    assert vol.spacing == pytest.approx((2.5, 0.8, 0.7))  # (z, y, x): y = between rows


def test_scan_skips_and_counts_junk(tmp_path: Path) -> None:
    hu = phantom_hu(5)
    write_series(tmp_path, hu)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.dcm").write_bytes(b"")
    good = sorted(tmp_path.glob("*_x.dcm"))[0].read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(good[: len(good) // 2])
    (tmp_path / "header_only.dcm").write_bytes(good[:200])
    report = make_dataset(SliceSpec(hu[0], (0, 0, 0), sop_class="1.2.840.10008.5.1.4.1.1.88.11"))
    for keyword in ("Rows", "Columns", "PixelData"):
        delattr(report, keyword)
    report.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    result = scan_dicom(tmp_path)
    assert [s.n_files for s in result.series] == [5]
    assert result.skip_counts() == {"not a DICOM file": 2, "not an image": 1}
    assert sorted(Path(p).name for p, _ in result.unreadable) == [
        "header_only.dcm",
        "truncated.dcm",
    ]
    assert any("truncated" in why for _, why in result.unreadable)
    np.testing.assert_array_equal(read_dicom_series(result.series[0]).data, hu)


def test_a_list_of_files_is_a_source_too(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    paths = write_series(tmp_path, hu)
    vol = read_dicom_series(list(reversed(paths)))
    np.testing.assert_array_equal(vol.data, hu)
    assert scan_dicom(paths[:2]).series[0].n_files == 2


def test_zip_of_a_folder_reads_like_the_folder(tmp_path: Path) -> None:
    hu = phantom_hu(5)
    paths = write_series(tmp_path / "case", hu)
    archive = tmp_path / "case.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in paths:
            zf.write(p, f"case/sub/{p.name}")
    vol = read_dicom_series(archive)
    ref = read_dicom_series(tmp_path / "case")
    np.testing.assert_array_equal(vol.data, ref.data)
    np.testing.assert_allclose(vol.geometry.affine, ref.geometry.affine)
    assert vol.source is not None and vol.source.header["archive"] == str(archive)


def test_progress_reported_and_cancel_honoured(tmp_path: Path) -> None:
    write_series(tmp_path, phantom_hu(70, rows=8, cols=8))
    seen: list[float] = []
    info = scan_dicom(tmp_path, progress=lambda f, m: seen.append(f)).series[0]
    assert seen and seen[-1] == 1.0
    seen.clear()
    read_dicom_series(info, progress=lambda f, m: seen.append(f))
    assert len(seen) >= 2 and seen[-1] == 1.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        read_dicom_series(info, cancel=token)
    with pytest.raises(Cancelled):
        scan_dicom(tmp_path, cancel=token)


def test_empty_or_non_dicom_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ImageReadError, match=r"no DICOM image series found.*1 not a DICOM file"):
        read_dicom_series(tmp_path)


def test_signed_12_bit_stored_values_are_sign_extended(tmp_path: Path) -> None:
    hu = phantom_hu(2)
    for k in range(2):
        stored = hu[k].astype(np.int16) & 0x0FFF  # 12-bit two's complement, high bits zero
        spec = SliceSpec(
            stored.astype(np.int16), (0.0, 0.0, 2.0 * k), extra={"BitsStored": 12, "HighBit": 11}
        )
        write_slice(tmp_path / f"s{k}.dcm", spec)
    np.testing.assert_array_equal(read_dicom_series(tmp_path).data, hu)


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_ircadb17_patient_dicom_sorted_by_position() -> None:
    folder = shared_path("ircadb-17", "PATIENT_DICOM")
    info = scan_dicom(folder).series
    assert len(info) == 1 and info[0].n_files == 119 and not info[0].problems
    vol = read_dicom_series(info[0])
    assert vol.shape == (119, 512, 512)
    assert vol.spacing == pytest.approx((1.6, 0.743, 0.743), abs=1e-3)
    assert vol.source is not None
    files = vol.source.header["files"]
    assert Path(files[0]).name == "image_0" and Path(files[-1]).name == "image_118"
    assert Path(files[10]).name == "image_10"  # not alphabetical (image_100 ...)
    assert vol.geometry.orientation == ("L", "P", "S")


@pytest.mark.realdata
def test_ircadb17_liver_mask_sits_on_the_ct_and_liver_hu_is_plausible() -> None:
    ct = read_dicom_series(shared_path("ircadb-17", "PATIENT_DICOM"))
    mask = read_dicom_series(shared_path("ircadb-17", "MASKS_DICOM", "liver"))
    assert mask.geometry.same_grid(ct.geometry)
    assert set(np.unique(mask.data).tolist()) == {0, 255}
    liver = mask.data > 0
    mean_hu = float(ct.data[liver].mean())
    assert 40 < mean_hu < 160
    assert float(ct.data[:, :5, :5].mean()) < -900  # air in the corners


@pytest.mark.realdata
def test_totalsegmentator_jpeg2000_series() -> None:
    folder = shared_path("totalsegmentator", "reference_files", "example_ct_dicom")
    series = scan_dicom(folder).series
    assert len(series) == 1 and series[0].transfer_syntax == "JPEG 2000"
    vol = read_dicom_series(series[0])
    assert vol.shape == (20, 512, 512)
    assert vol.geometry.orientation == ("L", "P", "S")
    lo, hi = vol.finite_range()
    assert -1100 < lo < -900 and hi > 500


@pytest.mark.realdata
def test_dcmqi_seg_maps_onto_the_ct_grid() -> None:
    import nrrd

    root = shared_path("dcmqi-ct3slice", "data", "segmentations")
    ct = read_dicom_series(root / "ct-3slice")
    labels = read_dicom_seg(root / "liver.dcm", ct)
    assert labels.geometry.same_grid(ct.geometry)
    assert set(np.unique(labels.data).tolist()) == {0, 1}
    ref, header = nrrd.read(str(root / "liver_seg.nrrd"))
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(
        np.diag(header["space directions"]), ct.geometry.affine.diagonal()[:3], atol=1e-4
    )
    np.testing.assert_array_equal(labels.data, (np.transpose(ref, (2, 1, 0)) > 0).astype(np.uint8))


@pytest.mark.realdata
def test_seg_on_another_grid_is_refused(tmp_path: Path) -> None:
    root = shared_path("dcmqi-ct3slice", "data", "segmentations")
    write_series(tmp_path, phantom_hu(3))
    other = read_dicom_series(tmp_path)
    with pytest.raises(ImageReadError, match="not on the CT grid"):
        read_dicom_seg(root / "liver.dcm", other)


def test_series_with_alike_headers_are_told_apart_by_folder(shared_data):
    from livgui.imageio.dicom import scan_dicom

    result = scan_dicom(shared_data / "ircadb-17")
    labels = [s.label for s in result.series]
    assert len(labels) == 4 and len(set(labels)) == 4
    assert any(lbl.endswith("PATIENT_DICOM") for lbl in labels)
