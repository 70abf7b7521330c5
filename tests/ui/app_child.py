"""The real LivGUI window in a child process, driven like a user, until SIGKILLed.

Usage (repository root; ``LIVGUI_RECOVERY_DIR`` and ``QT_QPA_PLATFORM=offscreen`` set)::

    python -m tests.ui.app_child paint CT.nii.gz SETTINGS.ini PROGRESS N
    python -m tests.ui.app_child recover - SETTINGS.ini PROGRESS

``paint`` opens CT, paints N brush strokes through the axial view with mouse events, waits
for the autosave of the last one and writes ``READY steps sha256``; ``recover`` starts the
app (``start_up`` offers recovery), presses Recover in the dialog (``RECOVERING``) and
writes ``RECOVERED sha256`` of the correction layer.  Both then idle until killed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from livgui.core.editing import mask_sha256


def log(progress: Path, line: str) -> None:
    with open(progress, "a") as fh:
        fh.write(line + "\n")


def paint(window, n: int) -> None:
    window.session.set_layout("1", "axial")
    window.edit_session.start_from = "empty"
    window.edit_controller.set_tool("brush")
    window.edit_controller.set_size(4.0)
    view = window.views["axial"]
    z = window.session.volume.shape[0] // 2
    window.session.set_cursor((z, 10, 10))
    view.repaint()
    for k in range(n):
        a = view.widget_pos((z, 4 + 2 * k, 4)).toPoint()
        b = view.widget_pos((z, 4 + 2 * k, 24)).toPoint()
        QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(view, b)
        QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def main(argv: list[str]) -> int:
    mode, ct, settings, progress = argv[0], argv[1], argv[2], Path(argv[3])
    app = QApplication([sys.argv[0]])
    from livgui.ui.main_window import MainWindow

    window = MainWindow(settings=QSettings(settings, QSettings.Format.IniFormat))
    window.edit_session.set_autosave_s(1.0)
    window.edit_session.prompt = lambda _case: "cancel"  # never lose anything on exit
    window.show()
    es = window.edit_session
    if mode == "paint":
        n = int(argv[4])

        def ready(steps: int, sha: str) -> None:
            if steps == n:
                log(progress, f"READY {steps} {sha} {mask_sha256(es.history.labels)}")

        es.autosaved.connect(ready)
        es.case_ready.connect(lambda _c: (paint(window, n), log(progress, "PAINTED")))
        window.open_path(ct)
    else:
        flow = window.recovery

        def found(infos: list) -> None:
            log(progress, f"FOUND {len(infos)}")
            log(progress, "RECOVERING")
            flow.dialog.recover_button.click()

        flow.found.connect(found)
        flow.recovered.connect(lambda sha: log(progress, f"RECOVERED {sha}"))
        window.start_up()
    QTimer.singleShot(0, lambda: log(progress, "STARTED"))
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
