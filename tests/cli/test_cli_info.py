"""``livgui info``: facts per case and per label, with the readers stood in by fakes.

The real readers are exercised on ../shared/data in test_cli_realdata.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import livgui.imageio
from livgui.cli.cmd_info import label_stats
from livgui.cli.main import main
from livgui.core import Geometry, LabelMap, SourceInfo, Volume
from livgui.imageio.errors import ImageReadError
from tests.conftest import make_phantom


@dataclass(frozen=True)
class Ref:
    case_id: str
    image_path: Path
    reference_path: Path | None = None
    layout: str = "fake"


@dataclass
class Case:
    volume: Volume
    reference: LabelMap | None
    warnings: list[str] = field(default_factory=list)


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_label_stats_by_hand() -> None:
    g = Geometry.from_spacing((2, 2, 2), (2.0, 1.0, 0.5))
    hu = Volume(np.array([[[0, 10], [20, 30]], [[100, 110], [-50, 70]]], np.int16), g)
    labels = LabelMap(np.array([[[0, 0], [0, 0]], [[1, 1], [2, 1]]], np.uint8), g)
    stats = label_stats(labels, hu)
    assert stats["liver"] == {"voxels": 3, "volume_ml": 3 * 0.001, "mean_hu": 280 / 3}
    assert stats["lesion"]["mean_hu"] == -50.0
    assert stats["liver_including_lesions"]["mean_hu"] == pytest.approx(230 / 4)
    assert stats["background"]["mean_hu"] == 15.0


def test_info_on_a_dataset_lists_cases_and_labels(tmp_path, capsys, monkeypatch) -> None:
    vol, ref = make_phantom()
    vol.source = SourceInfo(str(tmp_path / "a.nii.gz"), "nifti", warnings=("qform differs",))
    refs = [Ref("a", tmp_path / "a.nii.gz", tmp_path / "a_seg.nii.gz"), Ref("b", tmp_path / "b")]

    def load_case(r: Ref) -> Case:
        if r.case_id == "b":
            raise ImageReadError(r.image_path, "file is incomplete or corrupt")
        return Case(vol, ref, ["labels remapped"])

    monkeypatch.setattr(livgui.imageio, "scan_dicom", None, raising=False)
    monkeypatch.setattr(livgui.imageio, "list_cases", lambda p: refs, raising=False)
    monkeypatch.setattr(livgui.imageio, "load_case", load_case, raising=False)
    code, doc, _ = _run(capsys, "info", str(tmp_path))
    assert code == 0 and doc["cases_found"] == 2
    a, b = doc["cases"]
    assert a["image"]["shape_zyx"] == [24, 64, 64]
    assert a["image"]["spacing_zyx_mm"] == [2.5, 0.8, 0.8]
    assert a["image"]["orientation_memory"] == "LPS"
    assert a["image"]["warnings"] == ["qform differs"] and a["warnings"] == ["labels remapped"]
    lesion = a["labels"]["lesion"]
    assert lesion["voxels"] == int((ref.data == 2).sum())
    assert 30 < lesion["mean_hu"] < 50 and 90 < a["labels"]["liver"]["mean_hu"] < 110
    assert "incomplete or corrupt" in b["error"]
    assert doc["notice"].startswith("research use only")


def test_info_on_a_single_image(tmp_path, capsys, monkeypatch) -> None:
    vol, _ = make_phantom()
    (tmp_path / "ct.nii.gz").write_bytes(b"x")

    def list_cases(p):
        raise ImageReadError(p, "no dataset layout recognised")

    monkeypatch.setattr(livgui.imageio, "list_cases", list_cases, raising=False)
    monkeypatch.setattr(livgui.imageio, "load_case", lambda r: None, raising=False)
    monkeypatch.setattr(livgui.imageio, "load_image", lambda p: vol, raising=False)
    code, doc, _ = _run(capsys, "info", str(tmp_path / "ct.nii.gz"))
    assert code == 0 and doc["image"]["hu_range"][0] < -900
    assert "cases" not in doc


def test_info_errors(tmp_path, capsys, monkeypatch) -> None:
    code, doc, err = _run(capsys, "info", str(tmp_path / "missing"))
    assert code == 1 and doc is None and "missing" in err

    def broken(p):
        raise ImageReadError(p, "not a NIfTI file")

    (tmp_path / "junk.nii.gz").write_bytes(b"junk")
    monkeypatch.setattr(livgui.imageio, "list_cases", lambda p: [], raising=False)
    monkeypatch.setattr(livgui.imageio, "load_case", lambda r: None, raising=False)
    monkeypatch.setattr(livgui.imageio, "load_image", broken, raising=False)
    code, doc, err = _run(capsys, "info", str(tmp_path / "junk.nii.gz"))
    assert code == 1 and "junk.nii.gz: not a NIfTI file" in err


def test_label_stats_ignore_non_finite_voxels() -> None:
    g = Geometry.from_spacing((1, 1, 4))
    hu = Volume(np.array([[[np.nan, 100.0, 50.0, np.inf]]], np.float32), g)
    labels = LabelMap(np.array([[[1, 1, 2, 0]]], np.uint8), g)
    stats = label_stats(labels, hu)
    assert stats["liver"] == {"voxels": 2, "volume_ml": 0.002, "mean_hu": 100.0}
    assert stats["liver_including_lesions"]["mean_hu"] == 75.0
    assert stats["background"]["mean_hu"] is None  # its only voxel is Inf
