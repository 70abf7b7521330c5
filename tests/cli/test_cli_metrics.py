"""``livgui metrics``: JSON on stdout, clear errors, orientation-safe mask reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from livgui.cli.main import main


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib = pytest.importorskip("nibabel")
    aff = np.diag([0.8, 0.8, 2.5, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(data.astype(np.uint8), aff), path)
    return path


def _labels(shift: int = 0) -> np.ndarray:
    a = np.zeros((30, 30, 12), np.uint8)  # file order (i, j, k)
    a[5 + shift : 15 + shift, 5:15, 2:8] = 1
    a[8 + shift : 11 + shift, 8:11, 4:6] = 2
    return a


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_identical_masks_give_dice_one(tmp_path: Path, capsys) -> None:
    ref = _save(tmp_path / "ref.nii.gz", _labels())
    code, doc, _ = _run(capsys, "metrics", str(ref), str(ref))
    assert code == 0
    m = doc["metrics"]
    assert m["liver"]["dice"] == 1.0 and m["lesion"]["dice"] == 1.0
    assert m["liver"]["hd95_mm"] == 0.0
    assert m["lesion_detection"]["at_threshold"]["recall"] == 1.0
    assert doc["notice"].startswith("research use only")
    assert len(doc["lesions"]["reference"]) == 1
    assert doc["study_slice_metrics"]["liver"]["all"]["dice"] == 1.0


def test_shifted_mask_scores_below_one_with_mm_distances(tmp_path: Path, capsys) -> None:
    ref = _save(tmp_path / "ref.nii.gz", _labels())
    pred = _save(tmp_path / "pred.nii", _labels(shift=2))
    code, doc, _ = _run(capsys, "metrics", str(ref), str(pred), "--connectivity", "6")
    assert code == 0
    liver = doc["metrics"]["liver"]
    assert liver["dice"] == pytest.approx(0.8)
    assert liver["hausdorff_mm"] == pytest.approx(2 * 0.8)  # 2 voxels along i (0.8 mm)
    assert doc["metrics"]["lesion_detection"]["connectivity"] == 6


def test_same_world_content_in_another_orientation_matches(tmp_path: Path, capsys) -> None:
    ras = np.diag([0.8, 0.8, 2.5, 1.0])
    ref = _save(tmp_path / "ras.nii.gz", _labels(), ras)
    las = ras.copy()
    las[0, 0] = -0.8
    las[0, 3] = 0.8 * 29  # flipped first axis covering the same world box
    flipped = _save(tmp_path / "las.nii.gz", _labels()[::-1], las)
    code, doc, _ = _run(capsys, "metrics", str(ref), str(flipped))
    assert code == 0 and doc["metrics"]["liver"]["dice"] == 1.0


def test_errors_are_a_message_and_non_zero_exit(tmp_path: Path, capsys) -> None:
    ref = _save(tmp_path / "ref.nii.gz", _labels())
    other = _save(tmp_path / "small.nii.gz", np.zeros((4, 4, 4)))
    code, doc, err = _run(capsys, "metrics", str(ref), str(other))
    assert code == 1 and doc is None
    assert "different grids" in err and "Traceback" not in err
    code, _, err = _run(capsys, "metrics", str(ref), str(tmp_path / "missing.nii.gz"))
    assert code == 1 and "missing.nii.gz" in err
    bad = _save(tmp_path / "bad.nii.gz", np.full((30, 30, 12), 7))
    code, _, err = _run(capsys, "metrics", str(ref), str(bad))
    assert code == 1 and "bad.nii.gz" in err and "7" in err
    with pytest.raises(SystemExit):
        main(["metrics", str(ref), str(ref), "--connectivity", "18"])
    with pytest.raises(SystemExit):
        main(["metrics", str(ref), str(ref), "--prediction-values", "5:3"])
    assert "LABEL 1 (liver) or 2 (lesion)" in capsys.readouterr().err


def test_value_mapping_turns_other_values_into_background(tmp_path: Path, capsys) -> None:
    ref = _save(tmp_path / "ref.nii.gz", _labels())
    model = _labels() * 3  # a model that writes liver as 3 and lesion as 6
    model[0, 0, 0] = 9  # another organ: must become background
    pred = _save(tmp_path / "model.nii.gz", model)
    code, doc, err = _run(capsys, "metrics", str(ref), str(pred), "--prediction-values", "3:1,6:2")
    assert code == 0, err
    assert doc["metrics"]["liver"]["dice"] == 1.0 and doc["metrics"]["lesion"]["dice"] == 1.0
