"""Correction through the real window (offscreen): dab-to-screen latency, autosave GUI stall,
L2 through the GUI path.  Prints JSON.

    python benchmarks/bench_edit_gui.py          # smoke: 512x512 slices, few slices
    python benchmarks/bench_edit_gui.py --full   # 512x512x500 autosave, L2 on 512x512x300

Sections
--------
``dab``: a brush drag on a 512x512 axial slice; each mouse move is timed from the event to
the repainted view (``repaint()``: the updated pixels are on the offscreen surface), one
view and three views (all views repainted).  Target p90 <= 8 ms.
``autosave``: strokes, then idle while the journal worker writes checkpoints and compacted
snapshots of the whole mask; a 1 ms heartbeat timer measures the longest gap of the GUI
event loop during those idle windows.  Target < 16 ms.  The one-off copy of the mask when
the journal opens (first edit of a case) is reported separately.
``l2``: random strokes through the view with undo-all / redo-all (history list goto) exact
every ``check`` strokes; history bytes vs budget; time per undo step.  L6 (kill at random
while autosaving, recover) is measured headless by ``bench_editing.py l6`` and with the
real app by ``tests/ui/test_recovery_app.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from livgui.core import Geometry, Volume
from livgui.core.editing import mask_sha256
from livgui.library.recovery import JournalOptions
from livgui.ui.loading import Loaded

LEFT, NOMOD = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


EDIT_ONLY = ["livgui.ui.case_list", "livgui.ui.layers_panel", "livgui.ui.edit_panel"]


def make_window(tmp: Path, shape: tuple[int, int, int], panels: list[str] | None = None):
    from livgui.ui.main_window import MainWindow

    os.environ["LIVGUI_RECOVERY_DIR"] = str(tmp / "recovery")
    settings = QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)
    w = MainWindow(settings=settings, panels=panels)
    w.resize(1600, 1000)
    w.show()
    rng = np.random.default_rng(0)
    data = rng.integers(-100, 200, size=shape, dtype=np.int16)
    geom = Geometry.from_spacing(shape, (1.0, 0.7, 0.7))
    w.show_case(Loaded("bench", Volume(data, geom, name="bench"), []))
    w.edit_session.prompt = lambda _c: "discard"
    w.edit_session.start_from = "empty"
    w.edit_controller.set_tool("brush")
    w.edit_controller.set_size(6.0)
    QApplication.processEvents()
    return w


def bench_dab(app: QApplication, tmp: Path, depth: int, moves: int) -> dict:
    w = make_window(tmp, (depth, 512, 512))
    out = {}
    for layout in ("1", "3"):
        w.session.set_layout(layout, "axial")
        app.processEvents()
        view = w.views["axial"]
        z = depth // 2
        w.session.set_cursor((z, 256, 256))
        view.repaint()
        start = view.widget_pos((z, 100, 100)).toPoint()
        QTest.mousePress(view, LEFT, NOMOD, start)
        times = []
        for k in range(moves):
            y, x = 100 + (k * 7) % 300, 100 + (k * 13) % 300
            p = view.widget_pos((z, y, x)).toPoint()
            t0 = time.perf_counter()
            QTest.mouseMove(view, p)
            if layout == "1":
                view.repaint()
            else:
                for v in w.views.values():
                    v.repaint()
            times.append((time.perf_counter() - t0) * 1000)
        QTest.mouseRelease(view, LEFT, NOMOD, p)
        app.processEvents()
        out[f"views_{layout}"] = {"p50_ms": pct(times, 50), "p90_ms": pct(times, 90),
                                  "max_ms": pct(times, 100), "moves": moves}  # fmt: skip
    out["slice"] = [512, 512]
    out["target_p90_ms"] = 8.0
    w.close()
    return out


def stroke(view, z: int, rng: np.random.Generator, shape: tuple[int, int, int]) -> None:
    y, x = rng.uniform(20, shape[1] - 20), rng.uniform(20, shape[2] - 20)
    pts = [view.widget_pos((z, y + 3 * k, x + 2 * k)).toPoint() for k in range(6)]
    QTest.mousePress(view, LEFT, NOMOD, pts[0])
    for p in pts[1:]:
        QTest.mouseMove(view, p)
    QTest.mouseRelease(view, LEFT, NOMOD, pts[-1])


def bench_autosave(
    app: QApplication, tmp: Path, depth: int, rounds: int, panels: list[str] | None
) -> dict:
    shape = (depth, 512, 512)
    w = make_window(tmp, shape, panels)
    w.session.set_layout("1", "axial")
    es = w.edit_session
    t0 = time.perf_counter()
    es.ensure_layer()  # opens the journal: the one whole-mask copy on the GUI thread
    journal_open_ms = (time.perf_counter() - t0) * 1000
    es.journal.options = JournalOptions(interval_s=0.5, snapshot_every=2)
    checkpoints: list[int] = []
    es.autosaved.connect(lambda n, _s: checkpoints.append(n))
    view, rng = w.views["axial"], np.random.default_rng(1)
    gaps: list[float] = []
    clock = QElapsedTimer()
    beat = QTimer()
    beat.setInterval(1)
    last = [0]

    def tick() -> None:
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    beat.timeout.connect(tick)
    for _r in range(rounds):
        z = int(rng.integers(depth))
        w.session.set_cursor((z, 256, 256))
        stroke(view, z, rng, shape)
        before = len(checkpoints)
        clock.start()
        last[0] = 0
        beat.start()
        end = time.monotonic() + 1.5
        while time.monotonic() < end and len(checkpoints) == before:
            app.processEvents()
        while time.monotonic() < end:  # keep beating while the worker finishes
            app.processEvents()
        beat.stop()
    stalls = sorted(gaps)
    out = {
        "shape": list(shape),
        "journal_open_copy_ms": round(journal_open_ms, 1),
        "rounds": rounds,
        "checkpoints": len(checkpoints),
        "heartbeat_max_gap_ms": float(stalls[-1]) if stalls else None,
        "heartbeat_p99_gap_ms": pct(stalls, 99),
        "target_ms": 16,
    }
    w.close()
    return out


def bench_l2(app: QApplication, tmp: Path, shape: tuple[int, int, int], strokes: int,
             check: int) -> dict:  # fmt: skip
    w = make_window(tmp, shape)
    w.session.set_layout("1", "axial")
    es = w.edit_session
    h = es.ensure_layer()
    ref = h.labels.copy()  # the state before the oldest kept step (advanced on each drop)
    h.subscribe(lambda kind, step: step.edit.apply(ref) if kind == "drop" else None)
    view, rng = w.views["axial"], np.random.default_rng(2)
    per_stroke, undo_ms, exact = [], [], True
    for k in range(1, strokes + 1):
        z = int(rng.integers(shape[0]))
        w.session.set_cursor((z, 256, 256))
        t0 = time.perf_counter()
        stroke(view, z, rng, shape)
        per_stroke.append((time.perf_counter() - t0) * 1000)
        if k % check == 0:
            end, n = mask_sha256(h.labels), h.position
            t0 = time.perf_counter()
            es.goto(0)
            undo_ms.append((time.perf_counter() - t0) * 1000 / max(1, n))
            exact &= bool(np.array_equal(h.labels, ref))  # undo-all = oldest kept state
            es.goto(len(h.steps()))
            exact &= mask_sha256(h.labels) == end
    out = {
        "shape": list(shape), "strokes": strokes, "exact": bool(exact),
        "history_mb": round(h.nbytes / 2**20, 2), "budget_mb": h.budget_bytes / 2**20,
        "dropped": h.dropped, "stroke_p50_ms": pct(per_stroke, 50),
        "stroke_p90_ms": pct(per_stroke, 90), "undo_step_ms": pct(undo_ms, 50),
    }  # fmt: skip
    w.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true")
    ap.add_argument("sections", nargs="*", default=["dab", "autosave", "l2"])
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    result: dict = {"full": args.full}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        if "dab" in args.sections:
            result["dab"] = bench_dab(app, t / "a", 40, 200)
        if "autosave" in args.sections:
            depth = 500 if args.full else 60
            # the autosave alone (window with the edit docks), then the whole window, where
            # the metrics dock also re-analyses the case in a worker after every edit
            result["autosave"] = bench_autosave(app, t / "b", depth, 8, EDIT_ONLY)
            result["autosave_full_window"] = bench_autosave(app, t / "d", depth, 8, None)
        if "l2" in args.sections:
            shape = (300, 512, 512) if args.full else (20, 128, 128)
            n = 10000 if args.full else 300
            result["l2"] = bench_l2(app, t / "c", shape, n, 1000 if args.full else 100)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
