"""NRRD masks and volumes: LPS/RAS spaces, marker positions, values, shapes, real dcmqi files."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest

from livgui.core import Geometry, Volume
from livgui.imageio.errors import ImageReadError
from livgui.imageio.nrrd import read_nrrd, read_nrrd_labels
from tests.conftest import shared_path

DIRECTIONS = np.diag([0.8, 0.9, 2.5])
ORIGIN = np.array([-100.0, -120.0, 40.0])


def write(path, data, space="left-posterior-superior", directions=DIRECTIONS, origin=ORIGIN):
    header = {"space": space, "space directions": directions, "space origin": origin}
    nrrd.write(str(path), data, header, index_order="F")
    return path


def _marker(shape=(9, 11, 7), at=(2, 3, 4)):
    data = np.zeros(shape, np.uint8)
    data[at] = 1
    return data


@pytest.mark.parametrize(
    ("space", "to_lps"),
    [
        ("left-posterior-superior", np.array([1.0, 1.0, 1.0])),
        ("right-anterior-superior", np.array([-1.0, -1.0, 1.0])),
        ("left-anterior-superior", np.array([1.0, -1.0, 1.0])),
    ],
)
def test_marker_lands_at_its_world_position(tmp_path, space, to_lps):
    ijk = np.array([2, 3, 4])
    labels = read_nrrd_labels(write(tmp_path / "m.nrrd", _marker(), space))
    assert labels.geometry.orientation == ("L", "P", "S")
    world_in_space = DIRECTIONS.T @ ijk + ORIGIN  # row a of 'space directions' = axis a
    found = np.argwhere(labels.data == 1)
    assert found.shape == (1, 3)
    world = labels.geometry.index_to_world(found[0])
    assert np.allclose(world, world_in_space * to_lps)


def test_mask_on_an_image_grid_and_mismatches(tmp_path):
    labels = read_nrrd_labels(write(tmp_path / "m.nrrd", _marker()))
    image = Volume(np.zeros(labels.data.shape, np.int16), labels.geometry)
    on_image = read_nrrd_labels(tmp_path / "m.nrrd", image)
    assert on_image.geometry is image.geometry and on_image.source.warnings == ()

    shifted = write(tmp_path / "s.nrrd", _marker(), origin=ORIGIN + np.array([0.0, 0.0, 10.0]))
    assert any("origin" in w for w in read_nrrd_labels(shifted, image).source.warnings)

    other = write(tmp_path / "o.nrrd", _marker((9, 11, 8)))
    with pytest.raises(ImageReadError, match=r"\(8, 11, 9\).*\(7, 11, 9\)"):
        read_nrrd_labels(other, image)


def test_values_are_checked_and_mappable(tmp_path):
    data = _marker()
    data[0, 0, 0] = 7
    p = write(tmp_path / "v.nrrd", data)
    with pytest.raises(ImageReadError, match="unexpected label values 7"):
        read_nrrd_labels(p)
    assert int(read_nrrd_labels(p, keep={1: 1}).data.sum()) == 1


def test_unsupported_space_and_non_nrrd_are_clear(tmp_path):
    p = write(tmp_path / "x.nrrd", _marker(), space="scanner-xyz")
    with pytest.raises(ImageReadError, match="space 'scanner-xyz' is not supported"):
        read_nrrd_labels(p)
    junk = tmp_path / "junk.nrrd"
    junk.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(ImageReadError, match="not a readable NRRD"):
        read_nrrd_labels(junk)


def test_volume_reading_keeps_int16(tmp_path):
    data = np.arange(9 * 11 * 7, dtype=np.int32).reshape(9, 11, 7) - 300
    vol = read_nrrd(write(tmp_path / "ct.nrrd", data))
    assert vol.data.dtype == np.int16
    assert vol.shape == (7, 11, 9)
    assert vol.data[2, 3, 4] == data[4, 3, 2]  # LPS space: memory (z, y, x) = file (k, j, i)
    assert isinstance(vol.geometry, Geometry)


@pytest.mark.realdata
def test_dcmqi_liver_seg_nrrd():
    p = shared_path("dcmqi-ct3slice", "data", "segmentations", "liver_seg.nrrd")
    labels = read_nrrd_labels(p)
    assert labels.data.shape == (3, 512, 512)  # 512x512x3 on disk
    assert labels.source.file_shape == (512, 512, 3)
    assert labels.geometry.spacing == pytest.approx((1.0, 0.810547, 0.810547))
    assert int(labels.data.sum()) == 107098


@pytest.mark.realdata
def test_dcmqi_masks_align_with_their_ct_slices():
    dicom = pytest.importorskip("livgui.imageio.dicom")
    seg = shared_path("dcmqi-ct3slice", "data", "segmentations")
    vol = dicom.read_dicom_series(seg / "ct-3slice")
    liver = read_nrrd_labels(seg / "liver_seg.nrrd", vol)
    assert liver.source.warnings == ()
    spine_file = read_nrrd_labels(seg / "liver_spine_seg.nrrd", vol, keep={1: 1})
    np.testing.assert_array_equal(spine_file.data, liver.data)
    assert 0 < float(vol.data[liver.data > 0].mean()) < 160  # measured 37 HU
