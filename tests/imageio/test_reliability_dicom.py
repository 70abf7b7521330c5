"""RELIABILITY rows 10-22: bad DICOM input gives a clear message; the rest keeps working.

Every bad input is built inside the test with pydicom (tests/imageio/dicom_factory.py).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless, RLELossless, generate_uid

from livgui.imageio import dicom_decode
from livgui.imageio.dicom import read_dicom_series, scan_dicom
from livgui.imageio.errors import ImageReadError, MissingDecoderError
from livgui.imageio.safepaths import safe_name
from tests.imageio.dicom_factory import (
    CORONAL,
    SliceSpec,
    phantom_hu,
    write_series,
    write_slice,
)


def _only(path: Path):
    series = scan_dicom(path).series
    assert len(series) == 1, [s.label for s in series]
    return series[0]


# ---------------------------------------------------------------- row 10: missing slice


def test_row10_missing_slice_is_reported_with_its_position(tmp_path: Path) -> None:
    hu = phantom_hu(8)
    paths = write_series(tmp_path, hu, step=2.0, origin=(0.0, 0.0, 100.0))
    paths[4].unlink()  # slice at z = 108 mm
    info = _only(tmp_path)
    assert any("missing slice" in p and "106.00" in p and "110.00" in p for p in info.problems)
    with pytest.raises(ImageReadError, match=r"missing slice.*106\.00 mm and 110\.00 mm"):
        read_dicom_series(info)
    vol = read_dicom_series(info, allow_gaps=True)
    assert vol.shape[0] == 7
    assert vol.source is not None and vol.source.header["nonuniform"] is True
    assert any("missing slice" in w for w in vol.source.warnings)


# ---------------------------------------------------------------- row 11: duplicates


def test_row11_identical_duplicate_is_dropped_with_a_note(tmp_path: Path) -> None:
    hu = phantom_hu(6)
    paths = write_series(tmp_path, hu)
    shutil.copy(paths[2], tmp_path / "copy_of_slice.dcm")
    vol = read_dicom_series(tmp_path)
    assert vol.shape[0] == 6
    assert vol.source is not None
    assert any("identical duplicate" in w and "copy_of_slice.dcm" in w for w in vol.source.warnings)
    np.testing.assert_array_equal(vol.data, hu)


def test_row11_conflicting_duplicate_names_both_files(tmp_path: Path) -> None:
    hu = phantom_hu(6)
    paths = write_series(tmp_path, hu, step=2.0, origin=(0.0, 0.0, 0.0))
    other = (hu[2] + 500 + 1024).astype(np.uint16)
    write_slice(tmp_path / "impostor.dcm", SliceSpec(other, (0.0, 0.0, 4.0), intercept=-1024))
    with pytest.raises(ImageReadError) as err:
        read_dicom_series(tmp_path)
    text = str(err.value)
    assert "conflicting duplicate" in text
    assert "impostor.dcm" in text and paths[2].name in text


# ---------------------------------------------------------------- row 12: spacing


def test_row12_float_noise_in_positions_is_tolerated(tmp_path: Path) -> None:
    hu = phantom_hu(8)
    rng = np.random.default_rng(1)
    positions = [(0.0, 0.0, 2.5 * k + rng.uniform(-0.005, 0.005)) for k in range(8)]
    write_series(tmp_path, hu, positions=positions)
    vol = read_dicom_series(tmp_path)
    assert vol.source is not None
    assert vol.source.header["nonuniform"] is False
    assert not any("non-uniform" in w for w in vol.source.warnings)
    assert vol.spacing[0] == pytest.approx(2.5, abs=0.01)


def test_row12_real_nonuniform_spacing_is_warned_and_flagged(tmp_path: Path) -> None:
    hu = phantom_hu(8)
    z = [0.0, 2.0, 4.0, 6.0, 9.0, 11.0, 13.0, 15.0]  # one 3 mm step among 2 mm steps
    write_series(tmp_path, hu, positions=[(0.0, 0.0, v) for v in z])
    info = _only(tmp_path)
    assert any("non-uniform" in p for p in info.problems)
    vol = read_dicom_series(info)
    assert vol.source is not None
    assert vol.source.header["nonuniform"] is True
    assert any("non-uniform slice spacing" in w for w in vol.source.warnings)


# ---------------------------------------------------------------- row 13: tilt


def test_row13_gantry_tilt_is_detected_from_positions(tmp_path: Path) -> None:
    hu = phantom_hu(6)
    angle = np.radians(15.0)
    # No GantryDetectorTilt tag: only the geometry shows the shear.
    positions = [(0.0, 2.0 * k * np.tan(angle), 2.0 * k) for k in range(6)]
    write_series(tmp_path, hu, positions=positions)
    info = _only(tmp_path)
    assert any("tilt" in p for p in info.problems)
    vol = read_dicom_series(info)
    assert vol.source is not None
    assert vol.source.header["tilt_deg"] == pytest.approx(15.0, abs=0.05)
    assert any("gantry tilt" in w for w in vol.source.warnings)
    # The sheared affine puts every slice where its header says.
    for k in range(6):
        world = vol.geometry.index_to_world(np.array([k, 0.0, 0.0]))
        np.testing.assert_allclose(world, positions[k], atol=1e-4)


# ---------------------------------------------------------------- row 14: several series


def test_row14_two_series_and_localizers_are_listed_never_merged(tmp_path: Path) -> None:
    hu = phantom_hu(6)
    write_series(tmp_path / "a", hu, series_uid="1.2.3.10", description="arterial")
    write_series(tmp_path / "b", hu[:5] + 7, series_uid="1.2.3.20", description="venous")
    # A localizer inside series A (same UID, other orientation, tagged) ...
    loc = (np.zeros((32, 40)) + 1024).astype(np.uint16)
    write_slice(
        tmp_path / "a" / "scout.dcm",
        SliceSpec(loc, (0.0, 0.0, 0.0), orientation=CORONAL, series_uid="1.2.3.10",
                  image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), intercept=-1024),
    )  # fmt: skip
    # ... and an untagged one with its own UID, told apart by orientation alone.
    write_slice(
        tmp_path / "scout2.dcm",
        SliceSpec(
            loc, (0.0, 5.0, 0.0), orientation=CORONAL, series_uid="1.2.3.30", intercept=-1024
        ),
    )
    series = scan_dicom(tmp_path).series
    main = [s for s in series if not s.is_localizer]
    localizers = [s for s in series if s.is_localizer]
    assert sorted(s.n_files for s in main) == [5, 6]
    assert len(localizers) == 2
    assert len({s.key for s in series}) == 4
    assert all("localizer" in s.label for s in localizers)
    with pytest.raises(ImageReadError, match="holds 2 image series, pick one"):
        read_dicom_series(tmp_path)
    venous = next(s for s in main if s.description == "venous")
    vol = read_dicom_series(venous)
    np.testing.assert_array_equal(vol.data, hu[:5] + 7)


# ---------------------------------------------------------------- rows 15, 16: decoders


def _j2k_series(folder: Path, hu: np.ndarray) -> list[Path]:
    return write_series(folder, hu, series_uid="1.2.3.99", transfer_syntax=JPEG2000Lossless)


def test_row15_missing_decoder_names_syntax_and_package(tmp_path: Path, monkeypatch) -> None:
    hu = phantom_hu(4)
    _j2k_series(tmp_path / "j2k", hu)
    write_series(tmp_path / "plain", hu, series_uid="1.2.3.1")
    real = dicom_decode.decoder_available
    monkeypatch.setattr(
        dicom_decode, "decoder_available", lambda uid: uid != JPEG2000Lossless and real(uid)
    )
    result = scan_dicom(tmp_path)
    assert [s.series_uid for s in result.undecodable] == ["1.2.3.99"]
    j2k = result.undecodable[0]
    assert "JPEG 2000" in j2k.label and not j2k.decodable
    assert any("install" in p and "pylibjpeg-openjpeg" in p for p in j2k.problems)
    with pytest.raises(
        MissingDecoderError, match=r"this series is JPEG 2000: install .*pylibjpeg-openjpeg"
    ):
        read_dicom_series(j2k)
    plain = next(s for s in result.series if s.series_uid == "1.2.3.1")
    np.testing.assert_array_equal(read_dicom_series(plain).data, hu)


def test_row15_jpeg2000_decodes_when_the_plugin_is_there(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    _j2k_series(tmp_path, hu)
    vol = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(vol.data, hu)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_row16_corrupt_compressed_pixels_reported_per_file(tmp_path: Path, syntax: str) -> None:
    hu = phantom_hu(4)
    paths = write_series(tmp_path / "bad", hu, transfer_syntax=syntax)
    ds = pydicom.dcmread(paths[1])
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 3]])
    ds.save_as(paths[1])
    write_series(tmp_path / "good", hu, series_uid="1.2.3.5")
    result = scan_dicom(tmp_path)
    bad = next(s for s in result.series if s.series_uid == "1.2.3.4")
    with pytest.raises(ImageReadError) as err:
        read_dicom_series(bad)
    assert err.value.path == str(paths[1])
    assert "could not decode" in str(err.value)
    good = next(s for s in result.series if s.series_uid == "1.2.3.5")
    np.testing.assert_array_equal(read_dicom_series(good).data, hu)


# ---------------------------------------------------------------- row 17: rescale


def test_row17_missing_rescale_tags_mean_slope_1_intercept_0(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    for k in range(4):
        write_slice(
            tmp_path / f"s{k}.dcm",
            SliceSpec(hu[k], (0.0, 0.0, 2.0 * k), slope=None, intercept=None),
        )
    vol = read_dicom_series(tmp_path)
    assert vol.data.dtype == np.int16
    assert vol.data[0, 0, 0] == -1000
    assert vol.source is not None
    assert any("slope 1, intercept 0 assumed" in w for w in vol.source.warnings)


def test_row17_fractional_and_per_slice_slopes_give_hu_in_float(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    slopes = [0.5, 0.25, 1.0, 2.0]
    intercepts = [-1024.0, -1000.5, -1024.0, -2048.0]
    expected = np.zeros(hu.shape)
    for k in range(4):
        stored = np.round((hu[k] - intercepts[k]) / slopes[k]).astype(np.uint16)
        expected[k] = stored * slopes[k] + intercepts[k]
        spec = SliceSpec(stored, (0.0, 0.0, 2.0 * k), slope=slopes[k], intercept=intercepts[k])
        write_slice(tmp_path / f"s{k}.dcm", spec)
    vol = read_dicom_series(tmp_path)
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, expected, atol=1e-3)
    np.testing.assert_allclose(vol.data, hu, atol=1.0)  # slope 2 quantises to 1 HU
    air = vol.data[:, 0, 0]
    assert np.all(np.abs(air + 1000) < 1)
    assert vol.source is not None
    assert any("differ between slices" in w for w in vol.source.warnings)


def test_row17_integral_rescale_keeps_int16(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    write_series(tmp_path, hu, intercept=-1024.0)
    vol = read_dicom_series(tmp_path)
    assert vol.data.dtype == np.int16
    assert int(vol.data[0, 0, 0]) == -1000


# ---------------------------------------------------------------- row 18: outliers


def test_row18_rows_columns_outlier_is_named(tmp_path: Path) -> None:
    hu = phantom_hu(5)
    write_series(tmp_path, hu, step=2.0, origin=(0.0, 0.0, 0.0))
    small = np.full((16, 16), 1024, dtype=np.uint16)
    write_slice(tmp_path / "odd_size.dcm", SliceSpec(small, (0.0, 0.0, 10.0), intercept=-1024))
    with pytest.raises(ImageReadError) as err:
        read_dicom_series(tmp_path)
    assert err.value.path.endswith("odd_size.dcm")
    assert "16x16" in str(err.value) and "32x40" in str(err.value)


def test_row18_pixel_spacing_outlier_is_named(tmp_path: Path) -> None:
    hu = phantom_hu(5)
    write_series(tmp_path, hu, step=2.0, origin=(0.0, 0.0, 0.0))
    stored = (hu[0] + 1024).astype(np.uint16)
    spec = SliceSpec(stored, (0.0, 0.0, 10.0), intercept=-1024, pixel_spacing=(0.9, 0.9))
    write_slice(tmp_path / "odd_spacing.dcm", spec)
    with pytest.raises(ImageReadError, match="PixelSpacing") as err:
        read_dicom_series(tmp_path)
    assert err.value.path.endswith("odd_spacing.dcm")


# ---------------------------------------------------------------- rows 19, 20: confinement


def _record_opens(monkeypatch) -> list[str]:
    opened: list[str] = []
    real_open = dicom_decode.DicomStore.open

    def spy(self, name: str):
        opened.append(str(Path(name).resolve()) if self.archive is None else name)
        return real_open(self, name)

    monkeypatch.setattr(dicom_decode.DicomStore, "open", spy)
    return opened


def _write_dicomdir(path: Path, file_ids: list[list[str]]) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.FileSetID = "TEST"
    records = []
    for parts in file_ids:
        rec = Dataset()
        rec.DirectoryRecordType = "IMAGE"
        rec.ReferencedFileID = parts
        records.append(rec)
    ds.DirectoryRecordSequence = records
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.filterwarnings("ignore:.*VR CS:UserWarning")  # hostile IDs are invalid CS values
def test_row19_dicomdir_records_outside_the_root_are_refused(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "cd"
    hu = phantom_hu(4)
    paths = write_series(root / "IMG", hu)
    outside = write_series(tmp_path / "secret", phantom_hu(1, seed=3), series_uid="9.9")[0]
    (root / "LINK").symlink_to(outside)
    ids = [["IMG", p.name] for p in paths]
    ids += [["..", "secret", outside.name], ["LINK"], [str(outside)]]
    _write_dicomdir(root / "DICOMDIR", ids)
    opened = _record_opens(monkeypatch)
    before = sorted(os.listdir(tmp_path))
    result = scan_dicom(root / "DICOMDIR")
    assert len(result.refused) == 3
    assert [s.n_files for s in result.series] == [4]
    assert str(outside.resolve()) not in opened
    vol = read_dicom_series(result.series[0])
    np.testing.assert_array_equal(vol.data, hu)
    assert str(outside.resolve()) not in opened
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, copied or deleted
    walked = scan_dicom(root)  # the folder itself: the index is junk, the link refused
    assert walked.skip_counts() == {"DICOMDIR index": 1}
    assert [Path(p).name for p, _ in walked.refused] == ["LINK"]
    assert str(outside.resolve()) not in opened


def test_row20_archive_members_leaving_the_root_are_refused(tmp_path: Path, monkeypatch) -> None:
    hu = phantom_hu(4)
    paths = write_series(tmp_path / "src", hu)
    evil = write_slice(
        tmp_path / "evil.dcm",
        SliceSpec((hu[0] + 1024).astype(np.uint16), (0, 0, 2.0), intercept=-1024),
    )  # same position: would be a conflicting duplicate if read
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in paths:
            zf.write(p, f"series/{p.name}")
        zf.write(evil, "../evil.dcm")
        zf.writestr(zipfile.ZipInfo("/abs/evil.dcm"), evil.read_bytes())  # write() strips "/"
        zf.writestr(zipfile.ZipInfo("C:/evil.dcm"), evil.read_bytes())
        link = zipfile.ZipInfo("series/link.dcm")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    opened = _record_opens(monkeypatch)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    result = scan_dicom(archive)
    assert sorted(r[0].split(":", 1)[1] for r in result.refused) == [
        "../evil.dcm", "/abs/evil.dcm", "C:/evil.dcm", "series/link.dcm",
    ]  # fmt: skip
    assert not any("evil" in o or "link" in o for o in opened)
    vol = read_dicom_series(result.series[0])
    np.testing.assert_array_equal(vol.data, hu)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_row20_folder_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    hu = phantom_hu(4)
    write_series(tmp_path / "root", hu)
    outside = write_series(tmp_path / "other", phantom_hu(1), series_uid="7.7")[0]
    (tmp_path / "root" / "sneaky.dcm").symlink_to(outside)
    result = scan_dicom(tmp_path / "root")
    assert [r[0] for r in result.refused] == [str(tmp_path / "root" / "sneaky.dcm")]
    assert [s.series_uid for s in result.series] == ["1.2.3.4"]


# ---------------------------------------------------------------- row 21: header strings


@pytest.mark.filterwarnings("ignore:.*VR UI:UserWarning")  # the hostile UID is invalid
def test_row21_hostile_header_strings_never_become_paths(tmp_path: Path) -> None:
    hu = phantom_hu(3)
    src = tmp_path / "src"
    hostile = "../../etc/x:y/.."
    write_series(src, hu, series_uid="1.2/../3:4", description=hostile,
                 extra={"PatientID": "../../root:evil"})  # fmt: skip
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    info = _only(src)
    vol = read_dicom_series(info)
    np.testing.assert_array_equal(vol.data, hu)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing created anywhere
    for text in ("1.2/../3:4", hostile, "..", "/", ":", "", "a" * 500):
        name = safe_name(text)
        assert name and "/" not in name and "\\" not in name and ":" not in name
        assert not name.startswith(".") and len(name) <= 48
    assert safe_name("a/b") != safe_name("a:b")


# ---------------------------------------------------------------- row 22: preamble


def test_row22_executable_looking_preamble_still_loads(tmp_path: Path) -> None:
    hu = phantom_hu(3)
    for k in range(3):
        stored = (hu[k] + 1024).astype(np.uint16)
        spec = SliceSpec(
            stored, (0.0, 0.0, 3.0 * k), intercept=-1024, preamble=b"MZ\x90\x00" + b"\xcc" * 60
        )
        write_slice(tmp_path / f"s{k}.dcm", spec)
    assert (tmp_path / "s0.dcm").read_bytes()[:2] == b"MZ"
    vol = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(vol.data, hu)


def test_read_dicom_series_asks_for_a_choice_the_gui_can_show(tmp_path):
    """read_dicom_series uses the one series chooser: SeriesChoiceRequired, not a bare
    error, so the window can offer its picker."""
    from livgui.imageio import SeriesChoiceRequired
    from livgui.imageio.dicom import read_dicom_series

    write_series(tmp_path / "a", phantom_hu(4), series_uid="1.2.3.1")
    write_series(tmp_path / "b", phantom_hu(5), series_uid="1.2.3.2")
    with pytest.raises(SeriesChoiceRequired) as info:
        read_dicom_series(tmp_path)
    assert len(info.value.series_list) == 2
