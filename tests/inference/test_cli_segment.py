"""``livgui segment`` / ``livgui models`` end to end on NIfTI files in several orientations.

The saved mask is compared *in the file's own array order* with thresholds computed on
the file's array: a flip, transpose or crop offset anywhere on the way fails the Dice.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from livgui.cli.main import run_headless
from livgui.models.preprocess import Preprocessing
from tests.inference.oracles import (
    BODY_HU,
    BONE_HU,
    dice,
    install_oracles,
    largest_6_connected,
    synthetic_ct,
    temp_store,
)

AFFINES = {
    "RAS": np.diag([0.9, 1.1, 2.0, 1.0]),
    "LAS": np.diag([-0.9, 1.1, 2.0, 1.0]),
    "LPI-permuted": np.array([[0, 0, -2.0, 0], [0, -1.1, 0, 0], [-0.9, 0, 0, 0], [0, 0, 0, 1]]),
}


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    root = tmp_path / "models"
    monkeypatch.setenv("LIVGUI_MODELS_DIR", str(root / "user"))
    monkeypatch.setenv("LIVGUI_BUNDLED_MODELS", str(root / "bundled"))
    # stage 1 on a 2x coarser grid (the CT below is 128 x 112 in-plane), stage 2 native
    coarse = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=(64, 56))
    return install_oracles(temp_store(root), liver_prep=coarse)


def _write_ct(path, affine) -> np.ndarray:
    # any 3-D array works as file data; the synthetic anatomy just has to be asymmetric
    data = synthetic_ct((14, 128, 112), (2.0, 1.0, 1.0)).data.transpose(2, 1, 0).copy()
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return data


@pytest.mark.parametrize("orientation", sorted(AFFINES))
def test_segment_writes_aligned_masks_and_reports(tmp_path, store_env, capsys, orientation):
    src = tmp_path / f"ct_{orientation}.nii.gz"
    file_data = _write_ct(src, AFFINES[orientation])
    out = tmp_path / "out"
    argv = ["segment", str(src), "--out", str(out), "--device", "cpu"]
    argv += ["--liver-model", "oracle-liver", "--lesion-model", "oracle-lesion"]
    assert run_headless(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["notice"] == "research use only, not for diagnosis"
    (case,) = summary["cases"]
    mask_img = nib.load(case["mask"])
    assert np.allclose(mask_img.affine, AFFINES[orientation])
    mask = np.asarray(mask_img.dataobj)
    assert mask.dtype == np.uint8 and mask.shape == file_data.shape
    body = largest_6_connected(file_data > BODY_HU)
    assert dice(mask > 0, body) >= 0.98
    assert dice(mask == 2, (file_data > BONE_HU) & body) >= 0.98
    report = json.loads((out / f"ct_{orientation}.json").read_text())
    assert report["notice"] == "research use only, not for diagnosis"
    assert report["models"]["liver"].startswith("oracle-liver@")
    assert report["device"].startswith("cpu")
    assert {"liver_inference", "lesion_inference", "total"} <= set(report["timings_s"])
    assert "metrics" not in report


def test_segment_with_reference_reports_metrics(tmp_path, store_env, capsys):
    src = tmp_path / "ct.nii.gz"
    data = _write_ct(src, AFFINES["LAS"])
    # the one-stage mode has no largest-component step: plain thresholds
    ref = (data > BODY_HU).astype(np.uint8) + (data > BONE_HU).astype(np.uint8)
    nib.save(nib.Nifti1Image(ref, AFFINES["LAS"]), str(tmp_path / "ref.nii.gz"))
    argv = ["segment", str(src), "--out", str(tmp_path / "o"), "--model", "oracle-onestage"]
    argv += ["--reference", str(tmp_path / "ref.nii.gz"), "--device", "cpu"]
    assert run_headless(argv) == 0
    report = json.loads((tmp_path / "o" / "ct.json").read_text())
    metrics = json.dumps(report["metrics"])
    assert report["models"] == {"onestage": report["models"]["onestage"]}
    assert "dice" in metrics
    assert report["metrics"]["liver"]["dice"] >= 0.98


def test_segment_batch_continues_past_a_bad_case(tmp_path, store_env, capsys):
    folder = tmp_path / "cases"
    folder.mkdir()
    _write_ct(folder / "good.nii.gz", AFFINES["RAS"])
    bad = np.full((20, 20, 6), np.nan, dtype=np.float32)
    nib.save(nib.Nifti1Image(bad, AFFINES["RAS"]), str(folder / "nan.nii.gz"))
    argv = ["segment", str(folder), "--out", str(tmp_path / "o"), "--liver-model", "oracle-liver"]
    assert run_headless([*argv, "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    cases = {c["case_id"]: c for c in json.loads(captured.out)["cases"]}
    assert "NaN/Inf" in cases["nan"]["error"] and "mask" in cases["good"]
    assert "NaN/Inf" in captured.err


def test_segment_without_a_model_or_with_an_unknown_one_is_a_clear_error(
    tmp_path, store_env, capsys
):
    src = tmp_path / "ct.nii.gz"
    _write_ct(src, AFFINES["RAS"])
    assert run_headless(["segment", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "choose a model" in capsys.readouterr().err
    assert run_headless(["segment", str(src), "--out", str(tmp_path / "o"), "--model", "nope"]) == 1
    assert "no model bundle of that name" in capsys.readouterr().err


def test_models_lists_bundles_and_architectures(store_env, capsys):
    assert run_headless(["models"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {b["name"]: b for b in doc["bundles"]}
    assert set(names) == {"oracle-liver", "oracle-lesion", "oracle-onestage"}
    assert names["oracle-liver"]["stage"] == "liver" and names["oracle-liver"]["source"] == "user"
    assert {"oracle_threshold", "unet2d"} <= set(doc["architectures"])


def test_models_install_and_remove_subcommands(tmp_path, store_env, capsys):
    from livgui.models.oracle import oracle_bundle
    from livgui.models.store import ModelStore

    prep = Preprocessing(hu_window=(-1000.0, 1000.0), target_size=None)
    outside = ModelStore(user=tmp_path / "download", bundled=tmp_path / "none")
    folder = outside.install(*oracle_bundle("downloaded", "liver", (0.0,), prep)).path
    assert run_headless(["models", "install", str(folder)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["installed"].startswith("downloaded@")
    assert "downloaded" in {b["name"] for b in doc["bundles"]}
    assert run_headless(["models", "remove", "downloaded"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["removed"] == "downloaded"
    assert "downloaded" not in {b["name"] for b in doc["bundles"]}
    assert run_headless(["models", "install"]) == 1
    assert "needs a bundle FOLDER" in capsys.readouterr().err
    assert run_headless(["models", "install", str(tmp_path / "missing")]) == 1
    assert "no such bundle folder" in capsys.readouterr().err


def test_cases_of_the_same_id_in_two_inputs_never_overwrite_each_other(tmp_path, store_env, capsys):
    for site in ("siteA", "siteB"):
        (tmp_path / site).mkdir()
        _write_ct(tmp_path / site / "scan.nii.gz", AFFINES["RAS"])
    out = tmp_path / "o"
    argv = ["segment", str(tmp_path / "siteA"), str(tmp_path / "siteB"), "--out", str(out)]
    assert run_headless([*argv, "--liver-model", "oracle-liver", "--device", "cpu"]) == 0
    cases = json.loads(capsys.readouterr().out)["cases"]
    masks = [c["mask"] for c in cases]
    assert len(cases) == 2 and len(set(masks)) == 2
    assert all((out / m).exists() for m in masks)


def test_help_and_headless_commands_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from livgui.cli.main import build_parser; build_parser(); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
