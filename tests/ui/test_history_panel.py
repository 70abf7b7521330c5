"""History dock: named steps, undo/redo by keyboard and by clicking a row, byte budget."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.edit_support import drag, prepare, show_slice


@pytest.fixture
def hw(phantom_window, qtbot, tmp_path, monkeypatch):
    w = prepare(phantom_window, qtbot, tmp_path, monkeypatch)
    w.session.set_layout("1", "axial")
    w.edit_session.start_from = "empty"
    c = w.edit_controller
    c.set_tool("brush")
    c.set_size(3.0)
    return w


def _strokes(w, qtbot, xs):
    view = w.views["axial"]
    show_slice(w, "axial", (5, 20, xs[0]))
    for x in xs:
        drag(qtbot, view, [(5, 20, x), (5, 24, x)])


def _rows(w):
    lst = w.history_panel.list
    return [lst.item(i).text() for i in range(lst.count())]


def _key(w, qtbot, key, mods):
    qtbot.keyClick(w.views["axial"], key, mods)


def test_undo_redo_by_keyboard_and_by_clicking_a_step(hw, qtbot):
    w = hw
    _strokes(w, qtbot, [20, 40, 60])
    lab = w.session.layer("correction").labels.data
    assert _rows(w) == ["Start (as opened)"] + ["Brush 3 mm on liver, axial 6"] * 3
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    _key(w, qtbot, Qt.Key.Key_Z, ctrl)
    assert lab[5, 22, 60] == 0 and lab[5, 22, 40] == 1
    assert w.history_panel.list.currentRow() == 2
    assert w.history_panel.list.item(3).font().italic()  # redoable rows look undone
    _key(w, qtbot, Qt.Key.Key_Z, ctrl | shift)
    assert lab[5, 22, 60] == 1
    _key(w, qtbot, Qt.Key.Key_Z, ctrl)
    _key(w, qtbot, Qt.Key.Key_Y, ctrl)
    assert lab[5, 22, 60] == 1
    lst = w.history_panel.list
    rect = lst.visualItemRect(lst.item(1))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert lab[5, 22, 20] == 1 and lab[5, 22, 40] == 0 and lab[5, 22, 60] == 0
    rect = lst.visualItemRect(lst.item(0))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert lab.sum() == 0 and not w.edit_session.dirty  # back at the start
    rect = lst.visualItemRect(lst.item(3))
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert lab[5, 22, 60] == 1 and w.edit_session.dirty
    _strokes(w, qtbot, [80])  # a new step after undo clears the redo rows
    qtbot.mouseClick(
        lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualItemRect(lst.item(2)).center()
    )
    _strokes(w, qtbot, [70])
    assert len(_rows(w)) == 4 and lab[5, 22, 80] == 0


def test_byte_budget_drops_the_oldest_step_with_a_visible_notice(hw, qtbot):
    w = hw
    w.edit_session.ensure_layer()
    w.history_panel.budget_spin.setValue(16)  # the setting is remembered
    assert float(w.settings.value("edit/history_mb")) == 16
    w.edit_session.set_budget_mb(0.001)  # about 1 KB: room for three strokes (~300 B each)
    with qtbot.waitSignal(w.edit_session.notice, timeout=5000):
        _strokes(w, qtbot, [10, 20, 30, 40, 50, 60])
    notice = w.history_panel.notice
    assert notice.isVisible() and "dropped" in notice.text()
    h = w.edit_session.history
    assert h.dropped > 0 and h.nbytes <= h.budget_bytes
    assert len(_rows(w)) == len(h.entries()) + 1
    while h.can_undo:
        _key(w, qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    lab = w.session.layer("correction").labels.data
    assert lab[5, 22, 60] == 0 and lab[5, 22, 10] == 1  # the dropped strokes stay
