"""Never lose work, record everything: save/reload with history, disk full, prompts,
audit lines, review status in the case list, effort, training flag (library cases)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QPushButton

from livgui.core.atomicio import sha256_file
from livgui.core.volume import LabelMap
from tests.ui.edit_support import drag, prepare, show_slice

nib = pytest.importorskip("nibabel")


def _library_case(tmp_path):
    from livgui.library import Library
    from tests.ui.test_opening import _nifti_case

    ct = _nifti_case(tmp_path / "lits")
    with Library.open(tmp_path / "library") as lib:
        lib.add_path(ct.parent)
        (record,) = lib.list_cases()
    return record.case_id


def _open(w, qtbot, case_id):
    from livgui.ui.case_list import ref_from_record

    record = w.case_list.library.get(case_id)
    with qtbot.waitSignal(w.edit_session.case_ready, timeout=30000):
        assert w.open_ref(ref_from_record(record)) is not None
    w.session.set_layout("1", "axial")


@pytest.fixture
def lw(window, qtbot, tmp_path, monkeypatch):
    """The window on a library case (12x32x32 phantom with a reference)."""
    w = prepare(window, qtbot, tmp_path, monkeypatch)
    case_id = _library_case(tmp_path)
    w.case_list.open_library(tmp_path / "library")
    _open(w, qtbot, case_id)
    w.case_id_for_test = case_id
    return w


def _paint(w, qtbot, zyx, label=1, size=3.0):
    c = w.edit_controller
    c.set_tool("brush")
    c.set_label(label)
    c.set_size(size)
    show_slice(w, "axial", zyx)
    drag(qtbot, w.views["axial"], [zyx])


def _save(w, qtbot):
    with qtbot.waitSignal(w.edit_session.saved, timeout=30000) as blocker:
        qtbot.keyClick(w.views["axial"], Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    return blocker.args[0]


def _status_in_list(w, case_id):
    tree = w.case_list.tree
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    return next(r.text(1) for r in rows if r.text(0) == case_id)


def test_save_reload_history_audit_and_status(lw, qtbot, tmp_path):
    w, case = lw, lw.case_id_for_test
    lib = w.case_list.library
    assert _status_in_list(w, case) == "new"
    _paint(w, qtbot, (6, 5, 25))
    _paint(w, qtbot, (6, 26, 25), label=2)
    qtbot.keyClick(w.views["axial"], Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(w.views["axial"], Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert w.edit_session.dirty
    path = _save(w, qtbot)
    corr = w.session.layer("correction").labels.data.copy()
    (final,) = lib.masks(case, "final")
    assert (
        final.sha256 == sha256_file(path)
        and lib.mask_path(final)
        == tmp_path.joinpath("library", "cases", case, "final.nii.gz").resolve()
    )
    from livgui import imageio

    assert np.array_equal(imageio.load_mask(path, like=w.session.volume).data, corr)
    assert lib.masks(case, "reference")  # the reference is recorded beside original/final
    assert lib.get(case).status == "corrected" and _status_in_list(w, case) == "corrected"
    assert not w.edit_session.dirty and "saved" in w.edit_panel.status.text()
    actions = [e.action for e in lib.audit_log(case)]
    assert actions == [
        "add", "open", "edit", "edit", "undo", "redo", "save mask", "save mask", "save", "status",
    ]  # fmt: skip
    edit = lib.audit_log(case)[2].details
    assert edit["tool"] == "Brush" and edit["label"] == "liver" and edit["changed_voxels"] > 0
    save = lib.audit_log(case)[8].details
    assert save["sha256"] == final.sha256 and save["effort"]["changed_voxels"] > 0
    # close and reopen: the saved final comes back with its undo history
    w.close_case()
    assert w.session.volume is None
    _open(w, qtbot, case)
    assert np.array_equal(w.session.layer("correction").labels.data, corr)
    names = [e.name for e in w.edit_session.history.entries()]
    assert names == ["Brush 3 mm on liver, axial 7", "Brush 3 mm on lesion, axial 7"]
    qtbot.keyClick(w.views["axial"], Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.session.layer("correction").labels.data[6, 26, 25] == 0 and w.edit_session.dirty


def test_disk_full_keeps_edits_history_and_the_old_file(lw, qtbot, monkeypatch):
    w, case = lw, lw.case_id_for_test
    _paint(w, qtbot, (6, 5, 25))
    first = Path(_save(w, qtbot))
    old_hash = sha256_file(first)
    _paint(w, qtbot, (6, 26, 25))
    before = w.session.layer("correction").labels.data.copy()
    from livgui.imageio import nifti

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nifti, "write_nifti_stream", full)
    with qtbot.waitSignal(w.edit_session.save_failed, timeout=30000) as blocker:
        w.edit_session.save()
    assert blocker.args[0] == "could not save: disk full"
    assert "disk full" in w.message_label.text()
    assert sha256_file(first) == old_hash  # the previous file is byte-identical
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".part")]
    assert np.array_equal(w.session.layer("correction").labels.data, before)
    assert w.edit_session.dirty and len(w.edit_session.history.entries()) == 2
    assert [e.action for e in w.case_list.library.audit_log(case)].count("save") == 1


def _answer_prompt(qtbot, button):
    def click():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox) and "unsaved edits" in box.text()
        box.button(button).click()

    QTimer.singleShot(0, click)


def test_close_prompts_with_unsaved_edits(lw, qtbot):
    w = lw
    w.edit_session.prompt = w.edit_session._ask_unsaved  # the real dialog
    _paint(w, qtbot, (6, 5, 25))
    _answer_prompt(qtbot, QMessageBox.StandardButton.Cancel)
    w.close()
    assert w.isVisible() and w.edit_session.dirty  # Cancel: still here, edits kept
    _answer_prompt(qtbot, QMessageBox.StandardButton.Save)
    w.close()
    assert not w.isVisible() and not w.edit_session.dirty
    assert w.case_list.library.masks(w.case_id_for_test, "final")


def test_case_switch_discard_goes_back_to_the_saved_state(lw, qtbot):
    w = lw
    _paint(w, qtbot, (6, 5, 25))
    _save(w, qtbot)
    saved = w.session.layer("correction").labels.data.copy()
    _paint(w, qtbot, (6, 26, 25))
    answers = []
    w.edit_session.prompt = lambda case: answers.append(case) or "cancel"
    assert w.open_path("/nonexistent") is None  # Cancel keeps the case
    assert answers and w.edit_session.dirty
    w.edit_session.prompt = lambda case: "discard"
    w.close_case()
    assert w.session.volume is None
    _open(w, qtbot, w.case_id_for_test)  # the saved state, the discarded stroke gone
    assert np.array_equal(w.session.layer("correction").labels.data, saved)


def test_approve_training_flag_and_effort_in_the_metrics_dock(lw, qtbot):
    w, case = lw, lw.case_id_for_test
    lib = w.case_list.library
    ref = w.session.layer("reference").labels
    w.session.add_layer("prediction", "prediction", LabelMap(ref.data.copy(), ref.geometry, "m1"))
    w.edit_session.start_from = "prediction"
    _paint(w, qtbot, (6, 5, 25))
    with qtbot.waitSignal(w.edit_session.status_changed, timeout=30000) as blocker:
        qtbot.mouseClick(w.edit_panel.findChild(QPushButton, "approve"), Qt.MouseButton.LeftButton)
    # approving with unsaved edits saves first (-> corrected), then approves
    qtbot.waitUntil(lambda: lib.get(case).status == "approved")
    assert blocker.args[0] in ("corrected", "approved")
    assert _status_in_list(w, case) == "approved"
    (original,) = lib.masks(case, "original")
    assert original.model_id == "m1"
    w.edit_panel.training_check.click()
    assert lib.get(case).use_for_training
    effort = w.session.results["effort"]
    assert effort["changed_voxels"] > 0 and effort["dice_liver"] < 1.0
    assert "Correction effort" in w.metrics_panel.effort.text()
    actions = [e.action for e in lib.audit_log(case)]
    assert actions[-3:] == ["status", "status", "include in training"]
    statuses = [e.details["to"] for e in lib.audit_log(case) if e.action == "status"]
    assert statuses == ["corrected", "approved"]


def test_help_sheet_lists_every_edit_shortcut(lw):
    from livgui.ui import dialogs

    listed: set[str] = set()
    for key, _what in dialogs.EDIT_CONTROLS:  # "Ctrl+Shift+Z, Ctrl+Y", "[ / ], Shift + wheel"
        listed |= {t.strip().replace(" ", "") for t in re.split(r",| / ", key) if t.strip()}
    shortcuts = {
        seq.toString() for action in lw.edit_menu.actions() for seq in action.shortcuts()
    } - {"", "Return", "Enter", "Esc"}
    assert shortcuts, "the Edit menu has shortcuts"
    missing = {s for s in shortcuts if s.replace(" ", "") not in listed}
    assert not missing, missing
    dialog = dialogs.HelpDialog(lw)
    assert "erasing lesion gives liver back" in dialog.findChild(QLabel, "eraser_rules").text()
    assert "lesion gives liver back" in lw.edit_panel.tool_buttons["eraser"].toolTip()
