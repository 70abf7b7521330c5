"""Inference benchmarks on the CPU; prints JSON.  Research use only, not for diagnosis.

* ``backbones``: slices/s per registered 2D network (smoke: CPU-sized widths at 256 x 256;
  ``--full``: the study's widths at 512 x 512), fp32 and bf16 (CPU autocast); the 3D U-Net
  in patches/s.
* ``cascade``: the CPU-sized cascade (U-Net base 16 at 256 x 256 for the liver, the same on
  the liver crop for lesions) on a 512 x 512 x 120 volume (target <= 60 s on 2 cores).
  Random weights; stage 1's output bias is raised so the liver covers the body: the crop
  is the worst case (every body slice goes through stage 2).
* ``l4``: RELIABILITY L4: cascade with a tiny network on 512 x 512 x 200 (``--full``:
  1000): longest gap between progress reports, cancel latency, and the memory this
  section adds at its peak (sampled), over the volume size.  That a cancelled
  run leaves the user's layers untouched is tested in tests/ui/test_segment_panel.py.
* ``l7``: RELIABILITY L7: 200 (``--full``: 2000) open / infer / close cycles: RSS and open
  file descriptors must not grow.

    python benchmarks/bench_inference.py [--full] [--only backbones,cascade,l4,l7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livgui.core import Cancelled, CancelToken, Geometry, Volume
from livgui.core.volume import RESEARCH_NOTICE
from livgui.inference.cascade import CascadeOptions, Segmenter
from livgui.models import registry
from livgui.models.bundle import Bundle, save_bundle
from livgui.models.preprocess import Preprocessing

SMALL = {"base_c": 16}
STUDY = {
    "unet2d": {"base_c": 64},
    "attention_unet2d": {"base_c": 64},
    "unet3plus2d": {"base_c": 64},
}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def bench_backbone(name: str, hp: dict, size: int, batch: int, reps: int) -> dict:
    model = registry.build(name, in_channels=1, num_classes=2, **hp).eval()
    x = torch.randn(batch, 1, size, size)
    out: dict = {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3)}
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            model(x)  # warm-up
            t0 = time.perf_counter()
            for _ in range(reps):
                model(x)
            dt = time.perf_counter() - t0
        out[f"{label}_slices_per_s"] = round(batch * reps / dt, 3)
    return out


def backbones(full: bool) -> dict:
    size, batch, reps = (512, 2, 2) if full else (256, 2, 2)
    res: dict = {"size": size, "batch": batch}
    for name in sorted(registry.available()):
        if name in ("oracle_threshold", "unet3d"):
            continue
        hp = STUDY.get(name, {}) if full else SMALL
        res[name] = {"hparams": hp, **bench_backbone(name, hp, size, batch, reps)}
    hp3 = {} if full else {"base_c": 8}
    m3 = registry.build("unet3d", in_channels=1, num_classes=3, **hp3).eval()
    patch = (1, 1, 64, 128, 128) if full else (1, 1, 32, 64, 64)
    with torch.inference_mode():
        m3(torch.randn(patch))
        t0 = time.perf_counter()
        m3(torch.randn(patch))
        res["unet3d"] = {
            "hparams": hp3,
            "patch": list(patch[2:]),
            "fp32_patches_per_s": round(1 / (time.perf_counter() - t0), 3),
        }
    return res


def phantom(shape: tuple[int, int, int], spacing=(2.0, 0.75, 0.75)) -> Volume:
    """Body ellipse with a liver-like blob, built slice by slice to keep memory low."""
    nz, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = ((yy - ny / 2) / (ny * 0.4)) ** 2 + ((xx - nx / 2) / (nx * 0.45)) ** 2 < 1
    liver = ((yy - ny * 0.45) / (ny * 0.2)) ** 2 + ((xx - nx * 0.33) / (nx * 0.18)) ** 2 < 1
    data = np.full(shape, -1000, np.int16)
    for z in range(nz):
        data[z][body] = 40
        data[z][liver] = 100
    return Volume(data, Geometry.from_spacing(shape, spacing), name="bench")


def _unet_bundle(
    tmp: Path, name: str, stage: str, hp: dict, size: int, bias: float = 0.0
) -> Bundle:
    torch.manual_seed(0)
    model = registry.build("unet2d", in_channels=1, num_classes=2, **hp)
    if bias:
        last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias[1] += bias
    prep = Preprocessing(hu_window=(-200.0, 250.0), target_size=(size, size))
    labels = {0: "background", 1: stage}
    b = Bundle(name, "unet2d", {"in_channels": 1, "num_classes": 2, **hp}, stage, labels, prep)
    return save_bundle(b, model, tmp / name)


def cascade(full: bool, tmp: Path) -> dict:
    hp = {"base_c": 16, "depth": 4, "bilinear": True}
    liver = _unet_bundle(tmp, "cpu-liver", "liver", hp, 256, bias=50.0)
    lesion = _unet_bundle(tmp, "cpu-lesion", "lesion", hp, 256)
    vol = phantom((120, 512, 512))
    seg = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu"))
    t0 = time.perf_counter()
    result = seg.run(vol)
    total = time.perf_counter() - t0
    crop = float((result.labels.data > 0).mean())
    return {
        "volume": list(vol.shape),
        "models": "unet2d base 16 @256 (liver) + unet2d base 16 @256 on the crop (lesion)",
        "total_s": round(total, 2),
        "target_s": 60,
        "timings_s": {k: round(v, 2) for k, v in result.timings_s.items()},
        "liver_fraction_of_volume": round(crop, 3),
        "threads": torch.get_num_threads(),
    }


def l4(full: bool, tmp: Path) -> dict:
    depth = 1000 if full else 200
    hp = {"base_c": 4, "depth": 2, "bilinear": True}
    liver = _unet_bundle(tmp, "tiny-liver", "liver", hp, 128, bias=50.0)
    lesion = _unet_bundle(tmp, "tiny-lesion", "lesion", hp, 128)
    vol = phantom((depth, 512, 512))
    base_rss = rss_mb()
    seg = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device="cpu"))
    stamps: list[float] = []
    peak = [base_rss]
    running = threading.Event()
    running.set()

    def sample() -> None:  # this section's own peak (ru_maxrss is the whole process's)
        while running.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    seg.run(vol, progress=lambda f, m: stamps.append(time.perf_counter()))
    total = time.perf_counter() - t0
    running.clear()
    sampler.join()
    gaps = np.diff([t0, *stamps, time.perf_counter()])
    token = CancelToken()
    cancelled_at: list[float] = []

    def cancel_now() -> None:
        cancelled_at.append(time.perf_counter())
        token.cancel()

    timer = threading.Timer(total / 2, cancel_now)
    timer.start()
    try:
        seg.run(vol, cancel=token)
        latency = None
    except Cancelled:
        latency = time.perf_counter() - cancelled_at[0]
    return {
        "volume": list(vol.shape),
        "volume_mb": round(vol.nbytes / 2**20, 1),
        "total_s": round(total, 2),
        "progress_reports": len(stamps),
        "progress_gap_max_s": round(float(gaps.max()), 3),
        "progress_gap_target_s": 1.0,
        "cancel_latency_s": None if latency is None else round(latency, 3),
        "cancel_target_s": 2.0,
        "rss_before_mb": round(base_rss, 1),
        "peak_extra_rss_mb": round(peak[0] - base_rss, 1),
        "peak_extra_rss_over_volume": round((peak[0] - base_rss) / (vol.nbytes / 2**20), 2),
    }


def l7(full: bool, tmp: Path) -> dict:
    cycles = 2000 if full else 200
    hp = {"base_c": 4, "depth": 2, "bilinear": True}
    liver = _unet_bundle(tmp, "l7-liver", "liver", hp, 64, bias=50.0)
    lesion = _unet_bundle(tmp, "l7-lesion", "lesion", hp, 64)
    from livgui.models.bundle import load_bundle

    vol = phantom((8, 96, 96))
    samples = []
    for i in range(cycles):
        seg = Segmenter(
            liver=load_bundle(liver.path),
            lesion=load_bundle(lesion.path),
            options=CascadeOptions(device="cpu"),
        )
        seg.run(vol)
        seg.close()
        del seg
        if i in (cycles // 10, cycles - 1):
            gc.collect()
            samples.append((rss_mb(), open_fds()))
    (rss_a, fd_a), (rss_b, fd_b) = samples
    return {
        "cycles": cycles,
        "rss_mb_at_10pct": round(rss_a, 1),
        "rss_mb_at_end": round(rss_b, 1),
        "rss_growth_mb": round(rss_b - rss_a, 1),
        "open_fds_at_10pct": fd_a,
        "open_fds_at_end": fd_b,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="inference benchmarks (JSON)")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--only", default="backbones,cascade,l4,l7")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict = {
        "notice": RESEARCH_NOTICE,
        "device": "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    out["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.only.split(","):
            t0 = time.perf_counter()
            out[part] = {
                "backbones": lambda: backbones(args.full),
                "cascade": lambda: cascade(args.full, Path(tmp)),
                "l4": lambda: l4(args.full, Path(tmp)),
                "l7": lambda: l7(args.full, Path(tmp)),
            }[part]()
            out[part]["bench_s"] = round(time.perf_counter() - t0, 1)
            print(json.dumps({part: out[part]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
