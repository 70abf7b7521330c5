"""The ``livgui`` entry point: screenshot, headless routing without Qt, About and help."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtGui import QImage

from livgui import app
from tests.conftest import make_phantom, shared_path


def _phantom_nifti(tmp_path):
    nib = pytest.importorskip("nibabel")
    vol, lab = make_phantom((30, 80, 80))
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])  # RAS: i to the left, j posterior (as memory)
    ct = tmp_path / "ct.nii.gz"
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(vol.data, (2, 1, 0)).copy(), affine), ct)
    nib.save(nib.Nifti1Image(np.transpose(lab.data, (2, 1, 0)).copy(), affine), mask)
    return ct, mask


def test_screenshot_writes_a_png_of_the_requested_size(qapp, tmp_path, capsys):
    ct, mask = _phantom_nifti(tmp_path)
    out = tmp_path / "shot.png"
    code = app.main(
        [
            "screenshot",
            str(ct),
            "--out",
            str(out),
            "--labels",
            str(mask),
            "--plane",
            "coronal",
            "--slice",
            "30",
            "--layout",
            "1",
            "--size",
            "900x700",
        ]
    )
    assert code == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (900, 700)
    doc = json.loads(capsys.readouterr().out)
    assert doc["screenshot"] == str(out.resolve()) and doc["notice"]
    # not a blank window: the CT and the overlay give many distinct colours
    colours = {image.pixel(x, y) for x in range(0, 900, 7) for y in range(0, 700, 7)}
    assert len(colours) > 50


def test_screenshot_of_a_missing_path_fails_cleanly(qapp, tmp_path, capsys):
    code = app.main(["screenshot", str(tmp_path / "none.nii.gz"), "--out", str(tmp_path / "x.png")])
    assert code == 1
    assert "none.nii.gz" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.realdata
def test_screenshot_of_ircadb(qapp, tmp_path):
    path = shared_path("ircadb-17")
    out = tmp_path / "ircadb.png"
    assert app.main(["screenshot", str(path), "--out", str(out), "--size", "1200x800"]) == 0
    assert QImage(str(out)).size().width() == 1200


def test_headless_commands_never_import_qt():
    code = (
        "import sys; from livgui import app\n"
        "try:\n    app.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules, 'Qt imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "livgui" in result.stdout


def test_about_lists_versions_and_licences(qapp):
    from livgui.ui.dialogs import AboutDialog

    dialog = AboutDialog()
    names = [
        dialog.versions_table.item(r, 0).text() for r in range(dialog.versions_table.rowCount())
    ]
    assert {"LivGUI", "Python", "Qt", "PySide6", "pyqtgraph", "numpy"} <= set(names)
    licences = {
        dialog.licences_table.item(r, 0).text(): dialog.licences_table.item(r, 1).text()
        for r in range(dialog.licences_table.rowCount())
    }
    assert licences["livgui"] == "Apache-2.0"


def test_help_sheet_names_the_controls(qapp):
    from livgui.ui.dialogs import CONTROLS, HelpDialog

    dialog = HelpDialog()
    assert dialog.table.rowCount() == len(CONTROLS)
    text = " ".join(a + " " + b for a, b in CONTROLS)
    for word in ("wheel", "Right drag", "Page Up", "window presets", "outline", "lesion"):
        assert word in text


def test_series_picker_lists_series_and_returns_the_choice(qtbot):
    from livgui.ui.dialogs import SeriesPickerDialog

    series = [
        {"label": "CT abdomen", "modality": "CT", "n_files": 120, "shape": (120, 512, 512)},
        {
            "label": "scout",
            "modality": "CT",
            "n_files": 1,
            "shape": (1, 512, 512),
            "is_localizer": True,
        },
    ]
    dialog = SeriesPickerDialog(series, "/data/study")
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 2
    assert "localizer" in dialog.table.item(1, 4).text()
    dialog.table.selectRow(1)
    assert dialog.chosen() is series[1]


def test_paths_open_the_window_and_commands_go_headless(monkeypatch, tmp_path):
    opened, headless = [], []
    monkeypatch.setattr(
        app, "run_gui", lambda path=None, labels=None: opened.append((path, labels)) or 0
    )
    monkeypatch.setattr(
        "livgui.cli.main.run_headless", lambda argv: headless.append(list(argv)) or 0
    )
    ct = tmp_path / "ct.nii.gz"
    ct.write_bytes(b"")
    assert app.main([]) == 0
    assert app.main([str(ct)]) == 0
    assert app.main(["open", str(ct), "--labels", "m.nii.gz"]) == 0
    assert app.main(["info", str(ct)]) == 0
    assert opened == [(None, None), (str(ct), None), (str(ct), "m.nii.gz")]
    assert headless == [["info", str(ct)]]
