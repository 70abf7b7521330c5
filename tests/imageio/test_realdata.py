"""Every case in ../shared/data, read through list_cases / load_case (skipped when absent).

Each case must come out in the memory convention (LPS, ``data[z, y, x]``) with plausible
HU, and its mask must sit on the image: liver voxels hold soft-tissue HU, the liver lies
on the patient's right (low x), and the same mask mirrored left-right would not.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from livgui.imageio import (
    detect_layout,
    list_cases,
    load_case,
    load_cases,
    load_image,
    load_mask,
)
from tests.conftest import SHARED_DATA, shared_path

pytestmark = pytest.mark.realdata

# case id -> (layout, shape (z, y, x), spacing (z, y, x) mm, liver mean HU range or None)
EXPECTED_3D = {
    "ct-3slice": ("dicom-with-masks", (3, 512, 512), (1.0, 0.8105, 0.8105), (20, 80)),
    # 3D-IRCADb-01 patient 17: portal-venous contrast, liver about 99 HU (README)
    "ircadb-17": ("ircadb", (119, 512, 512), (1.6, 0.743, 0.743), (90, 110)),
    # TotalSegmentator examples: phase_prediction.json says native for the NIfTI example
    "example_ct": ("totalsegmentator-examples", (112, 101, 122), (3.0, 3.0, 3.0), (30, 80)),
    "example_ct_sm": ("totalsegmentator-examples", (30, 101, 122), (3.0, 3.0, 3.0), (30, 80)),
    "example_ct_dicom": (
        "totalsegmentator-examples",
        (20, 512, 512),
        (2.0, 0.9766, 0.9766),
        (40, 160),
    ),
    "s0002": ("totalsegmentator", (101, 128, 185), (1.5, 1.5, 1.5), None),
    "s0003": ("totalsegmentator", (126, 127, 127), (1.5, 1.5, 1.5), None),
    "s0009": ("totalsegmentator", (185, 119, 119), (1.5, 1.5, 1.5), (40, 160)),
}


@pytest.fixture(scope="module")
def all_refs():
    if not SHARED_DATA.exists():
        pytest.skip(f"real data folder absent: {SHARED_DATA}")
    return list_cases(SHARED_DATA)


@pytest.fixture(scope="module")
def loaded_3d(all_refs):
    return {r.case_id: load_case(r) for r in all_refs if r.layout != "slices2d"}


@pytest.fixture(scope="module")
def msd2d(all_refs):
    refs = [r for r in all_refs if "msd-liver-2d" in str(r.image_path)]
    return refs, load_cases(refs)


def test_every_dataset_folder_is_found(all_refs):
    layouts = collections.Counter(r.layout for r in all_refs)
    # 511 msd-liver-2d slices + 18 Kaggle slices, and the 3D cases above
    assert layouts["slices2d"] == 511 + 18
    ids_3d = {r.case_id for r in all_refs if r.layout != "slices2d"}
    assert ids_3d == set(EXPECTED_3D)
    for ref in all_refs:
        if ref.case_id in EXPECTED_3D:
            assert ref.layout == EXPECTED_3D[ref.case_id][0]
    assert len({r.case_id for r in all_refs}) == len(all_refs)


def _liver(case):
    labels = case.reference if case.reference is not None else case.prediction
    return labels.data > 0 if labels is not None else None


@pytest.mark.parametrize("case_id", sorted(EXPECTED_3D))
def test_3d_case_geometry_hu_and_mask_on_the_image(loaded_3d, case_id):
    _, shape, spacing, liver_range = EXPECTED_3D[case_id]
    case = loaded_3d[case_id]
    vol = case.volume
    assert vol.shape == shape
    np.testing.assert_allclose(vol.spacing, spacing, atol=1e-3)
    assert "".join(vol.geometry.orientation) == "LPS"
    hu = vol.data.astype(np.float32)
    # air around the patient reads about -1000 HU (padding may go lower)
    air = hu[(hu > -1100) & (hu < -900)]
    assert air.size > 0.02 * hu.size and abs(float(np.median(air)) + 1000) < 40
    liver = _liver(case)
    if liver_range is None:
        assert liver is not None and not liver.any()
        assert any("no liver voxels" in w for w in case.warnings)
        return
    assert liver.any()
    mean_hu = float(hu[liver].mean())
    assert liver_range[0] < mean_hu < liver_range[1], mean_hu
    soft = ((hu[liver] > 0) & (hu[liver] < 200)).mean()
    mirrored = liver[:, :, ::-1]
    soft_mirrored = ((hu[mirrored] > 0) & (hu[mirrored] < 200)).mean()
    assert soft > 0.8 and soft > soft_mirrored + 0.1
    body_x = np.nonzero(hu > -300)[2].mean()
    assert np.nonzero(liver)[2].mean() < body_x  # patient's right = low x


def test_ircadb_liver_includes_the_tumours_as_label_2(loaded_3d):
    case = loaded_3d["ircadb-17"]
    counts = np.bincount(case.reference.data.ravel(), minlength=3)
    assert counts[1] > 1_000_000 and counts[2] > 100_000
    assert case.patient_id == "ircadb-17"
    assert any("livertumor1, livertumor2" in w for w in case.warnings)
    hu = case.volume.data
    # the lesions are hypodense against the enhanced liver
    assert hu[case.reference.data == 2].mean() < hu[case.reference.data == 1].mean() - 10
    # image_0 is the most caudal slice: it becomes z = 0 (z runs to superior)
    ref = next(r for r in list_cases(SHARED_DATA / "ircadb-17"))
    first = case.volume.source.header["files"][0]
    assert Path(first).name == "image_0" and ref.layout == "ircadb"


def test_ircadb_zipped_form_reads_the_same(tmp_path, loaded_3d):
    import tempfile
    import zipfile

    src = shared_path("ircadb-17")
    case_dir = tmp_path / "3Dircadb1.17"
    case_dir.mkdir()
    for part in ("PATIENT_DICOM", "MASKS_DICOM"):
        with zipfile.ZipFile(case_dir / f"{part}.zip", "w", zipfile.ZIP_STORED) as zf:
            for f in sorted((src / part).rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(src).as_posix())
    assert detect_layout(tmp_path) == "ircadb"
    (ref,) = list_cases(tmp_path)
    temp_root = Path(tempfile.gettempdir())
    before = set(temp_root.glob("livgui-ircadb-*"))
    zipped = load_case(ref)
    plain = loaded_3d["ircadb-17"]
    np.testing.assert_array_equal(zipped.volume.data, plain.volume.data)
    np.testing.assert_array_equal(zipped.reference.data, plain.reference.data)
    np.testing.assert_allclose(zipped.volume.geometry.affine, plain.volume.geometry.affine)
    assert set(temp_root.glob("livgui-ircadb-*")) == before  # private extraction removed
    assert sorted(p.name for p in case_dir.iterdir()) == ["MASKS_DICOM.zip", "PATIENT_DICOM.zip"]


def test_totalsegmentator_jpeg2000_dicom_and_its_las_mask_align(loaded_3d):
    case = loaded_3d["example_ct_dicom"]
    assert case.volume.source.format == "dicom"
    assert "JPEG 2000" in case.volume.source.header["transfer_syntax"]
    assert case.reference is None and case.prediction is not None
    assert any("not a manual reference" in w for w in case.warnings)
    pred = case.prediction
    # stored LAS: the y axis of the file runs anterior, so reading it needed a flip
    assert pred.source.reorientation.flip != (False, False, False)
    np.testing.assert_allclose(
        pred.source.header["mask_affine_lps"], case.volume.geometry.affine, atol=1e-3
    )
    # the liver (label 5) lands on liver tissue: enhanced soft tissue, patient's right
    hu = case.volume.data
    liver = pred.data == 1
    assert 40 < hu[liver].mean() < 160
    assert np.median(hu[liver]) > hu[liver[:, ::-1, :]].mean() + 30  # not flipped A/P


def test_totalsegmentator_dicom_example_is_not_the_nifti_scan(loaded_3d):
    """No voxel comparison with example_ct: the two examples cover disjoint world z."""
    dcm = loaded_3d["example_ct_dicom"].volume.geometry
    nii = loaded_3d["example_ct"].volume.geometry
    dz = sorted(dcm.index_to_world(np.array([[0, 0, 0], [dcm.shape[0] - 1, 0, 0]]))[:, 2])
    nz = sorted(nii.index_to_world(np.array([[0, 0, 0], [nii.shape[0] - 1, 0, 0]]))[:, 2])
    assert dz[1] < nz[0] or nz[1] < dz[0]


def test_totalsegmentator_examples_are_predictions_not_references(loaded_3d):
    for case_id in ("example_ct", "example_ct_sm"):
        case = loaded_3d[case_id]
        assert case.reference is None and case.prediction.data.any()
        assert any("model output" in w for w in case.warnings)
    s9 = loaded_3d["s0009"]
    assert s9.reference is not None and s9.prediction is None


def test_dicom_seg_equals_the_nrrd_voxel_for_voxel(loaded_3d):
    folder = shared_path("dcmqi-ct3slice", "data", "segmentations")
    case = loaded_3d["ct-3slice"]
    nrrd_liver = load_mask(folder / "liver_seg.nrrd", case.volume)
    seg_liver = load_mask(folder / "liver.dcm", case.volume)
    spine = load_mask(folder / "liver_spine_seg.nrrd", case.volume)
    assert nrrd_liver.data.sum() == 107098
    np.testing.assert_array_equal(seg_liver.data, nrrd_liver.data)
    np.testing.assert_array_equal(spine.data, nrrd_liver.data)  # spine (2) -> background
    assert any("2 spine -> background" in w for w in spine.source.warnings)
    np.testing.assert_array_equal(case.reference.data, nrrd_liver.data)


def test_msd_liver_2d_all_files_load_as_distinct_slices(msd2d):
    refs, cases = msd2d
    n_files = len(list(shared_path("msd-liver-2d", "images").iterdir()))
    assert n_files == 527
    assert len(cases) == 511
    assert sum(len(r.extra["duplicates"]) for r in refs) == 16
    assert len({c.patient_id for c in cases}) == 98
    for case in cases:
        assert case.volume.shape == (1, 256, 256)
        assert case.reference.data.any(), case.case_id  # every slice contains liver


def test_msd_liver_2d_intensity_and_radiological_orientation(msd2d):
    _, cases = msd2d
    means = np.array([c.volume.data[c.reference.data > 0].mean() for c in cases])
    assert 80 < np.median(means) < 120
    assert np.mean((means > 40) & (means < 160)) > 0.95
    # liver on the image's left (patient's right) on every slice
    centroid_x = np.array([np.nonzero(c.reference.data[0])[1].mean() for c in cases])
    assert np.all(centroid_x < 128)
    # spine posterior (bottom): bright bone in the midline is mostly below the centre
    bottom = [
        (c.volume.data[0, 128:, 112:144] >= 250).sum()
        > (c.volume.data[0, :128, 112:144] >= 250).sum()
        for c in cases
    ]
    assert np.mean(bottom) > 0.9


def test_msd_liver_2d_flipped_and_mirrored_copies_agree(msd2d):
    from livgui.imageio.slices2d import read_mask_image, to_radiological

    refs, cases = msd2d
    by_id = {c.case_id: c for c in cases}
    for ref in (r for r in refs if r.extra["duplicates"]):
        (dup,) = ref.extra["duplicates"]
        mask, _ = read_mask_image(Path(dup.replace("/images/", "/masks/")))
        other = to_radiological(mask, "mirrored" if "mirrored_" in dup else "flipped")
        mine = by_id[ref.case_id].reference.data[0]
        dice = 2 * (mine & other).sum() / (mine.sum() + other.sum())
        assert dice > 0.9, ref.case_id


def test_kaggle_rgb_slices_are_labelled_not_axial(all_refs):
    refs = [r for r in all_refs if "liver-tumor-2d-kaggle" in str(r.image_path)]
    cases = load_cases(refs)
    assert len(cases) == 18
    assert len({c.patient_id for c in cases}) == 4
    for case in cases:
        assert any(w.startswith("not axial: plane unknown") for w in case.warnings)
        assert case.reference.data.any()
    assert sum(int((c.reference.data == 2).any()) for c in cases) >= 5  # red tumours


def test_facade_reads_real_sources(loaded_3d):
    folder = shared_path("dcmqi-ct3slice", "data", "segmentations")
    vol = load_image(folder / "ct-3slice")
    np.testing.assert_array_equal(vol.data, loaded_3d["ct-3slice"].volume.data)
    ts = shared_path("totalsegmentator", "subjects", "s0009")
    vol9 = load_image(ts)  # a case folder opens as its image
    assert vol9.shape == EXPECTED_3D["s0009"][1]
    ref9 = load_mask(ts, vol9)  # and as its reference
    np.testing.assert_array_equal(ref9.data, loaded_3d["s0009"].reference.data)
