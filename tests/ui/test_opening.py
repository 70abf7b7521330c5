"""Opening from every door: series picker, case library, drag and drop."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.conftest import make_phantom


def _nifti_case(folder):
    nib = pytest.importorskip("nibabel")
    folder.mkdir(parents=True, exist_ok=True)
    vol, lab = make_phantom((12, 32, 32))
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    ct = folder / "volume-7.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(vol.data, (2, 1, 0)).copy(), affine), ct)
    nib.save(
        nib.Nifti1Image(np.transpose(lab.data, (2, 1, 0)).copy(), affine),
        folder / "segmentation-7.nii.gz",
    )
    return ct


def test_a_folder_with_two_series_asks_which_one(window, qtbot, tmp_path, monkeypatch):
    factory = pytest.importorskip("tests.imageio.dicom_factory")
    study = tmp_path / "study"
    # two series mixed in one folder (as scanners export them)
    factory.write_series(
        study, factory.phantom_hu(n=4, rows=12, cols=14), series_uid="1.1", prefix="a"
    )
    factory.write_series(
        study, factory.phantom_hu(n=6, rows=12, cols=14, seed=1), series_uid="1.2", prefix="b"
    )
    offered = []

    def pick(parent, series_list, path):
        offered.extend(series_list)
        return next(s for s in series_list if s.series_uid == "1.2")

    monkeypatch.setattr("livgui.ui.main_window.dialogs.pick_series", pick)
    with qtbot.waitSignal(window.case_loaded, timeout=30000):
        window.open_path(study)
    assert {s.series_uid for s in offered} == {"1.1", "1.2"}
    assert window.session.volume.shape == (6, 12, 14)


def test_cancelling_the_series_choice_leaves_the_window_as_it_was(
    window, qtbot, tmp_path, monkeypatch
):
    factory = pytest.importorskip("tests.imageio.dicom_factory")
    study = tmp_path / "study"
    # two series mixed in one folder (as scanners export them)
    factory.write_series(
        study, factory.phantom_hu(n=4, rows=12, cols=14), series_uid="1.1", prefix="a"
    )
    factory.write_series(
        study, factory.phantom_hu(n=6, rows=12, cols=14, seed=1), series_uid="1.2", prefix="b"
    )
    monkeypatch.setattr("livgui.ui.main_window.dialogs.pick_series", lambda *a: None)
    with qtbot.waitSignal(window.load_cancelled, timeout=30000):
        window.open_path(study)
    assert not window.session.has_case


def test_a_folder_of_case_folders_lists_them_and_opens_the_first(window, qtbot, tmp_path):
    factory = pytest.importorskip("tests.imageio.dicom_factory")
    study = tmp_path / "study"
    factory.write_series(study / "a", factory.phantom_hu(n=4, rows=12, cols=14), series_uid="1.1")
    factory.write_series(
        study / "b", factory.phantom_hu(n=6, rows=12, cols=14, seed=1), series_uid="1.2"
    )
    with qtbot.waitSignal(window.case_loaded, timeout=30000):
        window.open_path(study)
    assert window.case_list.tree.topLevelItemCount() == 2
    assert window.session.volume.shape == (4, 12, 14)


def test_library_cases_are_listed_with_status_and_open(window, qtbot, tmp_path):
    from livgui.library.library import Library

    ct = _nifti_case(tmp_path / "lits")
    lib = Library.open(tmp_path / "library")
    lib.add_path(ct.parent)
    lib.close()
    window.case_list.open_library(tmp_path / "library")
    tree = window.case_list.tree
    assert tree.topLevelItemCount() == 1
    item = tree.topLevelItem(0)
    assert item.text(1)  # the review status is shown
    with qtbot.waitSignal(window.case_loaded, timeout=30000):
        window.case_list._activate(item)
    assert window.session.volume.shape == (12, 32, 32)
    assert window.session.layer("reference") is not None
    assert window.settings.value("library/root") == str((tmp_path / "library").resolve())


def test_dropping_a_file_opens_it(window, qtbot, tmp_path):
    ct = _nifti_case(tmp_path / "drop")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct))])
    event = QDropEvent(
        QPoint(200, 200),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.case_loaded, timeout=30000):
        window.dropEvent(event)  # Qt delivers drops only inside a real drag session
    assert window.session.volume.shape == (12, 32, 32)
    assert window.session.layer("reference") is not None  # segmentation-7 found beside it
