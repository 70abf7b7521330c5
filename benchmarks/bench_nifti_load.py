"""NIfTI load speed and memory (issue target + RELIABILITY load L1, NIfTI part).

Builds a 512x512x500 int16 ``.nii.gz`` by repeating the 119 ircadb-17 CT slices (plain
pydicom; synthetic noise when ../shared/data is absent), saved with nibabel's default
compression into a temporary folder, warms the file cache, then reports (one JSON document
on stdout):

* ``speed``: best of N wall times of ``nibabel.load(p).get_fdata()`` and of
  ``livgui.imageio.nifti.read_nifti(p)``, their ratio (target <= 0.55), and the raw
  decompression time of isal.igzip, indexed_gzip and stdlib gzip on the same file;
* ``memory``: peak memory of each reader as a multiple of the raw volume size (target
  <= 2), measured in a fresh subprocess as peak RSS (VmHWM) minus the RSS before loading;
* ``L1``: 512x512x100 (``--full``: 512x512x1000): time to first slice (load + window the
  middle axial slice to uint8), peak memory multiple, RSS after releasing the volume
  relative to the baseline, and the time to cut + window one axial/coronal/sagittal slice
  (a proxy for the per-frame cost below the GUI).

Usage: ``python benchmarks/bench_nifti_load.py [--full] [--repeats 3] [--slices 500]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIVGUI_SHARED_DATA", ROOT.parent / "shared" / "data"))
IRCADB = SHARED / "ircadb-17" / "PATIENT_DICOM"
CHUNK = 8 << 20


def ct_slices() -> tuple[np.ndarray, str]:
    """The ircadb-17 axial slices (z, row, col) int16 HU, or synthetic noise."""
    files = sorted(IRCADB.glob("image_*")) if IRCADB.is_dir() else []
    if not files:
        rng = np.random.default_rng(0)
        return rng.integers(-1024, 1500, size=(64, 512, 512)).astype(np.int16), "synthetic"
    import pydicom

    datasets = [pydicom.dcmread(str(f)) for f in files]
    datasets.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    slices = [
        (d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)).astype(np.int16)
        for d in datasets
    ]
    return np.stack(slices), f"ircadb-17 ({len(files)} slices repeated)"


def build_file(folder: Path, n_slices: int, slices: np.ndarray) -> Path:
    """Save a RAS int16 .nii.gz of ``n_slices`` axial slices with nibabel's defaults."""
    import nibabel as nib

    reps = -(-n_slices // len(slices))
    stack = np.concatenate([slices] * reps)[:n_slices]  # (z, row->P, col->L)
    file_order = np.ascontiguousarray(stack[:, ::-1, ::-1].transpose(2, 1, 0))  # i->R, j->A
    affine = np.diag([0.743, 0.743, 1.6, 1.0])
    path = folder / f"ct_{n_slices}.nii.gz"
    nib.save(nib.Nifti1Image(file_order, affine), str(path))
    return path


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(CHUNK):
            pass


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        del result
    return min(times)


def decompress_times(path: Path, repeats: int) -> dict[str, float]:
    import gzip

    import indexed_gzip
    from isal import igzip

    buf = bytearray(CHUNK)
    view = memoryview(buf)

    def drain(opener):
        def run():
            with opener(str(path)) as fh:
                while fh.readinto(view):
                    pass

        return run

    return {
        "isal_igzip_s": best_of(drain(lambda p: igzip.open(p, "rb")), repeats),
        "indexed_gzip_s": best_of(drain(indexed_gzip.IndexedGzipFile), repeats),
        "stdlib_gzip_s": best_of(drain(lambda p: gzip.open(p, "rb")), repeats),
    }


def child(mode: str, path: str) -> None:
    """Measure one load in this fresh process; print a JSON line."""
    import nibabel as nib
    import psutil

    from livgui.imageio.nifti import read_nifti

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    held: dict[str, object] = {}
    if mode == "nibabel":
        data = nib.load(path).get_fdata()
        raw = data.size * 2  # the int16 volume it holds
        held["data"] = data
    else:
        vol = read_nifti(path)
        raw = vol.nbytes
        mid = vol.data[vol.shape[0] // 2].astype(np.float32)
        held["shown"] = np.clip((mid + 160.0) * (255.0 / 400.0), 0, 255).astype(np.uint8)
        held["vol"] = vol
    first = time.perf_counter() - t0
    peak = peak_rss()
    out: dict[str, object] = {"seconds_to_first_slice": first, "peak_multiple": (peak - rss0) / raw}
    if mode == "l1":
        out["slice_ms"] = slice_times(held["vol"])
    held.clear()
    data = vol = mid = None
    gc.collect()
    out["rss_after_release_minus_baseline_mb"] = (proc.memory_info().rss - rss0) / 2**20
    out["raw_mb"] = raw / 2**20
    print(json.dumps(out))


def peak_rss() -> int:
    """Peak RSS of this process in bytes: VmHWM (per exec'd image) where Linux has it.

    ``ru_maxrss`` is not used on Linux because it survives fork+exec, so a child would
    report its parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def slice_times(vol) -> dict[str, float]:
    """Mean ms to cut one slice in each plane and window it to uint8."""
    d = vol.data
    cuts = {
        "axial": lambda i: d[i % d.shape[0]],
        "coronal": lambda i: d[:, i % d.shape[1], :],
        "sagittal": lambda i: d[:, :, i % d.shape[2]],
    }
    out = {}
    for name, cut in cuts.items():
        t0 = time.perf_counter()
        for i in range(50):
            s = cut(i * 7).astype(np.float32)
            np.clip((s + 160.0) * (255.0 / 400.0), 0, 255).astype(np.uint8)
        out[name] = (time.perf_counter() - t0) / 50 * 1000
    return out


def measure(mode: str, path: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="L1 at 512x512x1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slices", type=int, default=500, help="slices of the speed file")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT))
    import nibabel as nib

    from livgui.imageio.nifti import read_nifti

    slices, origin = ct_slices()
    with tempfile.TemporaryDirectory(prefix="livgui_bench_") as tmp:
        path = build_file(Path(tmp), args.slices, slices)
        warm(path)
        t_nib = best_of(lambda: nib.load(str(path)).get_fdata(), args.repeats)
        t_liv = best_of(lambda: read_nifti(path), args.repeats)
        speed = {
            "nibabel_get_fdata_s": t_nib,
            "read_nifti_s": t_liv,
            "ratio": t_liv / t_nib,
            "target_ratio": 0.55,
            **decompress_times(path, args.repeats),
        }
        memory = {
            "read_nifti": measure("livgui", path),
            "nibabel_get_fdata": measure("nibabel", path),
            "target_peak_multiple": 2.0,
        }
        path.unlink()
        l1_slices = 1000 if args.full else 100
        l1_path = build_file(Path(tmp), l1_slices, slices)
        warm(l1_path)
        l1 = {"shape_zyx": [l1_slices, 512, 512], **measure("l1", l1_path)}
    report = {
        "benchmark": "nifti_load",
        "source": origin,
        "file": {
            "shape_zyx": [args.slices, 512, 512],
            "dtype": "int16",
            "compression": "nibabel default",
        },
        "cpu_count": os.cpu_count(),
        "speed": speed,
        "memory": memory,
        "L1": l1,
        "meets": {
            "speed": speed["ratio"] <= 0.55,
            "memory": memory["read_nifti"]["peak_multiple"] <= 2.0,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
