"""Qt fixtures: a main window with private settings, a phantom case shown in it."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings

from tests.conftest import make_phantom


@pytest.fixture
def window(qtbot, tmp_path):
    from livgui.ui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    # finish workers and deliver their queued signals while the widgets still exist
    w.wait_for_workers()
    qtbot.wait(1)
    w.session.close_case()


@pytest.fixture
def phantom_window(window, qtbot):
    """The window showing a 40x96x96 phantom with its reference, metrics computed."""
    from livgui.ui.loading import Loaded

    vol, lab = make_phantom((40, 96, 96), (2.5, 0.8, 0.8))
    with qtbot.waitSignal(window.metrics_panel.analysis_done, timeout=20000):
        window.show_case(Loaded("phantom", vol, [("reference", "reference", lab)]))
    return window
