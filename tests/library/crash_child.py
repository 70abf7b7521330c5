"""Child process for the crash tests: edits + autosave journal, or atomic saves, until killed.

Usage (from the repository root)::

    python -m tests.library.crash_child edit ROOT CASE SEED PROGRESS
    python -m tests.library.crash_child recover ROOT CASE SEED PROGRESS SESSION
    python -m tests.library.crash_child save-before|save-after|save-loop TARGET PROGRESS

It appends one line per event to the PROGRESS file (``CKPT steps sha`` after each durable
checkpoint, ``RECOVERED steps sha``, ``BEFORE-RENAME`` ...) and runs until SIGKILLed.
The edit stream is deterministic in SEED so the test can recompute the expected masks.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from livgui.core import Geometry
from livgui.core.atomicio import atomic_write_bytes
from livgui.core.editing import BrushOptions, History, PlanePoint, brush, mask_sha256
from livgui.library.recovery import Journal, JournalOptions, find_recoverable, recover

SHAPE = (8, 64, 64)
GEOM = Geometry.from_spacing(SHAPE, (2.5, 0.8, 0.8))
OPTIONS = JournalOptions(interval_s=0.05, snapshot_every=4)
Op = tuple[str, list[PlanePoint], BrushOptions | None]


def initial_labels(seed: int) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:6, 10 + seed % 5 : 40, 12:44] = 1
    return labels


def edit_stream(seed: int) -> Iterator[Op]:
    """Random drags with some undos and redos, the same for the same seed."""
    rng = np.random.default_rng(seed)
    planes = ("axial", "coronal", "sagittal")
    while True:
        r = rng.random()
        if r < 0.15:
            yield ("undo", [], None)
            continue
        if r < 0.22:
            yield ("redo", [], None)
            continue
        plane = planes[int(rng.integers(3))]
        n_axis = planes.index(plane)
        index = int(rng.integers(SHAPE[n_axis]))
        rows = SHAPE[1] if plane == "axial" else SHAPE[0]
        row, col = float(rng.uniform(0, rows - 1)), float(rng.uniform(0, 63))
        pts = []
        for _ in range(int(rng.integers(1, 6))):
            row = float(np.clip(row + rng.normal(0, 2), 0, rows - 1))
            col = float(np.clip(col + rng.normal(0, 3), 0, 63))
            pts.append(PlanePoint(plane, index, row, col))  # type: ignore[arg-type]
        opts = BrushOptions(
            size_mm=float(rng.choice([2.0, 5.0, 9.0])),
            label=int(rng.integers(1, 3)),
            erase=bool(rng.random() < 0.3),
            sphere=bool(rng.random() < 0.2),
        )
        yield ("drag", pts, opts)


def apply_op(hist: History, op: Op) -> None:
    kind, pts, opts = op
    if kind == "undo":
        hist.undo()
    elif kind == "redo":
        hist.redo()
    else:
        assert opts is not None
        hist.begin_step("Brush")
        for p in pts:
            hist.add(brush(hist.labels, GEOM, p, opts))
        hist.end_step()


def expected_hashes(labels: np.ndarray, seed: int, n_steps: int) -> list[str]:
    """SHA-256 of the mask after 0, 1, ... n_steps journalled steps (commit/undo/redo)."""
    labels = labels.copy()
    hist = History(labels)
    out = [mask_sha256(labels)]
    hist.subscribe(lambda kind, step: out.append(mask_sha256(labels)) if kind != "drop" else None)
    stream = edit_stream(seed)
    while len(out) <= n_steps:
        apply_op(hist, next(stream))
    return out


def _log(progress: Path, line: str) -> None:
    with open(progress, "a") as fh:
        fh.write(line + "\n")
        fh.flush()


def run_edits(root: str, case: str, labels: np.ndarray, seed: int, progress: Path) -> None:
    hist = History(labels)
    journal = Journal(
        root,
        case,
        labels,
        options=OPTIONS,
        on_checkpoint=lambda n, sha: _log(progress, f"CKPT {n} {sha}"),
    )
    journal.attach(hist)
    _log(progress, f"JOURNAL {journal.session}")
    for op in edit_stream(seed):
        apply_op(hist, op)
        time.sleep(0.002)


def run_recover(root: str, case: str, seed: int, progress: Path, session: str) -> None:
    (info,) = [i for i in find_recoverable(root) if i.case_id == case and i.session == session]
    labels = recover(info)
    _log(progress, f"RECOVERED {info.steps} {mask_sha256(labels)}")
    run_edits(root, case, labels, seed + 1000, progress)


def run_save(mode: str, target: Path, progress: Path) -> None:
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if mode == "save-before":
            _log(progress, "BEFORE-RENAME")
            time.sleep(60)
        real_replace(src, dst)
        if mode == "save-after":
            _log(progress, "AFTER-RENAME")
            time.sleep(60)

    os.replace = replace  # type: ignore[assignment]
    contents = [bytes([k]) * (1 << 20) for k in (1, 2)]
    k = 0
    _log(progress, "SAVING")
    while True:
        atomic_write_bytes(target, contents[k % 2])
        k += 1


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "edit":
        root, case, seed, progress = argv[1], argv[2], int(argv[3]), Path(argv[4])
        run_edits(root, case, initial_labels(seed), seed, progress)
    elif mode == "recover":
        run_recover(argv[1], argv[2], int(argv[3]), Path(argv[4]), argv[5])
    else:
        run_save(mode, Path(argv[1]), Path(argv[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
