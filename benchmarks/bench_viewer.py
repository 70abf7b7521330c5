"""Viewer speed and memory: slice change with overlays at 512x512, offscreen.

Measures, in one run and on the same synthetic volume (int16 CT, uint8 labels with a
liver and lesions):

* ``scroll_ms``: step the axial slice and repaint the axial view (the view scrolled; Qt
  flushes the other views' moved crosshairs in the same repaint, so this is an upper bound);
* ``scroll_all_ms``: the same step, then repaint the whole view grid;
* ``crosshair_ms``: move the cursor in-plane (as a click in the axial view does): the
  coronal and sagittal slices change; repaint all three views;
* the same figures for plain pyqtgraph ``ImageView`` widgets (one per plane, overlay as a
  second ImageItem), and our p90 divided by theirs;
* ``memory``: process RSS growth while viewing as a multiple of the raw volume size.

Prints one JSON document.  Default: 512x512x200 (smoke: a short CT, so fixed window costs do not dominate the memory multiple); ``--full``: 512x512x1000.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import psutil

from livgui.core.geometry import Geometry
from livgui.core.volume import LabelMap, Volume


def make_case(nz: int, n: int = 512) -> tuple[Volume, LabelMap]:
    """A 512x512 CT-like volume: body ellipse, liver ellipsoid with lesions, noise."""
    rng = np.random.default_rng(0)
    data = np.empty((nz, n, n), np.int16)
    labels = np.zeros((nz, n, n), np.uint8)
    y, x = np.ogrid[:n, :n]
    body = ((y - n / 2) / (n * 0.4)) ** 2 + ((x - n / 2) / (n * 0.45)) ** 2 < 1
    noise = rng.normal(0, 12, size=(8, n, n)).astype(np.int16)
    for z in range(nz):
        t = (z - nz * 0.5) / (nz * 0.4)
        sl = np.where(body, np.int16(40), np.int16(-1000)) + noise[z % 8]
        r = max(0.0, 1 - t * t)
        liver = ((y - n * 0.45) / (n * 0.2 * r + 1e-6)) ** 2 + (
            (x - n * 0.3) / (n * 0.17 * r + 1e-6)
        ) ** 2 < 1
        lesion = ((y - n * 0.45) / (n * 0.04)) ** 2 + ((x - n * 0.3) / (n * 0.04)) ** 2 < 1
        sl[liver] += 60
        labels[z][liver] = 1
        labels[z][liver & lesion & (abs(t) < 0.5)] = 2
        data[z] = sl
    geom = Geometry.from_spacing((nz, n, n), (1.0, 0.75, 0.75))
    return Volume(data, geom, name="bench"), LabelMap(labels, geom, name="reference")


def stats(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Wall-clock and process-CPU percentiles in ms (CPU time is immune to other
    processes preempting this one on a shared machine; wall time is what a user sees)."""
    a = np.asarray(samples) * 1000.0
    wall, cpu = a[:, 0], a[:, 1]
    return {
        "p50": round(float(np.percentile(wall, 50)), 3),
        "p90": round(float(np.percentile(wall, 90)), 3),
        "max": round(float(wall.max()), 3),
        "cpu_p50": round(float(np.percentile(cpu, 50)), 3),
        "cpu_p90": round(float(np.percentile(cpu, 90)), 3),
        "n": len(a),
    }


def _timed(fn) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def make_window(app):
    from PySide6.QtCore import QSettings

    from livgui.ui.main_window import MainWindow

    window = MainWindow(settings=QSettings(os.devnull, QSettings.Format.IniFormat))
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    return window


def bench_livgui(app, window, vol: Volume, lab: LabelMap, frames: int) -> dict[str, object]:
    from livgui.ui.loading import Loaded

    window.show_case(Loaded("bench", vol, [("reference", "reference", lab)]))
    window.metrics_panel._timer.stop()  # no background analysis during timing
    window.show()
    app.processEvents()
    s, views = window.session, window.views
    nz, ny, nx = vol.shape
    s.set_cursor((nz // 2, ny // 2, nx // 2))
    for v in views.values():
        v.repaint()

    def step(i: int) -> None:
        z = 2 + (i % (nz - 4))
        s.set_cursor((z, s.cursor[1], s.cursor[2]))

    scroll, scroll_all, cross = [], [], []
    for i in range(frames):
        scroll.append(_timed(lambda i=i: (step(i), views["axial"].repaint())))
        app.processEvents()  # let the other views' pending updates go before the next frame
    # grid.repaint() paints every dirty view once (what the event loop does after a move)
    for i in range(frames):
        scroll_all.append(_timed(lambda i=i: (step(i), window.grid.repaint())))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        y, x = int(rng.integers(0, ny)), int(rng.integers(0, nx))
        cross.append(
            _timed(lambda y=y, x=x: (s.set_cursor((s.cursor[0], y, x)), window.grid.repaint()))
        )
    rss = psutil.Process().memory_info().rss
    window.close()
    return {
        "scroll_ms": stats(scroll),
        "scroll_all_ms": stats(scroll_all),
        "crosshair_ms": stats(cross),
        "rss": rss,
    }


def bench_pyqtgraph(app, vol: Volume, lab: LabelMap, frames: int) -> dict[str, object]:
    import pyqtgraph as pg

    lut = np.zeros((256, 4), np.uint8)
    lut[1] = (40, 200, 90, 115)
    lut[2] = (255, 225, 0, 160)
    planes = {
        "axial": (vol.data, lab.data),
        "coronal": (vol.data.transpose(1, 0, 2), lab.data.transpose(1, 0, 2)),
        "sagittal": (vol.data.transpose(2, 0, 1), lab.data.transpose(2, 0, 1)),
    }
    views, overlays = {}, {}
    for name, (img, _labels) in planes.items():
        iv = pg.ImageView()
        iv.ui.histogram.hide()
        iv.ui.roiBtn.hide()
        iv.ui.menuBtn.hide()
        iv.setImage(
            img,
            axes={"t": 0, "y": 1, "x": 2},
            autoLevels=False,
            levels=(-160, 240),
            autoHistogramRange=False,
        )
        item = pg.ImageItem()
        iv.getView().addItem(item)
        iv.resize(600, 600)
        iv.show()
        views[name], overlays[name] = iv, item
    app.processEvents()

    def show(name: str, index: int) -> None:
        views[name].setCurrentIndex(index)
        overlays[name].setImage(lut[planes[name][1][index]], autoLevels=False)

    def repaint(name: str) -> None:
        views[name].ui.graphicsView.viewport().repaint()

    nz, ny, nx = vol.shape
    scroll, scroll_all, cross = [], [], []
    for i in range(frames):
        z = 2 + (i % (nz - 4))
        scroll.append(_timed(lambda z=z: (show("axial", z), repaint("axial"))))
        app.processEvents()
    for i in range(frames):
        z = 2 + (i % (nz - 4))
        scroll_all.append(_timed(lambda z=z: (show("axial", z), [repaint(n) for n in views])))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        y, x = int(rng.integers(0, ny)), int(rng.integers(0, nx))
        cross.append(
            _timed(
                lambda y=y, x=x: (
                    show("coronal", y),
                    show("sagittal", x),
                    [repaint(n) for n in views],
                )
            )
        )
    for iv in views.values():
        iv.close()
    return {
        "scroll_ms": stats(scroll),
        "scroll_all_ms": stats(scroll_all),
        "crosshair_ms": stats(cross),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="512x512x1000 instead of 512x512x200")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = make_window(app)  # baseline: the empty window (Qt, fonts, imports)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    vol, lab = make_case(1000 if args.full else 200)
    raw = vol.nbytes
    ours = bench_livgui(app, window, vol, lab, args.frames)
    growth = ours.pop("rss") - rss0
    theirs = bench_pyqtgraph(app, vol, lab, args.frames)
    keys = ("scroll_ms", "scroll_all_ms", "crosshair_ms")
    ratio = {k: round(ours[k]["p90"] / theirs[k]["p90"], 3) for k in keys}
    cpu_ratio = {k: round(ours[k]["cpu_p90"] / max(theirs[k]["cpu_p90"], 1e-3), 3) for k in keys}
    doc = {
        "notice": "research use only, not for diagnosis",
        "shape_zyx": list(vol.shape),
        "platform": os.environ.get("QT_QPA_PLATFORM"),
        "livgui": ours,
        "pyqtgraph_imageview": theirs,
        "p90_ratio_livgui_over_pyqtgraph": ratio,
        "cpu_p90_ratio_livgui_over_pyqtgraph": cpu_ratio,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "targets": {"scroll_p90_ms": 8.0, "crosshair_all_views_p90_ms": 20.0, "memory_x_raw": 3.0},
        "memory": {
            "raw_mb": round(raw / 2**20, 1),
            "rss_growth_mb": round(growth / 2**20, 1),
            "x_raw": round(growth / raw, 2),
        },
        "meets_targets": bool(
            ours["scroll_ms"]["p90"] <= 8.0
            and ours["crosshair_ms"]["p90"] <= 20.0
            and growth / raw <= 3.0
        ),
        "meets_targets_cpu_time": bool(
            ours["scroll_ms"]["cpu_p90"] <= 8.0
            and ours["crosshair_ms"]["cpu_p90"] <= 20.0
            and growth / raw <= 3.0
        ),
    }
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
