"""``livgui metrics`` / ``info`` / ``library`` on the real CT in ../shared/data (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import livgui.imageio
from livgui.cli.cmd_metrics import load_labels
from livgui.cli.main import main
from livgui.core.geometry import ras_to_lps
from livgui.core.volume import LabelMap
from tests.conftest import shared_path

pytestmark = pytest.mark.realdata


def _need_readers() -> None:
    for name in ("list_cases", "load_case"):
        if getattr(livgui.imageio, name, None) is None:
            pytest.skip(f"livgui.imageio.{name} not available yet")


def _metrics(capsys, ref: Path, pred: Path) -> dict:
    code = main(["metrics", str(ref), str(pred)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)["metrics"]


def _write_shifted(labels: LabelMap, path: Path, shift_voxels: int, axis: int) -> Path:
    """The label map shifted along a memory axis, saved as NIfTI on the same grid."""
    nib = pytest.importorskip("nibabel")
    shifted = np.roll(labels.data, shift_voxels, axis=axis)
    file_data = np.ascontiguousarray(shifted.transpose(2, 1, 0))  # (x, y, z) index order
    nib.save(nib.Nifti1Image(file_data, ras_to_lps(labels.geometry.affine)), path)
    return path


def test_totalsegmentator_liver_against_itself_and_a_shifted_copy(tmp_path, capsys) -> None:
    liver = shared_path("totalsegmentator", "subjects", "s0009", "segmentations", "liver.nii.gz")
    same = _metrics(capsys, liver, liver)
    assert same["liver"]["dice"] == 1.0 and same["liver"]["hd95_mm"] == 0.0
    assert same["liver"]["reference_ml"] > 100  # a partial liver, still well over 100 ml
    labels = load_labels(liver)
    shifted = _write_shifted(labels, tmp_path / "shifted.nii.gz", 2, axis=2)  # 2 voxels in x
    moved = _metrics(capsys, liver, shifted)
    assert 0.8 < moved["liver"]["dice"] < 1.0
    assert moved["liver"]["hausdorff_mm"] == pytest.approx(2 * labels.geometry.spacing[2])


def test_ircadb17_reference_against_itself_and_a_shifted_copy(tmp_path, capsys) -> None:
    case = shared_path("ircadb-17")
    _need_readers()
    same = _metrics(capsys, case, case)
    assert same["liver"]["dice"] == 1.0 and same["lesion"]["dice"] == 1.0
    assert same["lesion_detection"]["reference_lesions"] >= 1
    assert same["lesion_detection"]["at_threshold"]["recall"] == 1.0
    labels = load_labels(case)
    shifted = _write_shifted(labels, tmp_path / "shifted.nii.gz", 1, axis=0)  # one slice
    moved = _metrics(capsys, case, shifted)
    assert moved["liver"]["dice"] < 1.0 and moved["lesion"]["dice"] < 1.0
    assert moved["liver"]["hausdorff_mm"] == pytest.approx(labels.geometry.spacing[0], rel=0.01)


def test_ircadb17_info_liver_hu(capsys) -> None:
    case = shared_path("ircadb-17")
    _need_readers()
    code = main(["info", str(case)])
    out, err = capsys.readouterr()
    assert code == 0, err
    (info,) = json.loads(out)["cases"]
    assert info["image"]["shape_zyx"] == [119, 512, 512]
    assert 40 < info["labels"]["liver_including_lesions"]["mean_hu"] < 160
    assert info["labels"]["lesion"]["voxels"] > 0


def test_library_adds_the_real_subjects(tmp_path, capsys) -> None:
    subjects = shared_path("totalsegmentator", "subjects")
    _need_readers()
    code = main(["library", "add", str(subjects), "--library", str(tmp_path / "lib")])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["counts"]["readable"] == 3, doc


def test_dcmqi_nrrd_and_dicom_seg_livers_agree(capsys) -> None:
    seg = shared_path("dcmqi-ct3slice", "data", "segmentations")
    code = main(
        [
            "metrics",
            str(seg / "liver_seg.nrrd"),
            str(seg / "liver.dcm"),
            "--image",
            str(seg / "ct-3slice"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    liver = json.loads(out)["metrics"]["liver"]
    assert liver["dice"] > 0.99 and 60 < liver["reference_ml"] < 80


def test_totalsegmentator_model_outputs_with_value_mapping(capsys) -> None:
    ref = shared_path("totalsegmentator", "reference_files", "example_seg.nii.gz")
    fast = ref.with_name("example_seg_fast.nii.gz")
    code = main(
        ["metrics", str(ref), str(fast), "--reference-values", "5:1", "--prediction-values", "5:1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    liver = json.loads(out)["metrics"]["liver"]
    assert 0.9 < liver["dice"] < 1.0 and liver["reference_ml"] > 500
    assert liver["hd95_mm"] is not None and liver["hd95_mm"] >= 0.0
