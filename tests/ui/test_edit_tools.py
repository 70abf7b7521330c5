"""Each correction tool driven through the real view with simulated mouse events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from livgui.core.volume import LabelMap
from tests.ui.edit_support import click, drag, pos_of, prepare, show_slice, wheel

LIVER_C = (22, 43, 40)  # inside the phantom's liver, beside lesion 1
LESION_C = (22, 43, 29)  # lesion 1 centre


@pytest.fixture
def ew(phantom_window, qtbot, tmp_path, monkeypatch):
    """The phantom window, one axial view, autosave into tmp_path."""
    w = prepare(phantom_window, qtbot, tmp_path, monkeypatch)
    w.session.set_layout("1", "axial")
    return w


def corr(w) -> np.ndarray:
    return w.session.layer("correction").labels.data


def start(w, tool, start_from="empty", label=1, size=None):
    w.edit_session.start_from = start_from
    c = w.edit_controller
    c.set_tool(tool)
    c.set_label(label)
    if size is not None:
        c.set_size(size)
    return c


def test_brush_paints_a_disc_of_the_true_size_as_one_named_step(ew, qtbot):
    start(ew, "brush", size=4.0)
    view = ew.views["axial"]
    show_slice(ew, "axial", (5, 20, 60))
    before = view.grab().toImage()
    drag(qtbot, view, [(5, 20, 60), (5, 20, 65), (5, 20, 70)])
    lab = corr(ew)
    assert lab[5, 20, 60:71].tolist() == [1] * 11
    assert lab[5, 22, 65] == 1 and lab[5, 23, 65] == 0  # 1.6 mm in, 2.4 mm out (r 2 mm)
    assert lab[4].sum() == 0 and lab[6].sum() == 0  # a disc, not a sphere
    assert [e.name for e in ew.edit_session.history.entries()] == ["Brush 4 mm on liver, axial 6"]
    assert view.grab().toImage() != before  # the paint is on screen
    assert ew.session.layer("correction").kind == "correction"


def test_sphere_brush_and_coronal_plane(ew, qtbot):
    c = start(ew, "brush", size=6.0)
    c.set_option(sphere=True)
    ew.session.set_layout("1", "coronal")
    view = ew.views["coronal"]
    show_slice(ew, "coronal", (10, 20, 60))
    drag(qtbot, view, [(10, 20, 60)])
    lab = corr(ew)
    assert lab[10, 20, 60] == 1 and lab[10, 23, 60] == 1 and lab[10, 24, 60] == 0  # 3 vox = 2.4 mm
    assert lab[11, 20, 60] == 1 and lab[12, 20, 60] == 0  # z spacing 2.5 mm, radius 3 mm
    assert ew.edit_session.history.entries()[0].name == "Brush 6 mm on liver, coronal 21"


def test_eraser_semantics_lesion_gives_liver_back_liver_clears_both(ew, qtbot):
    start(ew, "eraser", start_from="reference", label=2, size=12.0)
    view = ew.views["axial"]
    show_slice(ew, "axial", LESION_C)
    ref = ew.session.layer("reference").labels.data
    drag(qtbot, view, [LESION_C])
    lab = corr(ew)
    was_lesion = ref[22] == 2
    assert np.all(lab[22][was_lesion] == 1)  # erasing lesion gives liver back
    assert np.array_equal(lab[22] > 0, ref[22] > 0)  # ...and never makes background
    ew.edit_controller.set_label(1)
    drag(qtbot, view, [LIVER_C])
    assert lab[22, 43, 40] == 0 and lab[22, 43, 34] == 0  # liver eraser clears everything


def test_hu_brush_paints_only_voxels_in_the_hu_range(ew, qtbot):
    c = start(ew, "hu_brush", size=20.0)
    c.set_option(hu_range=(80.0, 130.0))
    show_slice(ew, "axial", LESION_C)
    drag(qtbot, ew.views["axial"], [LESION_C])
    lab, hu = corr(ew), ew.session.volume.data
    painted = lab > 0
    assert painted.sum() > 50
    assert np.all((hu[painted] >= 80) & (hu[painted] <= 130))
    assert not np.any(painted & (ew.session.layer("reference").labels.data == 2))  # lesion ~40 HU
    assert "(80..130 HU)" in ew.edit_session.history.entries()[0].name


def test_threshold_fill_fills_the_connected_region_in_range(ew, qtbot):
    c = start(ew, "threshold")
    c.set_option(hu_range=(70.0, 200.0))
    show_slice(ew, "axial", LIVER_C)
    click(qtbot, ew.views["axial"], LIVER_C)
    ref = ew.session.layer("reference").labels.data[22]
    got = corr(ew)[22] > 0
    target = ref == 1
    dice = 2 * np.sum(got & target) / (got.sum() + target.sum())
    assert dice > 0.9 and corr(ew)[21].sum() == 0  # in-slice only
    c.set_option(threshold_3d=True)
    with qtbot.waitSignal(c.operation_done, timeout=10000) as done:
        click(qtbot, ew.views["axial"], LIVER_C)  # 3D: computed in a worker
    assert done.args == [True] and corr(ew)[21].sum() > 0


def test_flood_fill_closes_a_hole(ew, qtbot):
    start(ew, "eraser", start_from="reference", size=3.0)
    view = ew.views["axial"]
    hole = (22, 50, 40)
    show_slice(ew, "axial", hole)
    drag(qtbot, view, [hole])
    lab = corr(ew)
    assert lab[hole] == 0
    outside = lab[22] == 0
    ew.edit_controller.set_tool("flood")
    click(qtbot, view, hole)
    assert lab[hole] == 1
    assert lab[22, 5, 5] == 0 and (lab[22] == 0).sum() < outside.sum()  # outside untouched


def test_polygon_by_clicks_fills_and_lasso_cut_erases(ew, qtbot):
    start(ew, "polygon")
    view = ew.views["axial"]
    show_slice(ew, "axial", (5, 10, 10))
    for zyx in [(5, 10, 10), (5, 10, 30), (5, 30, 30), (5, 30, 10)]:
        click(qtbot, view, zyx)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    lab = corr(ew)
    assert lab[5, 10:31, 10:31].all() and lab[5].sum() == 21 * 21
    ew.edit_controller.set_tool("cut")
    drag(qtbot, view, [(5, 15, 15), (5, 15, 25), (5, 25, 25), (5, 25, 15), (5, 15.5, 15)])
    assert lab[5, 16:25, 16:25].sum() == 0 and lab[5, 12, 12] == 1
    names = [e.name for e in ew.edit_session.history.entries()]
    assert names == ["Polygon fill on liver, axial 6", "Polygon cut on liver, axial 6"]


def test_components_remove_island_keep_largest_remove_small(ew, qtbot):
    start(ew, "brush", start_from="reference", size=3.0)
    view = ew.views["axial"]
    show_slice(ew, "axial", (22, 10, 80))
    for zyx in [(22, 10, 80), (22, 80, 80), (22, 85, 20)]:
        drag(qtbot, view, [zyx])
    lab = corr(ew)
    c = ew.edit_controller
    c.set_tool("island")
    with qtbot.waitSignal(c.operation_done, timeout=10000):
        click(qtbot, view, (22, 10, 80))
    assert lab[22, 10, 80] == 0 and lab[22, 80, 80] == 1
    c.min_island_ml = 0.05
    with qtbot.waitSignal(c.operation_done, timeout=10000):
        c.remove_small()
    assert lab[22, 80, 80] == 0 and lab[22, 85, 20] == 0 and lab[LIVER_C] == 1
    c.set_tool("brush")
    drag(qtbot, view, [(22, 10, 80)])
    button = ew.edit_panel.findChild(QPushButton, "keep_largest")
    with qtbot.waitSignal(c.operation_done, timeout=10000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert lab[22, 10, 80] == 0 and lab[LIVER_C] == 1


def test_a_whole_volume_result_that_raced_an_edit_is_not_applied(ew, qtbot, monkeypatch):
    import threading

    from livgui.ui import edit_controller

    start(ew, "brush", start_from="reference", size=3.0)
    view = ew.views["axial"]
    show_slice(ew, "axial", (22, 10, 80))
    drag(qtbot, view, [(22, 10, 80)])
    release = threading.Event()
    real = edit_controller.keep_largest

    def slow(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(edit_controller, "keep_largest", slow)
    c = ew.edit_controller
    with qtbot.waitSignal(c.operation_done, timeout=10000) as done:
        c.keep_largest()
        drag(qtbot, view, [(22, 80, 80)])  # the user keeps painting meanwhile
        release.set()
    assert done.args == [False]
    lab = corr(ew)
    assert lab[22, 10, 80] == 1 and lab[22, 80, 80] == 1  # both islands still there


def test_interpolation_between_edited_slices(ew, qtbot):
    start(ew, "brush", size=5.0, label=2)
    view = ew.views["axial"]
    for z in (10, 16):
        show_slice(ew, "axial", (z, 60, 60))
        drag(qtbot, view, [(z, 60, 58), (z, 60, 62)])
    lab = corr(ew)
    assert lab[13].sum() == 0
    with qtbot.waitSignal(ew.edit_controller.operation_done, timeout=10000):
        ew.edit_controller.interpolate()
    for z in range(11, 16):
        assert lab[z, 60, 60] == 2
    assert lab[9].sum() == 0 and lab[17].sum() == 0
    assert ew.edit_session.history.entries()[-1].name == "Interpolate lesion, axial 11-17"


def _add_prediction(w):
    ref = w.session.layer("reference").labels
    pred = np.roll(ref.data, 3, axis=2)  # the model is 3 voxels off
    w.session.add_layer("prediction", "prediction", LabelMap(pred, ref.geometry, "prediction"))
    return pred


def test_accept_whole_prediction_keeps_manual_edits(ew, qtbot):
    pred = _add_prediction(ew)
    start(ew, "eraser", size=4.0)
    view = ew.views["axial"]
    show_slice(ew, "axial", LIVER_C)
    start(ew, "brush", size=4.0)
    drag(qtbot, view, [(22, 20, 80)])  # manual liver where the model says background
    manual = corr(ew).copy()
    _changed, kept = ew.edit_session.accept()
    lab = corr(ew)
    assert kept == int(np.count_nonzero((manual > 0) & (pred != manual)))
    assert kept > 0 and lab[22, 20, 80] == 1
    untouched = manual == 0
    assert np.array_equal(lab[untouched], pred[untouched])
    assert "manually edited voxels kept" in ew.message_label.text()
    assert ew.edit_session.history.entries()[-1].name.startswith("Accept prediction (whole")


def test_accept_lesion_by_click_takes_only_that_lesion(ew, qtbot):
    pred = _add_prediction(ew)
    start(ew, "accept_lesion")
    view = ew.views["axial"]
    at = (22, 43, 32)  # predicted lesion 1 (shifted by 3)
    assert pred[at] == 2
    show_slice(ew, "axial", at)
    click(qtbot, view, at)
    lab = corr(ew)
    from scipy import ndimage

    comp, _ = ndimage.label(pred == 2, structure=np.ones((3, 3, 3)))
    assert np.array_equal(lab == 2, comp == comp[at])
    assert (lab == 1).sum() == 0


def test_size_keys_shift_wheel_and_navigation_still_work(ew, qtbot):
    c = start(ew, "brush", size=6.0)
    view = ew.views["axial"]
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_BracketRight)
    assert c.size_mm == 7.0
    qtbot.keyClick(view, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(view, Qt.Key.Key_BracketLeft)
    assert c.size_mm == 5.0
    centre = pos_of(view, (22, 48, 48))
    z0 = ew.session.cursor[0]
    wheel(view, centre, 2, Qt.KeyboardModifier.ShiftModifier)
    assert c.size_mm == 7.0 and ew.session.cursor[0] == z0
    assert ew.edit_panel.size_label.text() == "7 mm"
    wheel(view, centre, 1)
    assert ew.session.cursor[0] == z0 + 1  # plain wheel still scrolls
    before = ew.session.window
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=centre)
    qtbot.mouseMove(view, centre + type(centre)(50, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=centre + type(centre)(50, 0))
    assert ew.session.window.width > before.width  # right drag = window/level
    assert ew.session.layer("correction") is None  # none of this edited
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert c.tool == "navigate" and view.tool_handler is None
