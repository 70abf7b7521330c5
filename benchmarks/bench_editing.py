"""Editing, undo history and autosave benchmarks (issue 5; RELIABILITY L2, L6). Prints JSON.

    python benchmarks/bench_editing.py            # smoke sizes
    python benchmarks/bench_editing.py --full     # L2 on 512x512x300 with 10,000 strokes

Sections: ``dab`` (compute cost of one brush dab on a 512x512 slice; the on-screen part is
measured with the GUI), ``l2`` (random strokes, undo-all/redo-all exact every 1,000,
history bytes vs budget, time per undo step), ``autosave`` (512x512x500 mask: caller-thread
cost per step and per autosave, worker checkpoint/snapshot time, caller dab latency while
the worker writes), ``l6`` (a child paints with autosave, killed at random, recovered).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livgui.core import Geometry
from livgui.core.editing import BrushOptions, History, PlanePoint, brush
from livgui.library.recovery import Journal, JournalOptions, find_recoverable, recover

SPACING = (1.0, 0.7, 0.7)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 4) if values else float("nan")


def random_stroke(
    rng: np.random.Generator, shape: tuple[int, int, int]
) -> tuple[list[PlanePoint], BrushOptions]:
    planes = ("axial", "coronal", "sagittal")
    plane = planes[int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
    n_ax = planes.index(plane)
    rows = shape[1] if plane == "axial" else shape[0]
    cols = shape[2] if plane != "sagittal" else shape[1]
    index = int(rng.integers(shape[n_ax]))
    row, col = rng.uniform(0, rows - 1), rng.uniform(0, cols - 1)
    pts = []
    for _ in range(int(rng.integers(3, 15))):
        row = float(np.clip(row + rng.normal(0, 3), 0, rows - 1))
        col = float(np.clip(col + rng.normal(0, 3), 0, cols - 1))
        pts.append(PlanePoint(plane, index, row, col))  # type: ignore[arg-type]
    opts = BrushOptions(
        size_mm=float(rng.choice([3.0, 6.0, 10.0, 20.0])),
        label=int(rng.integers(1, 3)),
        erase=bool(rng.random() < 0.3),
        sphere=bool(rng.random() < 0.1),
    )
    return pts, opts


def bench_dab(n: int = 2000) -> dict[str, object]:
    shape = (40, 512, 512)
    geom = Geometry.from_spacing(shape, SPACING)
    labels = np.zeros(shape, np.uint8)
    hu = np.random.default_rng(0).normal(60, 40, shape).astype(np.int16)
    rng = np.random.default_rng(1)
    out: dict[str, object] = {}
    for name, opts in {
        "disc_10mm": BrushOptions(10.0),
        "disc_30mm": BrushOptions(30.0),
        "hu_limited_10mm": BrushOptions(10.0, hu_range=(40.0, 200.0)),
        "sphere_10mm": BrushOptions(10.0, sphere=True),
    }.items():
        times = []
        for _ in range(n):
            at = PlanePoint("axial", 20, float(rng.uniform(0, 511)), float(rng.uniform(0, 511)))
            t0 = time.perf_counter()
            brush(labels, geom, at, opts, hu=hu)
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {"p50_ms": pct(times, 50), "p90_ms": pct(times, 90), "max_ms": pct(times, 100)}
    return out


def bench_l2(
    n_strokes: int, shape: tuple[int, int, int], budget_mb: int, check_every: int
) -> dict[str, object]:
    geom = Geometry.from_spacing(shape, SPACING)
    rng = np.random.default_rng(2)
    labels = np.zeros(shape, np.uint8)
    labels[shape[0] // 4 : 3 * shape[0] // 4, 100:400, 80:300] = 1
    ref = labels.copy()  # the state before the oldest kept step
    hist = History(labels, budget_bytes=budget_mb * 2**20)
    hist.subscribe(lambda kind, step: step.edit.apply(ref) if kind == "drop" else None)
    stroke_ms, undo_ms, redo_ms, checks, max_bytes = [], [], [], [], 0
    for i in range(1, n_strokes + 1):
        pts, opts = random_stroke(rng, shape)
        t0 = time.perf_counter()
        hist.begin_step("Brush")
        for p in pts:
            hist.add(brush(labels, geom, p, opts))
        hist.end_step()
        stroke_ms.append((time.perf_counter() - t0) * 1000)
        max_bytes = max(max_bytes, hist.nbytes)
        if i % check_every == 0 or i == n_strokes:
            end = labels.copy()
            n = hist.position
            while True:
                t0 = time.perf_counter()
                if hist.undo() is None:
                    break
                undo_ms.append((time.perf_counter() - t0) * 1000)
            start_ok = bool(np.array_equal(labels, ref))
            while True:
                t0 = time.perf_counter()
                if hist.redo() is None:
                    break
                redo_ms.append((time.perf_counter() - t0) * 1000)
            checks.append({"strokes": i, "steps": n, "undo_all_equals_start": start_ok,
                           "redo_all_equals_end": bool(np.array_equal(labels, end))})  # fmt: skip
    return {
        "shape": list(shape), "strokes": n_strokes, "budget_mb": budget_mb,
        "max_history_mb": round(max_bytes / 2**20, 2), "within_budget": max_bytes <= budget_mb * 2**20,
        "dropped_steps": hist.dropped, "checks": checks,
        "all_exact": all(c["undo_all_equals_start"] and c["redo_all_equals_end"] for c in checks),
        "stroke_ms": {"mean": round(float(np.mean(stroke_ms)), 3), "p90": pct(stroke_ms, 90)},
        "undo_step_ms": {"mean": round(float(np.mean(undo_ms)), 4), "p90": pct(undo_ms, 90), "max": pct(undo_ms, 100)},
        "redo_step_ms": {"mean": round(float(np.mean(redo_ms)), 4), "p90": pct(redo_ms, 90)},
    }  # fmt: skip


def bench_autosave(shape: tuple[int, int, int], n_steps: int) -> dict[str, object]:
    geom = Geometry.from_spacing(shape, SPACING)
    rng = np.random.default_rng(3)
    labels = np.zeros(shape, np.uint8)
    labels[100:400, 100:400, 80:300] = 1
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        hist = History(labels)
        journal = Journal(
            root, "bench", labels, options=JournalOptions(interval_s=3600, snapshot_every=4)
        )
        # steps are enqueued by hand below (not attach) to time the caller's share
        open_ms = (time.perf_counter() - t0) * 1000
        journal.flush()
        scratch = np.zeros((1, 512, 512), np.uint8)  # the caller keeps painting here
        enqueue_ms, ckpt_ms, stall_ms, dab_ms, idle_ms = [], [], [], [], []
        t_end = time.perf_counter() + 0.4  # baseline: the same dabs with an idle worker
        while time.perf_counter() < t_end:
            t1 = time.perf_counter()
            brush(scratch, geom, PlanePoint("axial", 0, 256.0, 256.0), BrushOptions(10.0))
            idle_ms.append((time.perf_counter() - t1) * 1000)
        for k in range(n_steps):
            pts, opts = random_stroke(rng, shape)
            hist.begin_step("Brush")
            for p in pts:
                hist.add(brush(labels, geom, p, opts))
            step = hist.end_step()
            if step is not None:  # caller-side cost of journalling one step: an enqueue
                t0 = time.perf_counter()
                journal.record(step.name, step.edit)
                enqueue_ms.append((time.perf_counter() - t0) * 1000)
            if k % 10 == 9:  # an autosave: the caller asks, the worker hashes/compresses/writes
                t0 = time.perf_counter()
                journal.checkpoint()
                stall_ms.append((time.perf_counter() - t0) * 1000)
                t_end = time.perf_counter() + 0.4  # the worker checkpoints meanwhile
                while time.perf_counter() < t_end:
                    t1 = time.perf_counter()
                    at = PlanePoint("axial", 0, 256.0, 256.0)
                    brush(scratch, geom, at, BrushOptions(10.0, erase=len(dab_ms) % 2 == 1))
                    dab_ms.append((time.perf_counter() - t1) * 1000)
                t0 = time.perf_counter()
                journal.flush()
                ckpt_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        journal.close()
        size = sum(p.stat().st_size for p in Path(root).rglob("*.lgj"))
        (info,) = find_recoverable(root)
        t0 = time.perf_counter()
        ok = bool(np.array_equal(recover(info), labels))
        recover_s = time.perf_counter() - t0
    return {
        "shape": list(shape), "steps": n_steps, "open_copy_ms": round(open_ms, 1),
        "caller_enqueue_ms": {"p90": pct(enqueue_ms, 90), "max": pct(enqueue_ms, 100)},
        "caller_autosave_request_ms": {"p90": pct(stall_ms, 90), "max": pct(stall_ms, 100)},
        "caller_dab_ms_while_worker_writes": {"p50": pct(dab_ms, 50), "p90": pct(dab_ms, 90), "max": pct(dab_ms, 100)},
        "caller_dab_ms_idle_worker": {"p50": pct(idle_ms, 50), "p90": pct(idle_ms, 90), "max": pct(idle_ms, 100)},
        "worker_checkpoint_wait_ms": {"p50": pct(ckpt_ms, 50), "max": pct(ckpt_ms, 100)},
        "journal_bytes": size, "recover_s": round(recover_s, 2), "recovered_exact": ok,
    }  # fmt: skip


def l6_child(root: str, shape: tuple[int, int, int], interval: float, progress: str) -> None:
    geom = Geometry.from_spacing(shape, SPACING)
    labels = np.zeros(shape, np.uint8)
    hist = History(labels)
    log = open(progress, "a")

    def ack(n: int, sha: str) -> None:
        log.write(f"CKPT {n} {sha}\n")
        log.flush()

    journal = Journal(
        root, "l6", labels, options=JournalOptions(interval_s=interval), on_checkpoint=ack
    )
    journal.attach(hist)
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    while True:
        pts, opts = random_stroke(rng, shape)
        hist.begin_step("Brush")
        for p in pts:
            hist.add(brush(labels, geom, p, opts))
        hist.end_step()
        time.sleep(0.005)


def bench_l6(shape: tuple[int, int, int], interval: float, kills: int) -> dict[str, object]:
    results, rnd = [], random.Random(5)
    for k in range(kills):
        with tempfile.TemporaryDirectory() as root:
            progress = Path(root) / "progress.txt"
            child = subprocess.Popen([sys.executable, __file__, "--l6-child", root, str(interval), str(progress),
                                      *map(str, shape)])  # fmt: skip
            while not (progress.exists() and "CKPT" in progress.read_text()):
                time.sleep(0.05)
            time.sleep(rnd.uniform(interval, 4 * interval))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            acked = [int(x.split()[1]) for x in progress.read_text().splitlines()]
            infos = find_recoverable(root, include_empty=True)
            try:
                labels = recover(infos[0])
                ok = infos[0].checkpoint_steps >= acked[-1] and labels.shape == shape
            except Exception as exc:
                ok = False
                print(f"recovery {k} failed: {exc}", file=sys.stderr)
            results.append({"kill": k, "acked_steps": acked[-1], "recovered_steps": infos[0].steps,
                            "loadable_and_not_older": ok})  # fmt: skip
    return {"shape": list(shape), "interval_s": interval, "kills": results,
            "always_loadable": all(r["loadable_and_not_older"] for r in results)}  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--l6-child":
        a = sys.argv[2:]
        l6_child(a[0], (int(a[3]), int(a[4]), int(a[5])), float(a[1]), a[2])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--full", action="store_true", help="L2: 10,000 strokes on 512x512x300")
    ap.add_argument("--only", nargs="*", default=["dab", "l2", "autosave", "l6"])
    ap.add_argument("--budget-mb", type=int, default=512)
    args = ap.parse_args()
    out: dict[str, object] = {"full": args.full}
    if "dab" in args.only:
        out["dab"] = bench_dab()
    if "l2" in args.only:
        n, shape = (10000, (300, 512, 512)) if args.full else (1000, (60, 512, 512))
        out["l2"] = bench_l2(n, shape, args.budget_mb, check_every=1000 if args.full else 500)
    if "autosave" in args.only:
        out["autosave"] = bench_autosave((500, 512, 512), 100 if args.full else 40)
    if "l6" in args.only:
        out["l6"] = bench_l6((1000, 512, 512) if args.full else (60, 512, 512), 5.0 if args.full else 0.2,
                             5 if args.full else 3)  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
