"""RELIABILITY L8: scan a messy import folder of many files.

Builds (in a temporary folder, with pydicom) a folder tree mixing, in shuffled sub-folders:
four CT series of different sizes, three localizers (two tagged inside a CT series' UID,
one untagged with its own UID and another orientation), text junk, DICOM files truncated in
their pixel data, structured-report files (no pixels), and one JPEG 2000 series whose
decoder is monkeypatched away.  Reports:

* ``scan_s`` and files per second, ``max_progress_gap_s`` (longest wait between progress
  callbacks: what a GUI worker would show), whether the series were grouped right (UID and
  file count per series, localizers flagged), the junk count, unreadable count and the
  undecodable series listed, and the time to read the largest series after the scan.

Usage: ``python benchmarks/bench_messy_import.py [--full]`` (smoke: 500 files, ``--full``:
5000).  Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import JPEG2000Lossless, generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livgui.imageio import dicom_decode
from livgui.imageio.dicom import read_dicom_series, scan_dicom
from tests.imageio.dicom_factory import CORONAL, SliceSpec, write_slice

SIZE = 128
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR: no pixels


class Builder:
    """Writes files into shuffled sub-folders and remembers what it wrote."""

    def __init__(self, root: Path, seed: int = 0) -> None:
        self.root = root
        self.rng = np.random.default_rng(seed)
        self.count = 0
        self.expected: dict[str, int] = {}

    def path(self, suffix: str = "") -> Path:
        self.count += 1
        folder = self.root / f"dir{self.rng.integers(0, 12):02d}" / f"sub{self.rng.integers(0, 3)}"
        return folder / f"F{self.rng.integers(0, 1 << 40):011x}{suffix}"

    def series(self, uid: str, n: int, syntax: str | None = None) -> None:
        base = (self.rng.normal(40, 15, (SIZE, SIZE)) + 1024).astype(np.uint16)
        for k in range(n):
            spec = SliceSpec(base + k, (0.0, 0.0, 2.0 * k), series_uid=uid, intercept=-1024,
                             instance_number=k + 1, description=f"series {uid[-2:]}")  # fmt: skip
            if syntax:
                spec.transfer_syntax = syntax
            write_slice(self.path(".dcm"), spec)
        self.expected[uid] = n

    def localizer(self, uid: str, tagged: bool, y: float) -> None:
        kind = ("ORIGINAL", "PRIMARY", "LOCALIZER") if tagged else ("ORIGINAL", "PRIMARY")
        stored = np.full((SIZE, SIZE), 1024, np.uint16)
        write_slice(
            self.path(".dcm"),
            SliceSpec(stored, (0.0, y, 0.0), orientation=CORONAL, series_uid=uid, image_type=kind),
        )

    def junk_text(self) -> None:
        p = self.path(".txt")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("scanner log line\n" * int(self.rng.integers(1, 50)))

    def truncated(self) -> None:
        stored = np.full((SIZE, SIZE), 1000, np.uint16)
        p = write_slice(
            self.path(".dcm"), SliceSpec(stored, (0.0, 0.0, 999.0), series_uid="1.9.9.9.9")
        )
        data = p.read_bytes()
        p.write_bytes(data[: len(data) - SIZE * SIZE])

    def report(self) -> None:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SR_CLASS
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = SR_CLASS
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "SR"
        p = self.path(".dcm")
        p.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(p, enforce_file_format=True)


def build(root: Path, n_files: int) -> tuple[Builder, dict[str, int]]:
    b = Builder(root)
    n_junk, n_trunc, n_sr, n_j2k = n_files // 20, n_files // 100, max(2, n_files // 200), 20
    n_ct = n_files - n_junk - n_trunc - n_sr - n_j2k - 3
    sizes = [n_ct * 4 // 10, n_ct * 3 // 10, n_ct * 2 // 10]
    sizes.append(n_ct - sum(sizes))
    uids = [f"1.2.826.0.1.{k + 10}" for k in range(4)]
    for uid, n in zip(uids, sizes, strict=True):
        b.series(uid, n)
    b.series("1.2.826.0.1.99", n_j2k, JPEG2000Lossless)
    b.localizer(uids[0], True, 0.0)
    b.localizer(uids[0], True, 10.0)
    b.localizer("1.2.826.0.1.77", False, 5.0)
    for _ in range(n_junk):
        b.junk_text()
    for _ in range(n_trunc):
        b.truncated()
    for _ in range(n_sr):
        b.report()
    return b, {"junk_text": n_junk, "truncated": n_trunc, "non_image": n_sr}


def run(n_files: int) -> dict[str, Any]:
    real = dicom_decode.decoder_available
    dicom_decode.decoder_available = lambda uid: uid != JPEG2000Lossless and real(uid)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="livgui_bench_messy_") as tmp:
        t = time.perf_counter()
        builder, junk = build(Path(tmp), n_files)
        build_s = time.perf_counter() - t
        stamps: list[float] = []
        t = time.perf_counter()
        result = scan_dicom(tmp, progress=lambda f, m: stamps.append(time.perf_counter()))
        scan_s = time.perf_counter() - t
        gaps = np.diff([t, *stamps]) if stamps else np.array([scan_s])
        main = [s for s in result.series if not s.is_localizer]
        found = {s.series_uid: s.n_files for s in main}
        largest = max(main, key=lambda s: s.n_files)
        t = time.perf_counter()
        vol = read_dicom_series(largest)
        read_s = time.perf_counter() - t
    return {
        "benchmark": "messy_import (L8)",
        "files": builder.count,
        "build_s": round(build_s, 2),
        "scan_s": round(scan_s, 3),
        "files_per_s": round(builder.count / scan_s),
        "max_progress_gap_s": round(float(gaps.max()), 3),
        "series_found": found,
        "series_expected": builder.expected,
        "series_grouped_right": found == builder.expected,
        "localizers_flagged": sum(s.is_localizer for s in result.series),
        "localizers_expected": 2,  # two tagged ones share one group; the untagged one is its own
        "skipped": result.skip_counts(),
        "skipped_expected": {
            "not a DICOM file": junk["junk_text"],
            "not an image": junk["non_image"],
        },
        "unreadable": len(result.unreadable),
        "unreadable_expected": junk["truncated"],
        "undecodable": [f"{s.label}: {s.problems[-1]}" for s in result.undecodable],
        "largest_series_read_s": round(read_s, 3),
        "largest_series_shape": list(vol.shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="5000 files (default 500)")
    args = parser.parse_args()
    print(json.dumps(run(5000 if args.full else 500), indent=2))


if __name__ == "__main__":
    main()
