"""One prepared GPU benchmark for a lent device (torch + numpy + safetensors only).

Synthetic volumes only; nothing is downloaded.  Prints JSON (and writes it to
``$OUT/gpu_all.json`` when ``$OUT`` is set):

* per 2D backbone (the study's widths) slices/s at 512 x 512, fp32 / bf16 / fp16
  autocast, channels-last, batch 16; the 3D U-Net in patches/s;
* cascade latency on a 512 x 512 x 500 volume: the CPU-sized cascade (U-Net base 16 at
  256 x 256, same on the crop) and a study-sized one (U-Net base 64 at 256 for the liver,
  base 64 at 512 on the crop); stage-1 bias raised so the crop is the worst case;
* the out-of-memory path is not provoked (we never fill a shared card on purpose).

``--tiny`` runs everything at toy sizes (CPU check).  Research use only.

    python benchmarks/gpu_all.py [--tiny] [--device cuda]
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
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livgui.core import Geometry, Volume
from livgui.core.volume import RESEARCH_NOTICE
from livgui.inference.cascade import CascadeOptions, Segmenter
from livgui.inference.components import have_scipy
from livgui.inference.device import choose_device
from livgui.models import registry
from livgui.models.bundle import Bundle, save_bundle
from livgui.models.preprocess import Preprocessing

STUDY = {
    "unet2d": {"base_c": 64},
    "attention_unet2d": {"base_c": 64},
    "unet3plus2d": {"base_c": 64},
    "resunetpp2d": {},
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_model(model, x, device, dtype, reps: int) -> float:
    """Seconds per forward pass (after two warm-ups)."""
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
    ):
        for _ in range(2):
            model(x)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        sync(device)
    return (time.perf_counter() - t0) / reps


def backbones(device: torch.device, tiny: bool) -> dict:
    size, batch, reps = (64, 2, 1) if tiny else (512, 16, 5)
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if device.type == "cpu":
        dtypes.pop("fp16")
    out: dict = {"size": size, "batch": batch}
    for name, study_hp in STUDY.items():
        if name not in registry.available():
            continue
        hp = {"base_c": 8} if tiny and "base_c" in study_hp else study_hp
        model = registry.build(name, in_channels=1, num_classes=2, **hp).eval().to(device)
        model = model.to(memory_format=torch.channels_last)
        x = torch.randn(batch, 1, size, size, device=device).contiguous(
            memory_format=torch.channels_last
        )
        res = {"hparams": hp}
        for label, dt in dtypes.items():
            res[f"{label}_slices_per_s"] = round(batch / time_model(model, x, device, dt, reps), 1)
        out[name] = res
        del model, x
    hp3 = {"base_c": 4} if tiny else {}
    patch = (16, 32, 32) if tiny else (64, 128, 128)
    m3 = registry.build("unet3d", in_channels=1, num_classes=3, **hp3).eval().to(device)
    x3 = torch.randn(2, 1, *patch, device=device)
    out["unet3d"] = {"hparams": hp3, "patch": list(patch)}
    for label, dt in dtypes.items():
        out["unet3d"][f"{label}_patches_per_s"] = round(2 / time_model(m3, x3, device, dt, reps), 2)
    return out


def phantom(shape: tuple[int, int, int]) -> Volume:
    _, ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = ((yy - ny / 2) / (ny * 0.4)) ** 2 + ((xx - nx / 2) / (nx * 0.45)) ** 2 < 1
    data = np.full(shape, -1000, np.int16)
    data[:, body] = 60
    return Volume(data, Geometry.from_spacing(shape, (1.0, 0.75, 0.75)), name="gpu-bench")


def unet_bundle(
    tmp: Path, name: str, stage: str, base_c: int, size: int | None, bias: float
) -> Bundle:
    torch.manual_seed(0)
    hp = {"in_channels": 1, "num_classes": 2, "base_c": base_c, "depth": 4, "bilinear": True}
    model = registry.build("unet2d", **hp)
    if bias:
        last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.bias[1] += bias
    prep = Preprocessing(
        hu_window=(-200.0, 250.0), target_size=None if size is None else (size, size)
    )
    bundle = Bundle(name, "unet2d", hp, stage, {0: "background", 1: stage}, prep)
    return save_bundle(bundle, model, tmp / name)


def cascades(device_req: str, tiny: bool, tmp: Path) -> dict:
    shape = (12, 64, 64) if tiny else (500, 512, 512)
    vol = phantom(shape)
    configs = {
        "cpu_sized": (16, 256, 16, 256),
        "study_sized": (64, 256, 64, None),
    }
    out: dict = {"volume": list(shape)}
    for label, sizes in configs.items():
        c1, s1, c2, s2 = (4, 32, 4, None) if tiny else sizes
        liver = unet_bundle(tmp, f"{label}-liver", "liver", c1, s1, bias=50.0)
        lesion = unet_bundle(tmp, f"{label}-lesion", "lesion", c2, s2, bias=0.0)
        seg = Segmenter(liver=liver, lesion=lesion, options=CascadeOptions(device=device_req))
        seg.run(phantom((4, *shape[1:])))  # warm-up (kernels, cuDNN autotune)
        stamps: list[float] = []

        def tick(fraction: float, message: str, stamps: list[float] = stamps) -> None:
            stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        result = seg.run(vol, progress=tick)
        total = time.perf_counter() - t0
        out[label] = {
            "liver": f"unet2d base {c1} @ {s1}",
            "lesion": f"unet2d base {c2} @ {s2 or 'native'} on the crop",
            "total_s": round(total, 3),
            "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
            "device": result.device,
            "notices": result.notices,
            "progress_gap_max_s": round(float(np.diff([t0, *stamps]).max()), 3),
            "liver_fraction": round(float((result.labels.data > 0).mean()), 3),
        }
        seg.close()
        print(json.dumps({label: out[label]}), file=sys.stderr, flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="GPU benchmark (JSON)")
    ap.add_argument("--tiny", action="store_true", help="toy sizes (CPU check)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", default="backbones,cascade")
    args = ap.parse_args()
    choice = choose_device(args.device)
    torch.backends.cudnn.benchmark = True
    report: dict = {
        "notice": RESEARCH_NOTICE,
        "device": choice.description,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "scipy_available": have_scipy(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if "backbones" in args.only:
            report["backbones"] = backbones(choice.device, args.tiny)
            print(json.dumps({"backbones": report["backbones"]}), file=sys.stderr, flush=True)
        if "cascade" in args.only:
            report["cascade"] = cascades(args.device, args.tiny, Path(tmp))
    text = json.dumps(report, indent=2)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_all.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
