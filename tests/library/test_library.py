"""The case library: adding folders with corrupt and duplicate cases, status, masks, audit."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from livgui.core import Geometry, LabelMap, Volume
from livgui.core.progress import Cancelled, CancelToken
from livgui.imageio.errors import ImageReadError
from livgui.library import Library, sanitize_case_id, source_sha256
from livgui.library.catalogue import CATALOGUE_NAME, SCHEMA_VERSION, connect


@dataclass(frozen=True)
class FakeRef:
    case_id: str
    image_path: Path
    reference_path: Path | None = None
    layout: str = "fake"


@dataclass
class FakeCase:
    volume: Volume
    reference: LabelMap | None
    warnings: list[str] = field(default_factory=list)


def fake_lister(path: Path) -> list[FakeRef]:
    """Every ``*.case`` file is a case; ids from the file stem (as a layout would)."""
    if path.is_file():
        return [FakeRef(path.stem, path)]
    if not path.is_dir():
        raise ImageReadError(path, "no such file or folder")
    return [FakeRef(p.stem, p) for p in sorted(path.rglob("*.case"))]


def fake_loader(ref: FakeRef) -> FakeCase:
    data = Path(ref.image_path).read_bytes()
    if not data.startswith(b"CT"):
        raise ImageReadError(ref.image_path, "file is incomplete or corrupt")
    g = Geometry.from_spacing((4, 5, 6), (2.0, 0.5, 0.5))
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 1:4, 1:4] = 1
    labels[2, 2, 2] = 2
    vol = Volume(np.full((4, 5, 6), 40, np.int16), g)
    return FakeCase(vol, LabelMap(labels, g), ["a note"])


def _make_cases(folder: Path, n: int, corrupt: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"case_{i:03d}.case"
        p.write_bytes((b"XX" if i < corrupt else b"CT") + f" case {i}".encode())
        paths.append(p)
    return paths


@pytest.fixture
def lib(tmp_path: Path):
    library = Library.open(tmp_path / "lib")
    yield library
    library.close()


def _add(lib: Library, path: Path, **kw):
    return lib.add_path(path, lister=fake_lister, loader=fake_loader, **kw)


def test_folder_with_corrupt_and_duplicate_cases(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "data"
    paths = _make_cases(src, 10, corrupt=2)
    shutil.copy(paths[5], src / "zz_copy_of_5.case")  # same bytes, other name
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    mtimes = {p: p.stat().st_mtime_ns for p in src.iterdir()}

    report = _add(lib, src)

    assert len(report.added) == 10
    assert [u["case_id"] for u in report.unreadable] == ["case_000", "case_001"]
    assert "incomplete or corrupt" in report.unreadable[0]["error"]
    assert str(paths[0]) in report.unreadable[0]["error"]
    assert report.duplicates == [
        {
            "case_id": "zz_copy_of_5",
            "source": str((src / "zz_copy_of_5.case").resolve()),
            "existing_case_id": "case_005",
            "existing_status": "new",
        }
    ]
    statuses = {c.case_id: c.status for c in lib.list_cases()}
    assert statuses["case_000"] == "unreadable" and statuses["case_009"] == "new"
    usable = lib.list_cases(status="new")
    assert len(usable) == 8
    assert usable[0].info["shape_zyx"] == [4, 5, 6]
    assert usable[0].info["reference_voxels"] == {"0": 102, "1": 17, "2": 1}
    # sources untouched (content and modification time); case folders made under the root
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    assert mtimes == {p: p.stat().st_mtime_ns for p in src.iterdir()}
    assert (lib.root / "cases" / "case_003").is_dir()
    json_doc = report.to_json()
    assert json_doc["counts"] == {
        "added": 10,
        "readable": 8,
        "unreadable": 2,
        "duplicates": 1,
        "errors": 0,
    }


def test_adding_the_same_folder_twice_adds_nothing(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "data"
    _make_cases(src, 4, corrupt=1)
    _add(lib, src)
    again = _add(lib, src)
    assert again.added == [] and len(again.duplicates) == 4
    assert len(lib.list_cases()) == 4
    # a reopened library remembers everything
    lib.close()
    with Library.open(lib.root) as reopened:
        assert len(reopened.list_cases()) == 4
        assert len(reopened.audit_log()) == 4


def test_same_id_other_content_gets_a_unique_id(lib: Library, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _make_cases(a, 1, 0)
    b.mkdir()
    (b / "case_000.case").write_bytes(b"CT different bytes")
    _add(lib, a)
    report = _add(lib, b)
    assert report.added == ["case_000-2"]
    assert report.renamed == [{"from": "case_000", "to": "case_000-2"}]


def test_unsafe_ids_from_headers_never_reach_paths(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "one.case"
    src.write_bytes(b"CT x")
    refs = [FakeRef("../../etc/passwd", src)]
    report = lib.add_path(tmp_path, lister=lambda p: refs, loader=fake_loader)
    (case_id,) = report.added
    assert "/" not in case_id and ".." not in case_id
    assert (lib.root / "cases" / case_id).parent == lib.root / "cases"
    for raw in ("1.2.840/113619:2", "..", "", "CON", "a" * 200, "Ärzt Fall"):
        safe = sanitize_case_id(raw)
        assert safe and len(safe) <= 64
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in safe)
        assert not safe.startswith(".") and ".." not in safe
    assert sanitize_case_id("volume-17") == "volume-17"
    long_id = "liver-tumor-2d-kaggle/projects/TensorFlowFlexUNet/3D-Liver-Tumor/mini_test/10019_122"
    assert "10019_122_" in sanitize_case_id(long_id)
    assert sanitize_case_id("a/b") != sanitize_case_id("a:b")


def test_a_path_that_is_no_dataset_is_reported(lib: Library, tmp_path: Path) -> None:
    report = _add(lib, tmp_path / "missing")
    assert report.added == [] and "no such file" in report.errors[0]["error"]


def test_a_folder_without_cases_says_so(lib: Library, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing to see")
    report = _add(lib, tmp_path)
    assert report.added == [] and "no case LivGUI can read" in report.errors[0]["error"]


def test_unhashable_source_is_unreadable_not_fatal(lib: Library, tmp_path: Path) -> None:
    good = tmp_path / "good.case"
    good.write_bytes(b"CT good")
    refs = [FakeRef("gone", tmp_path / "gone.case"), FakeRef("good", good)]
    report = lib.add_path(tmp_path, lister=lambda p: refs, loader=fake_loader)
    assert report.added == ["gone", "good"]
    assert lib.get("gone").status == "unreadable" and lib.get("good").status == "new"


def test_cancel_stops_between_cases_and_keeps_the_added(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "data"
    _make_cases(src, 5, 0)
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.4:
            token.cancel()

    with pytest.raises(Cancelled):
        _add(lib, src, progress=progress, cancel=token)
    assert [c.case_id for c in lib.list_cases()] == ["case_000", "case_001", "case_002"]


def test_status_transitions_are_checked_and_audited(lib: Library, tmp_path: Path) -> None:
    _make_cases(tmp_path / "d", 2, corrupt=1)
    _add(lib, tmp_path / "d")
    assert lib.set_status("case_001", "predicted", model_id="unet-v1").status == "predicted"
    lib.set_status("case_001", "corrected")
    lib.set_status("case_001", "approved")
    with pytest.raises(ValueError, match="'approved' to 'new'"):
        lib.set_status("case_001", "new")
    lib.set_status("case_001", "corrected")  # reopened
    with pytest.raises(ValueError, match="from 'unreadable'"):
        lib.set_status("case_000", "predicted")
    with pytest.raises(ValueError, match="unknown status"):
        lib.set_status("case_001", "done")
    with pytest.raises(KeyError, match="nope"):
        lib.set_status("nope", "predicted")
    actions = [(e.action, e.details.get("to")) for e in lib.audit_log("case_001")]
    assert actions == [
        ("add", None),
        ("status", "predicted"),
        ("status", "corrected"),
        ("status", "approved"),
        ("status", "corrected"),
    ]
    entry = lib.audit_log("case_001")[1]
    assert entry.details["model_id"] == "unet-v1" and entry.who
    assert entry.at_utc.endswith("+00:00")
    with pytest.raises(ValueError, match="unreadable"):
        lib.set_training("case_000", True)
    assert lib.set_training("case_001", True).use_for_training
    assert lib.audit_log("case_001")[-1].action == "include in training"


def test_audit_is_append_only_even_through_raw_sql(lib: Library, tmp_path: Path) -> None:
    lib.audit(None, "open library", note="x", ratio=float("nan"))
    db = sqlite3.connect(lib.root / CATALOGUE_NAME)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET who = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
    finally:
        db.close()
    (entry,) = lib.audit_log()
    assert entry.action == "open library" and entry.details == {"note": "x", "ratio": None}
    assert "research use only" in (lib.root / "README.txt").read_text()


def test_masks_are_recorded_inside_the_root_with_hash(lib: Library, tmp_path: Path) -> None:
    _make_cases(tmp_path / "d", 1, 0)
    _add(lib, tmp_path / "d")
    folder = lib.case_dir("case_000")
    mask = folder / "final.nii.gz"
    mask.write_bytes(b"mask bytes")
    rec = lib.record_mask("case_000", "final", mask)
    assert rec.path == "cases/case_000/final.nii.gz"
    assert rec.sha256 == hashlib.sha256(b"mask bytes").hexdigest()
    assert lib.mask_path(rec) == mask.resolve()
    outside = tmp_path / "elsewhere.nii.gz"
    outside.write_bytes(b"m")
    with pytest.raises(ValueError, match="under the library root"):
        lib.record_mask("case_000", "original", outside)
    ref = lib.record_mask("case_000", "reference", outside)
    assert Path(ref.path).is_absolute()
    with pytest.raises(ValueError, match="unknown mask kind"):
        lib.record_mask("case_000", "draft", mask)
    assert [m.kind for m in lib.masks("case_000")] == ["final", "reference"]
    saves = [e for e in lib.audit_log("case_000") if e.action == "save mask"]
    assert saves[0].details["sha256"] == rec.sha256


def test_folder_hash_is_order_free_and_content_sensitive(tmp_path: Path) -> None:
    d = tmp_path / "series"
    d.mkdir()
    for i in range(3):
        (d / f"IM{i}.dcm").write_bytes(bytes([i]) * 10)
    h1 = source_sha256(d)
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    os.utime(copy / "IM1.dcm", (0, 0))
    assert source_sha256(copy) == h1
    (copy / "IM1.dcm").write_bytes(b"\x01" * 9 + b"\x02")
    assert source_sha256(copy) != h1
    assert source_sha256(d / "IM0.dcm") == hashlib.sha256(b"\x00" * 10).hexdigest()


def test_newer_catalogue_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    Library.open(root).close()
    db = sqlite3.connect(root / CATALOGUE_NAME)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer LivGUI"):
        connect(root / CATALOGUE_NAME)
    conn = sqlite3.connect(root / CATALOGUE_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.skipif(
    importlib.util.find_spec("livgui.imageio.datasets") is None,
    reason="dataset readers not present yet",
)
def test_real_readers_on_an_msd_folder(lib: Library, tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    src = tmp_path / "Task03_Liver"
    (src / "imagesTr").mkdir(parents=True)
    (src / "labelsTr").mkdir()
    aff = np.diag([0.8, 0.8, 2.5, 1])
    for i in range(3):
        ct = np.full((8, 9, 4), i * 10, np.int16)
        seg = np.zeros((8, 9, 4), np.uint8)
        seg[2:5, 2:5, 1:3] = 1
        nib.save(nib.Nifti1Image(ct, aff), src / "imagesTr" / f"liver_{i}.nii.gz")
        nib.save(nib.Nifti1Image(seg, aff), src / "labelsTr" / f"liver_{i}.nii.gz")
    raw = (src / "imagesTr" / "liver_2.nii.gz").read_bytes()
    (src / "imagesTr" / "liver_2.nii.gz").write_bytes(raw[: len(raw) // 2])  # row 1
    report = lib.add_path(src)
    assert report.added == ["liver_0", "liver_1", "liver_2"], report.to_json()
    (bad,) = report.unreadable
    assert bad["case_id"] == "liver_2" and "liver_2.nii.gz" in bad["error"]
    good = lib.get("liver_0")
    assert good.status == "new" and good.layout == "msd"
    assert good.reference_path == str((src / "labelsTr" / "liver_0.nii.gz").resolve())
    assert good.info["reference_voxels"]["1"] == 18
