"""Load a many-file DICOM series: LivGUI's reader against naive pydicom (warm file cache).

Writes an uncompressed 512x512 int16 series like a scanner export (ircadb-17 slices
repeated with fresh UIDs and positions; a synthetic phantom when ../shared/data is absent)
into a temporary folder, then reports best-of-3 wall times:

* ``naive_s``: ``dcmread`` every file, sort by position on the normal, stack
  ``pixel_array``, rescale to float32 HU;
* ``livgui_s``: ``read_dicom_series(scan_dicom(folder).series[0])`` (scan included),
  with ``scan_s`` / ``read_s`` split out and scan times per worker count;
* ``peak_ratio``: tracemalloc peak during the LivGUI load / raw int16 volume bytes;
* L1 (RELIABILITY): time to first slice (scan + read: the volume is ready to show) for a
  200-file series, or 1000 files with ``--full``, its peak memory ratio, and the traced
  memory left after the volume is dropped.

Usage: ``python benchmarks/bench_dicom_load.py [--full] [--n 500]``.  Prints one JSON.
Targets (issue 2): ``livgui_s`` <= 0.8 s for 500 files, peak <= 2x raw.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livgui.imageio.dicom import read_dicom_series, scan_dicom
from tests.imageio.dicom_factory import SliceSpec, make_dataset

IRCADB = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ircadb-17" / "PATIENT_DICOM"
)


def _templates() -> list[pydicom.Dataset]:
    if IRCADB.is_dir():
        files = sorted(IRCADB.iterdir(), key=lambda p: int(p.name.split("_")[-1]))
        return [pydicom.dcmread(f) for f in files]
    rng = np.random.default_rng(0)
    stored = (rng.normal(40, 20, (512, 512)) + 1024).astype(np.uint16)
    return [make_dataset(SliceSpec(stored, (0.0, 0.0, 0.0), intercept=-1024))]


def write_series(folder: Path, n: int) -> None:
    """``n`` slice files with shuffled names, 1.6 mm apart, one SeriesInstanceUID."""
    templates = _templates()
    series_uid = generate_uid()
    order = np.random.default_rng(n).permutation(n)
    folder.mkdir(parents=True)
    for k in range(n):
        ds = templates[k % len(templates)]
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.ImagePositionPatient = [0, 0, f"{1.6 * k:.4f}"]
        ds.InstanceNumber = k
        ds.save_as(folder / f"IM{order[k]:05d}", enforce_file_format=True)


def naive_load(folder: Path) -> np.ndarray:
    """What a script would do with plain pydicom."""
    dss = [pydicom.dcmread(f) for f in folder.iterdir()]
    normal = np.cross(
        np.asarray(dss[0].ImageOrientationPatient[:3], float),
        np.asarray(dss[0].ImageOrientationPatient[3:], float),
    )
    dss.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)))
    out = np.empty((len(dss), int(dss[0].Rows), int(dss[0].Columns)), np.float32)
    for k, d in enumerate(dss):
        out[k] = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
    return out


def best_of(fn: Callable[[], Any], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_ratio(fn: Callable[[], Any], raw_bytes: int) -> tuple[float, float]:
    """(tracemalloc peak / raw bytes during fn, traced bytes left after dropping its result)."""
    gc.collect()
    tracemalloc.start()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    del result
    gc.collect()
    left, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / raw_bytes, left / raw_bytes


def livgui_load(folder: Path, workers: int | None = None) -> Any:
    return read_dicom_series(scan_dicom(folder, workers=workers).series[0])


def bench_500(root: Path, n: int) -> dict[str, Any]:
    folder = root / f"series{n}"
    write_series(folder, n)
    raw = n * 512 * 512 * 2
    ref = naive_load(folder)  # warms the file cache
    vol = livgui_load(folder)
    assert np.array_equal(vol.data, ref), "LivGUI and naive pydicom disagree"
    info = scan_dicom(folder).series[0]
    out: dict[str, Any] = {
        "files": n,
        "naive_s": round(best_of(lambda: naive_load(folder)), 3),
        "livgui_s": round(best_of(lambda: livgui_load(folder)), 3),
        "scan_s": round(best_of(lambda: scan_dicom(folder)), 3),
        "read_s": round(best_of(lambda: read_dicom_series(info)), 3),
        "scan_s_by_workers": {
            str(w): round(best_of(lambda w=w: scan_dicom(folder, workers=w)), 3) for w in (1, 2, 4)
        },
    }
    out["speedup_vs_naive"] = round(out["naive_s"] / out["livgui_s"], 2)
    out["peak_ratio"], _ = (round(v, 3) for v in peak_ratio(lambda: livgui_load(folder), raw))
    out["naive_peak_ratio"], _ = (round(v, 3) for v in peak_ratio(lambda: naive_load(folder), raw))
    out["meets_0.8s"] = out["livgui_s"] <= 0.8
    out["meets_2x_raw"] = out["peak_ratio"] <= 2.0
    return out


def bench_l1(root: Path, n: int) -> dict[str, Any]:
    folder = root / f"l1_{n}"
    write_series(folder, n)
    raw = n * 512 * 512 * 2
    livgui_load(folder)  # warm cache
    t = time.perf_counter()
    series = scan_dicom(folder).series[0]
    scan_s = time.perf_counter() - t
    vol = read_dicom_series(series)
    first_slice_s = time.perf_counter() - t
    del vol
    peak, left = peak_ratio(lambda: livgui_load(folder), raw)
    return {
        "files": n,
        "scan_s": round(scan_s, 3),
        "time_to_first_slice_s": round(first_slice_s, 3),
        "peak_ratio": round(peak, 3),
        "traced_left_after_close_ratio": round(left, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="L1 with 1000 files (default 200)")
    parser.add_argument("--n", type=int, default=500, help="files in the speed comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livgui_bench_dicom_") as tmp:
        root = Path(tmp)
        result = {
            "benchmark": "dicom_load",
            "data": "ircadb-17 slices repeated" if IRCADB.is_dir() else "synthetic phantom",
            "cpus": os.cpu_count(),
            "load": bench_500(root, args.n),
            "L1": bench_l1(root, 1000 if args.full else 200),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
