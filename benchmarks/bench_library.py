"""RELIABILITY L3: a case library of many small cases with corrupt and duplicate ones.

Builds an MSD Task03-style folder (``imagesTr/liver_N.nii.gz`` + ``labelsTr/liver_N.nii.gz``)
of small synthetic CT cases in a temporary folder, truncates 5 images (corrupt), copies 3
cases under new numbers (duplicates), adds the folder to a fresh library and reports:

* ``scan_s``: time of ``Library.add_path`` (hash + validate by reading every case),
* the corrupt cases listed as unreadable, the duplicates recognised, and that every other
  case is usable (its image and reference load again from the recorded source),
* ``rescan_s``: adding the same folder again (everything is a duplicate),
* RSS and open files over 50 open / list / get / close loops (growth should be ~0).

Usage: ``python benchmarks/bench_library.py [--full] [--cases N]`` (smoke: 40 cases,
``--full``: 200).  Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import psutil

from livgui import imageio
from livgui.library import Library

N_CORRUPT = 5
N_DUPLICATE = 3
LOOPS = 50


def make_dataset(root: Path, n_cases: int, shape=(48, 48, 24)) -> dict[str, list[str]]:
    """Write ``n_cases`` cases, then corrupt 5 and duplicate 3 (extra cases)."""
    images, labels = root / "imagesTr", root / "labelsTr"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    i, j, k = np.indices(shape)
    for n in range(n_cases):
        centre = rng.uniform(0.35, 0.65, 3) * shape
        liver = ((i - centre[0]) / 12) ** 2 + ((j - centre[1]) / 10) ** 2 + (
            (k - centre[2]) / 6
        ) ** 2 < 1
        ct = rng.normal(0, 10, shape).astype(np.int16) - 900
        ct[liver] += 1000
        lab = liver.astype(np.uint8)
        lab[liver & (((i - centre[0]) / 3) ** 2 + ((j - centre[1]) / 3) ** 2 < 1)] = 2
        nib.save(nib.Nifti1Image(ct, affine), images / f"liver_{n}.nii.gz")
        nib.save(nib.Nifti1Image(lab, affine), labels / f"liver_{n}.nii.gz")
    corrupt = [f"liver_{n}" for n in range(0, n_cases, max(n_cases // N_CORRUPT, 1))][:N_CORRUPT]
    for name in corrupt:
        p = images / f"{name}.nii.gz"
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    duplicates = []
    for d in range(N_DUPLICATE):
        src, dst = f"liver_{1 + 2 * d}", f"liver_{n_cases + d}"
        shutil.copy(images / f"{src}.nii.gz", images / f"{dst}.nii.gz")
        shutil.copy(labels / f"{src}.nii.gz", labels / f"{dst}.nii.gz")
        duplicates.append(dst)
    return {"corrupt": corrupt, "duplicates": duplicates}


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _open_files() -> int:
    return len(psutil.Process().open_files())


def open_close_loops(root: Path) -> dict[str, Any]:
    rss, files = [], []
    for _ in range(LOOPS):
        with Library.open(root) as lib:
            for case in lib.list_cases():
                lib.get(case.case_id)
            lib.audit_log()
        rss.append(_rss_mb())
        files.append(_open_files())
    return {
        "loops": LOOPS,
        "rss_mb_after_loop_5": round(rss[4], 1),
        "rss_mb_after_last_loop": round(rss[-1], 1),
        "rss_growth_mb_5_to_last": round(rss[-1] - rss[4], 2),
        "open_files_first_last": [files[0], files[-1]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="200 cases instead of 40")
    parser.add_argument("--cases", type=int, default=None)
    args = parser.parse_args()
    n = args.cases or (200 if args.full else 40)
    lister, loader = imageio.list_cases, imageio.load_case
    with tempfile.TemporaryDirectory(prefix="livgui-bench-l3-") as tmp:
        data, libroot = Path(tmp) / "dataset", Path(tmp) / "library"
        t0 = time.perf_counter()
        truth = make_dataset(data, n)
        build_s = time.perf_counter() - t0
        with Library.open(libroot) as lib:
            report = lib.add_path(data, lister=lister, loader=loader)
            again = lib.add_path(data, lister=lister, loader=loader)
            unreadable = sorted(u["case_id"] for u in report.unreadable)
            dup_ids = sorted(d["case_id"] for d in report.duplicates)
            usable = lib.list_cases(status="new")
            t1 = time.perf_counter()
            refs = {r.case_id: r for r in lister(data)}
            reloaded = sum(loader(refs[c.case_id]).reference is not None for c in usable)
            reload_s = time.perf_counter() - t1
        loops = open_close_loops(libroot)
    doc = {
        "benchmark": "L3 case library",
        "readers": "livgui.imageio.list_cases / load_case",
        "cases_written": n + N_DUPLICATE,
        "dataset_build_s": round(build_s, 2),
        "scan_s": round(report.seconds, 3),
        "scan_ms_per_case": round(1000 * report.seconds / (n + N_DUPLICATE), 2),
        "rescan_s": round(again.seconds, 3),
        "added": len(report.added),
        "unreadable": unreadable,
        "corrupt_expected": sorted(truth["corrupt"]),
        "corrupt_all_listed": unreadable == sorted(truth["corrupt"]),
        "duplicates_found": dup_ids,
        "duplicates_expected": sorted(truth["duplicates"]),
        "duplicates_all_found": dup_ids == sorted(truth["duplicates"]),
        "rescan_all_duplicates": len(again.duplicates) == n + N_DUPLICATE and not again.added,
        "usable_cases": len(usable),
        "usable_reloaded_with_reference": reloaded,
        "reload_s": round(reload_s, 3),
        "open_close": loops,
    }
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    ok = doc["corrupt_all_listed"] and doc["duplicates_all_found"] and reloaded == n - N_CORRUPT
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
