"""``livgui library add|list`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import livgui.library.adding as adding
from livgui.cli.cmd_library import default_library_dir
from livgui.cli.main import main
from tests.library.test_library import _make_cases, fake_lister, fake_loader


@pytest.fixture
def fake_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adding, "default_lister", fake_lister)
    monkeypatch.setattr(adding, "default_loader", fake_loader)


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_add_then_list(tmp_path: Path, capsys, fake_readers) -> None:
    _make_cases(tmp_path / "data", 5, corrupt=1)
    lib = tmp_path / "lib"
    code, doc, _ = _run(capsys, "library", "add", str(tmp_path / "data"), "--library", str(lib))
    assert code == 0
    assert doc["counts"]["added"] == 5 and doc["counts"]["unreadable"] == 1
    assert doc["library"] == str(lib.resolve())
    code, doc, _ = _run(capsys, "library", "list", "--library", str(lib))
    assert code == 0 and [c["case_id"] for c in doc["cases"]][:2] == ["case_000", "case_001"]
    assert doc["cases"][0]["status"] == "unreadable" and doc["cases"][0]["error"]
    code, doc, _ = _run(capsys, "library", "list", "--library", str(lib), "--status", "new")
    assert len(doc["cases"]) == 4


def test_env_variable_chooses_the_library(
    tmp_path: Path, capsys, fake_readers, monkeypatch
) -> None:
    monkeypatch.setenv("LIVGUI_LIBRARY", str(tmp_path / "envlib"))
    assert default_library_dir() == tmp_path / "envlib"
    _make_cases(tmp_path / "data", 2, corrupt=0)
    code, _doc, _ = _run(capsys, "library", "add", str(tmp_path / "data"))
    assert code == 0 and (tmp_path / "envlib" / "catalogue.sqlite").is_file()
    monkeypatch.delenv("LIVGUI_LIBRARY")
    assert default_library_dir().name == "library"


def test_missing_path_is_an_error(tmp_path: Path, capsys) -> None:
    code, doc, err = _run(
        capsys, "library", "add", str(tmp_path / "nope"), "--library", str(tmp_path / "l")
    )
    assert code == 1 and doc is None and "nope" in err
