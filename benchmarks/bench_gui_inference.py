"""GUI event-loop stall while the segmentation panel runs a CPU cascade; prints JSON.

The real main window (offscreen) shows a synthetic CT; the segmentation panel runs the
CPU-sized cascade (U-Net base 16 at 256 x 256 for the liver, the same on the liver crop
for lesions; random weights, stage 1 biased so the liver covers the body, the worst case
for stage 2) with the in-GUI thread limit (cores - 1).  A 5 ms QTimer heartbeat on the
GUI thread measures the longest gap between its ticks: the event-loop stall a user
would feel (target < 50 ms), during inference and then while the prediction layer is
applied, drawn and the metrics dock computes its figures.  The same heartbeat without
inference gives the baseline.

    python benchmarks/bench_gui_inference.py [--full]

Smoke: 512 x 512 x 24; ``--full``: 512 x 512 x 120.  Research use only, not for diagnosis.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _gaps(stamps: list[float]) -> dict:
    gaps = np.diff(stamps) * 1000 if len(stamps) > 1 else np.array([0.0])
    return {
        "ticks": len(stamps),
        "max_gap_ms": round(float(gaps.max()), 1),
        "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
        "mean_gap_ms": round(float(gaps.mean()), 2),
    }


def _heartbeat(window, signal, timeout_s: float) -> list[float]:
    """Run the event loop until ``signal`` fires (or ``timeout_s``), ticking every 5 ms."""
    from PySide6.QtCore import QEventLoop, QTimer

    stamps: list[float] = []
    loop = QEventLoop()
    timer = QTimer(window)
    timer.setInterval(5)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    if signal is not None:
        signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    timer.start()
    loop.exec()
    timer.stop()
    return stamps


def main() -> int:
    ap = argparse.ArgumentParser(description="GUI stall during CPU inference (JSON)")
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    depth = 120 if args.full else 24
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LIVGUI_MODELS_DIR"] = str(Path(tmp) / "models")
        os.environ["LIVGUI_BUNDLED_MODELS"] = str(Path(tmp) / "none")
        return _run(Path(tmp), depth)


def _run(tmp: Path, depth: int) -> int:
    from bench_inference import _unet_bundle, phantom
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from livgui.core.volume import RESEARCH_NOTICE, LabelMap
    from livgui.ui.loading import Loaded
    from livgui.ui.main_window import MainWindow

    hp = {"base_c": 16, "depth": 4, "bilinear": True}
    models = tmp / "models"
    _unet_bundle(models, "cpu-liver", "liver", hp, 256, bias=50.0)
    _unet_bundle(models, "cpu-lesion", "lesion", hp, 256)
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("livgui-bench")
    window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1400, 900)
    window.show()
    panel = window.segment_panel
    panel.refresh_models()
    _heartbeat(window, panel.models_listed, 60)
    vol = phantom((depth, 512, 512))
    ref = LabelMap(np.zeros(vol.shape, np.uint8), vol.geometry, name="reference")
    window.show_case(Loaded("bench", vol, [("reference", "reference", ref)]))
    idle = _heartbeat(window, None, 1.0)
    done: list[object] = []
    panel.run_finished.connect(done.append)
    panel.run_failed.connect(done.append)
    t0 = time.perf_counter()
    panel.run_current()
    busy = _heartbeat(window, panel.worker.ended, 900)
    total = time.perf_counter() - t0
    # applying the layer, redrawing the views and the metrics dock's analysis (a worker)
    after = _heartbeat(window, window.metrics_panel.analysis_done, 120)
    result = done[0] if done else None
    out = {
        "notice": RESEARCH_NOTICE,
        "volume": list(vol.shape),
        "models": "unet2d base 16 @256 (liver) + unet2d base 16 @256 on the crop (lesion)",
        "device": panel.device_label.text(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "run_s": round(total, 2),
        "engine_timings_s": {k: round(v, 2) for k, v in getattr(result, "timings_s", {}).items()},
        "idle": _gaps(idle),
        "during_inference": _gaps(busy),
        "result_applied_until_metrics_shown": _gaps(after),
        "target_max_gap_ms": 50,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    window.wait_for_workers()
    window.close()
    print(json.dumps(out, indent=2))
    return 0 if result is not None and not isinstance(result, str) else 1


if __name__ == "__main__":
    raise SystemExit(main())
