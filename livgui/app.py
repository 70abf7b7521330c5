"""Composition root: ``livgui`` opens the window; other commands run headless.

* ``livgui`` — the window, empty;
* ``livgui PATH`` / ``livgui open PATH [--labels MASK]`` — the window on a file, DICOM
  folder, case folder or dataset folder;
* ``livgui screenshot PATH --out FILE.png [...]`` — render the real window offscreen;
* anything else (``info``, ``metrics``, ``library``, ``segment``, ``models`` ...) goes to
  :func:`livgui.cli.main.run_headless` without importing Qt: PySide6 is imported lazily,
  only on the GUI paths.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livgui import __version__
from livgui.core.volume import RESEARCH_NOTICE

__all__ = ["build_screenshot_parser", "main", "run_gui", "screenshot"]

log = logging.getLogger("livgui")

GUI_COMMANDS = ("open", "screenshot")


def _make_app(offscreen: bool = False) -> Any:
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "livgui"])
    app.setApplicationName("LivGUI")
    app.setOrganizationName("LivGUI")
    app.setApplicationVersion(__version__)
    return app


def run_gui(path: str | None = None, labels: str | None = None) -> int:
    """Show the main window (opening ``path`` in a worker) and run the event loop."""
    app = _make_app()
    from livgui.ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    window.start_up()
    if path:
        window.open_path(path, labels=labels)
    return int(app.exec())


def build_screenshot_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="livgui screenshot",
        description=f"Render the LivGUI window offscreen to a PNG ({RESEARCH_NOTICE}).",
    )
    p.add_argument("path", help="image file, DICOM folder, case or dataset folder")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--labels", help="mask file to show as the reference layer")
    p.add_argument("--plane", choices=("axial", "coronal", "sagittal"), default="axial")
    p.add_argument(
        "--slice", type=int, help="0-based index along the plane's axis (default: middle)"
    )
    p.add_argument(
        "--layout", choices=("1", "3"), help="1 or 3 views (default: 3; 1 for one-slice images)"
    )
    p.add_argument("--size", default="1600x1000", help="window size WxH in pixels")
    p.add_argument(
        "--preset",
        choices=("abdomen", "liver", "bone", "lung"),
        help="window preset (default: abdomen; data range for non-HU images)",
    )
    return p


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise SystemExit(
            f"livgui screenshot: --size must look like 1600x1000, got {text!r}"
        ) from exc
    if not (200 <= w <= 8000 and 200 <= h <= 8000):
        raise SystemExit(f"livgui screenshot: --size {text} is out of range (200..8000)")
    return w, h


def _load_for_screenshot(args: argparse.Namespace) -> Any:
    from livgui.ui import loading

    loaded = loading.load_path(args.path, labels=args.labels)
    if isinstance(loaded, loading.Listing):
        if not loaded.refs:
            raise ValueError(f"{args.path}: no case found")
        loaded = loading.load_ref(loaded.refs[0], labels=args.labels)
    return loaded


def screenshot(argv: Sequence[str]) -> int:
    """``livgui screenshot``: open a case in the real window offscreen and save a PNG."""
    args = build_screenshot_parser().parse_args(list(argv))
    size = _parse_size(args.size)
    try:
        loaded = _load_for_screenshot(args)
    except Exception as exc:  # a clear message, never a traceback
        log.debug("screenshot load failed", exc_info=True)
        sys.stderr.write(f"livgui screenshot: error: {exc}\n")
        return 1
    app = _make_app(offscreen=True)
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSettings

    from livgui.core.atomicio import atomic_write_bytes
    from livgui.ui.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:  # never touch the user's settings
        window = MainWindow(
            settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        )
        window.resize(*size)
        window.show_case(loaded)
        if args.preset:
            window.session.apply_preset(args.preset)
        layout = args.layout or window.session.layout
        window.session.set_layout(layout, args.plane)
        if args.slice is not None:
            _set_slice(window.session, args.plane, args.slice)
        panel = getattr(window, "metrics_panel", None)
        if panel is not None:
            panel.analyse_now()
        window.show()
        for _ in range(3):
            app.processEvents()
        image = window.grab().toImage()
        buffer = QByteArray()
        device = QBuffer(buffer)
        device.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(device, "PNG")  # type: ignore[call-overload]
        atomic_write_bytes(args.out, bytes(buffer.data()))
        window.close()
    from livgui.cli.main import emit_json

    emit_json(
        {
            "screenshot": str(Path(args.out).resolve()),
            "width": image.width(),
            "height": image.height(),
            "case": loaded.case_id,
        }
    )
    return 0


def _set_slice(session: Any, plane: str, index: int) -> None:
    from livgui.ui.planes import PLANE_SPECS

    axis = PLANE_SPECS[plane].slice_axis
    n = session.volume.shape[axis]
    if not 0 <= index < n:
        raise SystemExit(
            f"livgui screenshot: --slice {index} is outside 0..{n - 1} for the {plane} plane"
        )
    pos = list(session.cursor)
    pos[axis] = index
    session.set_cursor(tuple(pos))


def _is_headless(first: str) -> bool:
    from livgui.cli.main import COMMAND_MODULES

    if first.startswith("-") or first in COMMAND_MODULES:
        return True
    return not Path(first).exists()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livgui`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return run_gui()
    first = args[0]
    if first == "screenshot":
        return screenshot(args[1:])
    if first == "open":
        parser = argparse.ArgumentParser(prog="livgui open")
        parser.add_argument("path")
        parser.add_argument("--labels")
        ns = parser.parse_args(args[1:])
        return run_gui(ns.path, ns.labels)
    if not _is_headless(first):
        return run_gui(first)
    from livgui.cli.main import run_headless

    return run_headless(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
