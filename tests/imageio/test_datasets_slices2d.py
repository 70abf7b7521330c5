"""2D image + mask slice folders: msd-liver-2d flip/mirror undo, RGB masks, duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from livgui.imageio.errors import ImageReadError
from livgui.imageio.slices2d import (
    is_slice_folder,
    list_slice_refs,
    load_slice_case,
    load_slice_cases,
    read_mask_image,
    to_radiological,
)


def _radiological_slice(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A radiological axial view: liver block on the image's left, 'spine' at the bottom."""
    grey = np.zeros((n, n), dtype=np.uint8)
    grey[8:56, 6:58] = 40  # body
    grey[14:34, 8:28] = 110  # liver: patient's right = image left, anterior-ish
    grey[46:54, 28:36] = 255  # spine: posterior = bottom
    mask = np.zeros((n, n), dtype=np.uint8)
    mask[14:34, 8:28] = 255
    return grey, mask


def _as_exported(view: np.ndarray) -> np.ndarray:
    """Inverse of the radiological transform: how the dataset's exporter held the slice."""
    return np.ascontiguousarray(np.rot90(view, 2).T)


def _write_msd_folder(root: Path, transforms=("flipped",), name="10007_42", fmt="png") -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    grey, mask = _radiological_slice()
    for transform in transforms:
        op = ImageOps.flip if transform == "flipped" else ImageOps.mirror
        for arr, sub in ((grey, "images"), (mask, "masks")):
            img = op(Image.fromarray(_as_exported(arr)))
            img.save(root / sub / f"{transform}_{name}.{fmt}")
    return root


@pytest.mark.parametrize("transform", ["flipped", "mirrored"])
def test_flip_and_mirror_are_undone_into_the_radiological_view(tmp_path, transform):
    root = _write_msd_folder(tmp_path, (transform,))
    assert is_slice_folder(root)
    (ref,) = list_slice_refs(root)
    case = load_slice_case(ref)
    grey, mask = _radiological_slice()
    assert case.volume.shape == (1, 64, 64)
    np.testing.assert_array_equal(case.volume.data[0], grey.astype(np.int16))
    np.testing.assert_array_equal(case.reference.data[0], (mask > 0).astype(np.uint8))
    assert case.case_id == "10007_42" and case.patient_id == "10007"
    assert case.volume.spacing == (1.5, 1.5, 1.5)
    assert "".join(case.volume.geometry.orientation) == "LPS"
    assert any("1.5 mm assumed" in w for w in case.warnings)
    assert any("HU clipped to [0, 255]" in w for w in case.warnings)


def test_naive_reading_without_the_undo_puts_the_liver_elsewhere(tmp_path):
    """The transform matters: the stored file alone has the liver at another place."""
    root = _write_msd_folder(tmp_path, ("flipped",))
    stored = np.asarray(Image.open(root / "masks" / "flipped_10007_42.png")) > 127
    loaded = load_slice_case(list_slice_refs(root)[0]).reference.data[0] > 0
    assert (stored & loaded).sum() < 0.5 * loaded.sum()
    # liver centroid on the image's left (patient's right) only after the undo
    assert np.nonzero(loaded)[1].mean() < 32


def test_both_copies_of_one_slice_collapse_into_one_case(tmp_path):
    root = _write_msd_folder(tmp_path, ("flipped", "mirrored"))
    refs = list_slice_refs(root)
    assert len(refs) == 1
    assert refs[0].extra["transform"] == "flipped"
    assert [Path(p).name for p in refs[0].extra["duplicates"]] == ["mirrored_10007_42.png"]
    case = load_slice_case(refs[0])
    assert any("one copy kept" in w for w in case.warnings)
    # the dropped copy gives the same pixels once its own transform is undone
    dup = np.asarray(Image.open(refs[0].extra["duplicates"][0]))
    np.testing.assert_array_equal(to_radiological(dup, "mirrored"), case.volume.data[0])


def test_jpeg_masks_are_thresholded_at_127(tmp_path):
    root = _write_msd_folder(tmp_path, ("mirrored",), fmt="jpg")
    case = load_slice_case(list_slice_refs(root)[0])
    _, mask = _radiological_slice()
    assert set(np.unique(case.reference.data).tolist()) <= {0, 1}
    agreement = (case.reference.data[0] == (mask > 0)).mean()
    assert agreement > 0.99


def test_rgb_masks_blue_liver_red_tumour_plane_unknown(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((20, 30), 90, np.uint8)).save(tmp_path / "images" / "10019_5.png")
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[2:10, 2:10] = (0, 0, 255)
    rgb[4:6, 4:6] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "masks" / "10019_5.png")
    (ref,) = list_slice_refs(tmp_path)
    case = load_slice_case(ref)
    assert case.patient_id == "10019" and case.case_id == "10019_5"
    assert case.volume.shape == (1, 20, 30)
    counts = np.bincount(case.reference.data.ravel(), minlength=3)
    assert counts.tolist() == [600 - 64, 64 - 4, 4]
    assert any(w.startswith("not axial: plane unknown") for w in case.warnings)
    assert any("not HU" in w for w in case.warnings)


def test_grey_png_label_masks_keep_their_values(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    labels[1:4, 1:4] = 1
    labels[2, 2] = 2
    Image.fromarray(labels).save(tmp_path / "m.png")
    out, how = read_mask_image(tmp_path / "m.png")
    np.testing.assert_array_equal(out, labels)
    assert "labels" in how


def test_image_without_mask_and_corrupt_image(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "a_1.png")
    (tmp_path / "images" / "b_2.png").write_bytes(b"not a png at all")
    refs = list_slice_refs(tmp_path)
    assert [r.case_id for r in refs] == ["a_1", "b_2"]
    assert refs[0].reference_path is None
    case = load_slice_case(refs[0])
    assert case.reference is None and any("no mask" in w for w in case.warnings)
    with pytest.raises(ImageReadError, match=r"b_2\.png: not a readable"):
        load_slice_case(refs[1])


def test_mask_of_another_size_is_refused(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "x_1.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "masks" / "x_1.png")
    with pytest.raises(ImageReadError, match="differ in size"):
        load_slice_case(list_slice_refs(tmp_path)[0])


def test_many_slices_in_one_call_report_progress_and_cancel(tmp_path):
    for i in range(5):
        _write_msd_folder(tmp_path, ("flipped",), name=f"10001_{i}")
    refs = list_slice_refs(tmp_path)
    assert [r.case_id for r in refs] == [f"10001_{i}" for i in range(5)]
    seen: list[float] = []
    cases = load_slice_cases(refs, progress=lambda f, m: seen.append(f))
    assert len(cases) == 5 and seen[-1] == 1.0
    from livgui.core.progress import Cancelled

    with pytest.raises(Cancelled):
        load_slice_cases(refs, cancel=lambda: True)
