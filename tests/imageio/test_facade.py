"""The one-call facade: load_image / load_mask / save_mask / list_series by content."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import livgui.imageio as imageio
from livgui.core.volume import LabelMap
from livgui.imageio import (
    ImageReadError,
    SeriesChoiceRequired,
    list_series,
    load_image,
    load_mask,
    save_mask,
)
from tests.conftest import make_phantom
from tests.imageio.dicom_factory import CORONAL, SliceSpec, phantom_hu, write_series, write_slice


def _nifti(path: Path, memory: np.ndarray) -> Path:
    """Memory (z, y, x) LPS -> NIfTI stored RAS (x and y reversed)."""
    arr = np.ascontiguousarray(np.transpose(memory, (2, 1, 0))[::-1, ::-1])
    nib.save(nib.Nifti1Image(arr, np.diag([0.8, 0.8, 2.5, 1.0])), path)
    return path


def test_import_is_light():
    code = (
        "import sys, livgui.imageio; "
        "print(sorted(m for m in ('pydicom', 'nibabel', 'PIL', 'highdicom', 'nrrd') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_facade_reexports_errors_and_records():
    assert issubclass(SeriesChoiceRequired, ImageReadError)
    assert imageio.MissingDecoderError is not None and imageio.ImageWriteError is not None
    assert imageio.SeriesInfo.__name__ == "SeriesInfo"  # resolved lazily
    with pytest.raises(AttributeError):
        _ = imageio.no_such_name


def test_nifti_image_and_mask_round_trip_through_save_mask(tmp_path):
    vol, labels = make_phantom(shape=(6, 20, 24))
    image = _nifti(tmp_path / "ct.nii.gz", vol.data)
    loaded = load_image(image)
    np.testing.assert_array_equal(loaded.data, vol.data)
    mask_path = _nifti(tmp_path / "mask.nii.gz", labels.data)
    mask = load_mask(mask_path, loaded)
    np.testing.assert_array_equal(mask.data, labels.data)
    out = tmp_path / "saved.nii.gz"
    digest = save_mask(mask, out, loaded)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    np.testing.assert_array_equal(load_mask(out, loaded).data, labels.data)
    # keep= picks values of a multi-label map
    multi = np.where(labels.data > 0, 5, 0).astype(np.uint8)
    multi[0, 0, 0] = 3
    picked = load_mask(_nifti(tmp_path / "multi.nii.gz", multi), loaded, keep={5: 1})
    np.testing.assert_array_equal(picked.data, (labels.data > 0).astype(np.uint8))


def test_content_not_name_decides(tmp_path):
    vol, _ = make_phantom(shape=(4, 10, 12))
    odd = _nifti(tmp_path / "scan.nii.gz", vol.data).rename(tmp_path / "scan.data")
    np.testing.assert_array_equal(load_image(odd).data, vol.data)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"\x00" * 2000)
    with pytest.raises(ImageReadError, match=r"junk\.nii\.gz"):
        load_image(junk)
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "absent.nii")


def test_dicom_folder_and_zip(tmp_path):
    hu = phantom_hu(n=5, rows=16, cols=18)
    write_series(tmp_path / "series", hu)
    vol = load_image(tmp_path / "series")
    assert vol.shape == (5, 16, 18)
    np.testing.assert_array_equal(vol.data, hu)
    with zipfile.ZipFile(tmp_path / "series.zip", "w") as zf:
        for f in sorted((tmp_path / "series").iterdir()):
            zf.write(f, f"series/{f.name}")
    np.testing.assert_array_equal(load_image(tmp_path / "series.zip").data, hu)


def test_several_series_raise_a_choice_without_the_localizer(tmp_path):
    study = tmp_path / "study"
    write_series(study / "a", phantom_hu(n=4, rows=12, cols=14), series_uid="1.1")
    write_series(study / "b", phantom_hu(n=6, rows=12, cols=14, seed=1), series_uid="1.2")
    loc = np.full((12, 14), 1000, np.uint16)
    write_slice(
        study / "loc" / "x.dcm",
        SliceSpec(loc, (0.0, 0.0, 0.0), orientation=CORONAL, series_uid="1.3",
                  image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
    )  # fmt: skip
    with pytest.raises(SeriesChoiceRequired) as err:
        load_image(study)
    listed = err.value.series_list
    assert {s.series_uid for s in listed} == {"1.1", "1.2", "1.3"}
    assert "holds 2 image series" in str(err.value)
    assert [s.series_uid for s in list_series(study)][-1] == "1.3"  # localizer last
    chosen = next(s for s in listed if s.series_uid == "1.2")
    assert load_image(study, series=chosen).shape == (6, 12, 14)
    assert load_image(study, series="1.1").shape == (4, 12, 14)
    with pytest.raises(ImageReadError, match="no series"):
        load_image(study, series="9.9")


def test_one_series_plus_localizer_opens_without_asking(tmp_path):
    write_series(tmp_path, phantom_hu(n=4, rows=12, cols=14), series_uid="1.1")
    loc = np.full((12, 14), 1000, np.uint16)
    write_slice(
        tmp_path / "loc.dcm",
        SliceSpec(loc, (0.0, 0.0, 0.0), orientation=CORONAL, series_uid="1.3",
                  image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")),
    )  # fmt: skip
    assert load_image(tmp_path).shape == (4, 12, 14)


def test_dicom_mask_series_0_255_onto_the_ct(tmp_path):
    hu = phantom_hu(n=4, rows=12, cols=14)
    write_series(tmp_path / "ct", hu, series_uid="1.1")
    mask = np.zeros(hu.shape, np.int16)
    mask[1:3, 3:8, 4:9] = 255
    write_series(tmp_path / "mask", mask, series_uid="1.2", intercept=0.0)
    ct = load_image(tmp_path / "ct")
    labels = load_mask(tmp_path / "mask", ct)
    np.testing.assert_array_equal(labels.data, (mask > 0).astype(np.uint8))
    with pytest.raises(ImageReadError, match="needs the image"):
        load_mask(_png(tmp_path / "pngs", 2), None)


def _png(folder: Path, n: int) -> Path:
    folder.mkdir()
    for k in range(n):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / f"m_{k}.png")
    return folder


def test_png_mask_for_a_one_slice_image(tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6)
    Image.fromarray(grey).save(tmp_path / "img.png")
    mask = np.zeros((5, 6), np.uint8)
    mask[1:3, 2:5] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    vol = load_image(tmp_path / "img.png")
    assert vol.shape == (1, 5, 6)
    assert any("plane unknown" in w for w in vol.source.warnings)
    labels = load_mask(tmp_path / "mask.png", vol)
    np.testing.assert_array_equal(labels.data[0], mask > 0)


def test_case_folder_opens_as_image_and_as_reference(tmp_path):
    vol, labels = make_phantom(shape=(5, 12, 14))
    case = tmp_path / "s0042"
    (case / "segmentations").mkdir(parents=True)
    _nifti(case / "ct.nii.gz", vol.data)
    _nifti(case / "segmentations" / "liver.nii.gz", (labels.data > 0).astype(np.uint8))
    image = load_image(case)
    np.testing.assert_array_equal(image.data, vol.data)
    ref = load_mask(case, image)
    assert isinstance(ref, LabelMap)
    np.testing.assert_array_equal(ref.data, (labels.data > 0).astype(np.uint8))
    assert imageio.detect_layout(case) == "totalsegmentator"
    assert [r.case_id for r in imageio.list_cases(case)] == ["s0042"]


def test_unreadable_mask_names_the_file(tmp_path):
    vol, _ = make_phantom(shape=(4, 10, 12))
    (tmp_path / "notes.txt").write_text("not a mask")
    with pytest.raises(ImageReadError, match=r"notes\.txt: not a mask"):
        load_mask(tmp_path / "notes.txt", vol)


def test_a_case_folder_reference_on_another_grid_is_warned_and_put_on_the_image_grid(tmp_path):
    import nibabel as nib
    import numpy as np

    from livgui.core import Geometry, Volume

    vol, ref = make_phantom((6, 24, 24))
    case = tmp_path / "case"
    case.mkdir()
    aff = np.diag([-0.8, -0.8, 2.5, 1.0])
    nib.save(nib.Nifti1Image(np.transpose(vol.data, (2, 1, 0)), aff), case / "volume-1.nii")
    other = aff.copy()
    other[:3, 3] = (30.0, 0.0, 0.0)  # same shape, shifted 30 mm
    seg = np.transpose(ref.data, (2, 1, 0))
    nib.save(nib.Nifti1Image(seg, other), case / "segmentation-1.nii")
    image = load_image(case / "volume-1.nii")
    mask = load_mask(case, like=image)
    assert mask.geometry is image.geometry
    assert any("origin" in w for w in mask.source.warnings)
    shorter = Volume(image.data[:-1], Geometry(image.data[:-1].shape, image.geometry.affine))
    with pytest.raises(ImageReadError, match="shape"):
        load_mask(case, like=shorter)
