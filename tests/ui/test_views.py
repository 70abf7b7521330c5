"""Reading a case: scrolling, window/level, overlays, lesions, orientation (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from livgui.core.geometry import Geometry
from livgui.core.session import CaseSession
from livgui.core.volume import LabelMap, Volume
from livgui.ui.planes import PLANE_SPECS, edge_letters


def _wheel(view, steps: int) -> None:
    centre = QPointF(view.width() / 2, view.height() / 2)
    event = QWheelEvent(
        centre,
        view.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, event)


def test_wheel_and_keys_scroll_the_view_and_move_the_shared_cursor(phantom_window, qtbot):
    w = phantom_window
    axial, coronal = w.views["axial"], w.views["coronal"]
    z0 = w.session.cursor[0]
    _wheel(axial, 3)
    assert w.session.cursor[0] == z0 + 3
    axial.repaint()
    assert axial.index == z0 + 3
    qtbot.keyClick(axial, Qt.Key.Key_Down)
    qtbot.keyClick(axial, Qt.Key.Key_PageDown)
    assert w.session.cursor[0] == z0 + 3 - 1 - 5
    y0 = w.session.cursor[1]
    qtbot.keyClick(coronal, Qt.Key.Key_Up)
    assert w.session.cursor[1] == y0 + 1
    qtbot.keyClick(axial, Qt.Key.Key_Left)
    qtbot.keyClick(axial, Qt.Key.Key_Right)
    qtbot.keyClick(axial, Qt.Key.Key_Right)
    assert w.session.cursor[0] == z0 + 3 - 1 - 5 + 1
    qtbot.keyClick(axial, Qt.Key.Key_End)
    assert w.session.cursor[0] == 39


def test_clicking_moves_the_crosshair_in_the_other_views(phantom_window, qtbot):
    w = phantom_window
    axial = w.views["axial"]
    rect = axial.image_rect()
    # a click three quarters across and a quarter down the axial image
    pos = QPoint(int(rect.left() + rect.width() * 0.75), int(rect.top() + rect.height() * 0.25))
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=pos)
    _z, y, x = w.session.cursor
    assert x == pytest.approx(72, abs=1) and y == pytest.approx(24, abs=1)
    w.views["sagittal"].repaint()
    w.views["coronal"].repaint()
    assert w.views["sagittal"].index == x and w.views["coronal"].index == y


def test_right_drag_changes_window_and_number_keys_apply_presets(phantom_window, qtbot):
    w = phantom_window
    axial = w.views["axial"]
    before = w.session.window
    centre = QPoint(axial.width() // 2, axial.height() // 2)
    qtbot.mousePress(axial, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseMove(axial, centre + QPoint(60, -40))
    qtbot.mouseRelease(axial, Qt.MouseButton.RightButton, pos=centre + QPoint(60, -40))
    assert w.session.window.width > before.width
    assert w.session.window.level > before.level
    qtbot.keyClick(axial, Qt.Key.Key_2)
    assert w.session.window.name == "liver"
    qtbot.keyClick(axial, Qt.Key.Key_4)
    assert (w.session.window.level, w.session.window.width) == (-600.0, 1500.0)


def test_keyboard_toggles_overlays_and_the_pixels_change(phantom_window, qtbot):
    w = phantom_window
    axial = w.views["axial"]
    w.session.set_cursor((22, 43, 30))  # inside the liver
    with_overlay = axial.grab().toImage()
    qtbot.keyClick(axial, Qt.Key.Key_L)
    assert not w.session.layer("reference").visible
    assert not w.layers_panel.rows["reference"].visible.isChecked()
    without = axial.grab().toImage()
    assert with_overlay != without
    qtbot.keyClick(axial, Qt.Key.Key_L)
    qtbot.keyClick(axial, Qt.Key.Key_O)
    assert w.session.layer("reference").style == "outline"
    assert w.layers_panel.rows["reference"].style.currentText() == "outline"
    outlined = axial.grab().toImage()
    assert outlined not in (with_overlay, without)


def test_layers_panel_controls_drive_the_session(phantom_window):
    row = phantom_window.layers_panel.rows["reference"]
    row.opacity.setValue(80)
    assert phantom_window.session.layer("reference").opacity == pytest.approx(0.8)
    row.visible.setChecked(False)
    assert not phantom_window.session.layer("reference").visible


def test_clicking_a_lesion_row_jumps_all_views_to_its_centroid(phantom_window, qtbot):
    w = phantom_window
    panel = w.metrics_panel
    assert panel.lesions.rowCount() == 2
    lesion = panel._lesion_rows[1]
    rect = panel.lesions.visualItemRect(panel.lesions.item(1, 0))
    qtbot.mouseClick(panel.lesions.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    expected = tuple(round(v) for v in lesion.centroid_zyx)
    assert w.session.cursor == expected
    for plane, view in w.views.items():
        view.repaint()
        assert view.index == expected[PLANE_SPECS[plane].slice_axis]
        p = view.cursor_point()
        assert abs(p.x() - view.width() / 2) <= 1 and abs(p.y() - view.height() / 2) <= 1


def test_one_view_layout_toggle(phantom_window, qtbot):
    w = phantom_window
    w.views["coronal"].setFocus()
    qtbot.mouseDClick(w.views["coronal"], Qt.MouseButton.LeftButton)
    assert w.session.layout == "1" and w.session.main_plane == "coronal"
    assert w.views["coronal"].isVisible() and not w.views["axial"].isVisible()
    qtbot.keyClick(w.views["coronal"], Qt.Key.Key_F)
    assert w.session.layout == "3" and all(v.isVisible() for v in w.views.values())


def test_research_notice_is_always_visible(phantom_window):
    w = phantom_window
    assert "research use only, not for diagnosis" in w.windowTitle()
    assert w.grid.banner.isVisible() and "NOT FOR DIAGNOSIS" in w.grid.banner.text()
    assert w.notice_label.isVisible()


def _lps_volume(flip_x: bool = False):
    shape = (5, 40, 40)
    data = np.full(shape, -1000, np.int16)
    data[:, 20, 35] = 1000  # a marker at high x: the patient's left in LPS
    affine = np.diag([-1.0 if flip_x else 1.0, 1.0, 2.0, 1.0])
    return Volume(data, Geometry(shape, affine))


def test_orientation_letters_follow_the_geometry():
    geom = _lps_volume().geometry
    assert edge_letters(PLANE_SPECS["axial"], geom) == {
        "left": "R",
        "right": "L",
        "top": "A",
        "bottom": "P",
    }
    assert edge_letters(PLANE_SPECS["coronal"], geom) == {
        "left": "R",
        "right": "L",
        "top": "S",
        "bottom": "I",
    }
    assert edge_letters(PLANE_SPECS["sagittal"], geom) == {
        "left": "A",
        "right": "P",
        "top": "S",
        "bottom": "I",
    }
    flipped = _lps_volume(flip_x=True).geometry  # x running to the patient's right
    assert edge_letters(PLANE_SPECS["axial"], flipped)["left"] == "L"


def test_marker_on_the_patients_left_appears_on_the_image_right(qtbot):
    from livgui.ui.slice_view import SliceView

    session = CaseSession()
    view = SliceView(session, "axial")
    qtbot.addWidget(view)
    view.resize(300, 300)
    session.set_case(_lps_volume(), "marker")
    session.set_window(0, 200)
    image = view.grab().toImage()
    rect = view.image_rect()
    rows = range(int(rect.top()) + 2, int(rect.bottom()) - 2)
    bright = [
        (x, y)
        for y in rows
        for x in range(int(rect.left()) + 2, int(rect.right()) - 2)
        if QColor_value(image, x, y) > 250
    ]  # text is drawn at 230
    assert bright, "marker not drawn"
    xs = [x for x, _y in bright]
    assert min(xs) > rect.center().x()  # right half of the image
    ys = [y for _x, y in bright]
    assert abs(np.mean(ys) - rect.center().y()) < rect.height() * 0.05  # row 20 of 40


def QColor_value(image, x, y):
    c = image.pixelColor(x, y)
    return min(c.red(), c.green(), c.blue())


def test_aspect_follows_the_spacing(qtbot):
    from livgui.ui.slice_view import SliceView

    session = CaseSession()
    view = SliceView(session, "coronal")
    qtbot.addWidget(view)
    view.resize(400, 400)
    vol = Volume(
        np.zeros((20, 50, 100), np.int16), Geometry.from_spacing((20, 50, 100), (5.0, 1.0, 1.0))
    )
    session.set_case(vol)
    rect = view.image_rect()
    # coronal: 100 columns of 1 mm wide, 20 rows of 5 mm high -> a square on screen
    assert rect.width() == pytest.approx(rect.height(), rel=0.01)


def test_many_repaints_of_the_window_stay_alive(phantom_window):
    """A few hundred repaints of every view (guards against Qt/pyqtgraph upgrade crashes)."""
    w = phantom_window
    for i in range(300):
        w.session.set_cursor(((i * 7) % 40, (i * 3) % 96, (i * 5) % 96))
        for view in w.views.values():
            view.repaint()
    assert w.isVisible()


def test_label_overlay_never_copies_the_volume(phantom_window):
    """Overlay caches hold a handful of slices, not the volume."""
    w = phantom_window
    for z in range(40):
        w.session.set_cursor((z, 48, 48))
        w.views["axial"].repaint()
    cache = w.views["axial"]._caches["reference"]
    assert len(cache._items) <= cache.capacity
    arrays = [a for a in cache._items.values() if isinstance(a, np.ndarray)]
    assert arrays and all(a.ndim == 2 for a in arrays)  # rendered slices, not volumes
    volume_bytes = w.session.layer("reference").labels.data.nbytes
    assert sum(a.nbytes for a in arrays) < volume_bytes


def test_layer_data_change_redraws(phantom_window):
    w = phantom_window
    axial = w.views["axial"]
    w.session.set_cursor((22, 43, 30))
    before = axial.grab().toImage()
    layer = w.session.layer("reference")
    layer.labels.data[22] = 0
    w.session.notify_labels_changed("reference")
    assert axial.grab().toImage() != before


def test_readout_in_status_bar_on_hover(phantom_window, qtbot):
    w = phantom_window
    axial = w.views["axial"]
    rect = axial.image_rect()
    qtbot.mouseMove(axial, QPoint(int(rect.center().x()), int(rect.center().y())))
    text = w.readout_label.text()
    assert "HU" in text and "LPS" in text and "reference" in text


def test_prediction_layer_is_compared_with_the_reference(phantom_window, qtbot):
    w = phantom_window
    ref = w.session.layer("reference").labels
    pred = LabelMap(ref.data.copy(), ref.geometry, "prediction")
    pred.data[:, :, :40] = 0
    with qtbot.waitSignal(w.metrics_panel.analysis_done, timeout=20000):
        w.session.add_layer("prediction", "prediction", pred)
    figures = w.metrics_panel.figures
    headers = [figures.horizontalHeaderItem(c).text() for c in range(figures.columnCount())]
    assert headers == ["reference", "prediction"]
    titles = [figures.verticalHeaderItem(r).text() for r in range(figures.rowCount())]
    dice = float(figures.item(titles.index("Liver Dice"), 1).text())
    assert 0.0 < dice < 1.0


def test_a_2d_export_opens_in_one_view_without_invented_orientation(window):
    from livgui.core.volume import SourceInfo
    from livgui.ui.loading import Loaded

    data = np.zeros((1, 64, 64), np.uint8)
    data[0, 10:30, 10:30] = 200
    notes = ("not axial: plane unknown", "pixel values are 8-bit display values, not HU")
    vol = Volume(data, Geometry((1, 64, 64)), SourceInfo("x.png", "2d-image", warnings=notes))
    window.show_case(Loaded("png", vol, [], notes))
    s = window.session
    assert s.layout == "1" and s.main_plane == "axial"
    assert (s.window.low, s.window.high) == (0.0, 200.0)
    assert "HU" not in s.readout().text() and "LPS" not in s.readout().text()
    axial = window.views["axial"]
    axial.repaint()
    assert axial._letters == {}
    vol3d = Volume(np.zeros((4, 8, 8), np.int16), Geometry((4, 8, 8)))
    window.show_case(Loaded("ct", vol3d, []))
    assert s.layout == "3" and s.world_known and "HU" in s.readout().text()


def test_zoom_keeps_the_point_under_the_mouse_and_pan_survives_a_layout_change(
    phantom_window, qtbot
):
    w = phantom_window
    axial = w.views["axial"]
    anchor = QPointF(axial.width() * 0.3, axial.height() * 0.6)
    before = axial.voxel_at(anchor)
    axial.zoom_by(3.0, anchor)
    assert axial.voxel_at(anchor) == before
    w.metrics_panel.jump_to_row(0)  # centres every view on the lesion
    w.session.set_layout("1", "coronal")
    coronal = w.views["coronal"]
    qtbot.waitUntil(lambda: coronal.width() > 500)  # one view fills the centre
    p = coronal.cursor_point()
    assert abs(p.x() - coronal.width() / 2) <= 1 and abs(p.y() - coronal.height() / 2) <= 1


def test_figures_computed_while_a_layer_changed_are_recomputed_not_shown(
    phantom_window, qtbot, monkeypatch
):
    """The metrics worker reads masks in place; a result that raced an edit is dropped."""
    import threading

    from livgui.ui import metrics_dock

    w = phantom_window
    ref = w.session.layer("reference").labels
    pred = LabelMap(ref.data.copy(), ref.geometry, "prediction")
    started, release = threading.Event(), threading.Event()
    real_analyse = metrics_dock.analyse
    calls = []

    def gated(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            started.set()
            release.wait(20)
        return real_analyse(*args, **kwargs)

    monkeypatch.setattr(metrics_dock, "analyse", gated)
    w.session.add_layer("prediction", "prediction", pred)
    qtbot.waitUntil(started.is_set, timeout=20000)
    pred.data[pred.data == 2] = 1  # an edit lands while the worker is computing
    w.session.notify_labels_changed("prediction")
    with qtbot.waitSignal(w.metrics_panel.analysis_done, timeout=20000):
        release.set()
    assert len(calls) >= 2
    shown = w.session.results["analysis"]["volumes"]["prediction"]["lesion_ml"]
    assert shown == 0.0
