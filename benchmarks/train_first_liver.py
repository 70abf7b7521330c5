"""A first real liver model: a small U-Net fitted briefly on the CPU, checked on ircadb-17.

Trains ``unet2d`` (base 16, depth 4, bilinear) on ``../shared/data/msd-liver-2d`` (HU
clipped to [0, 255], about 1.5 mm pixels, split by patient id VOLID, 80/20), at 128 x 128
(about 3 mm pixels, which is also what ircadb-17's 512 x 0.74 mm slices become), saves it
as a bundle (stage ``liver``) and runs the cascade (liver stage only, largest component)
on ircadb-17, printing JSON with the validation slice Dice and the 3D liver Dice.

Everything is seeded; ``--max-minutes`` only guards the time on a loaded machine (the
JSON says when it stopped early).  Never downloads anything.  Research use only.

    python benchmarks/train_first_liver.py [--steps 300] [--out out/first-liver-unet16]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livgui.core.volume import RESEARCH_NOTICE  # noqa: E402
from livgui.inference.cascade import CascadeOptions, Segmenter  # noqa: E402
from livgui.models.bundle import Bundle, save_bundle  # noqa: E402
from livgui.models.preprocess import Preprocessing, resize_planes  # noqa: E402
from livgui.models.registry import build  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PREP = Preprocessing(hu_window=(0.0, 255.0), normalisation="minmax", target_size=(128, 128))
HPARAMS = {"in_channels": 1, "num_classes": 2, "base_c": 16, "depth": 4, "bilinear": True}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_msd(root: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images ``[n, 1, 128, 128]`` (normalised), liver masks ``[n, 128, 128]``, patient ids."""
    from livgui.imageio.slices2d import list_slice_refs, load_slice_cases

    cases = load_slice_cases(list_slice_refs(root))
    hu = np.stack([c.volume.data[0] for c in cases])
    masks = np.stack([c.reference.data[0] > 0 for c in cases]).astype(np.float32)
    x = resize_planes(torch.from_numpy(PREP.normalise(hu))[:, None], PREP.target_size)
    y = resize_planes(torch.from_numpy(masks)[:, None], PREP.target_size)[:, 0] > 0.5
    return x, y.long(), [str(c.patient_id) for c in cases]


def split_by_patient(pids: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    unique = sorted(set(pids))
    rng = np.random.default_rng(seed)
    val_ids = set(rng.permutation(unique)[: max(1, len(unique) // 5)].tolist())
    is_val = np.array([p in val_ids for p in pids])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def soft_dice_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(logits, 1)[:, 1]
    t = y.float()
    inter = (p * t).sum()
    return 1 - (2 * inter + 1) / (p.sum() + t.sum() + 1)


def augment(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random shifts (up to 12 px) and intensity jitter; no flips (laterality is a cue)."""
    dy, dx = (int(v) for v in torch.randint(-12, 13, (2,), generator=gen))
    x = torch.roll(x, (dy, dx), dims=(2, 3))
    y = torch.roll(y, (dy, dx), dims=(1, 2))
    scale = 1 + 0.1 * (torch.rand(x.shape[0], 1, 1, 1, generator=gen) - 0.5)
    return (x * scale).clamp(0, 1), y


def train(x, y, idx, steps, batch, lr, seed, max_s):
    model = build("unet2d", **HPARAMS)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    start, done, losses = time.perf_counter(), 0, []
    model.train()
    for step in range(steps):
        pick = torch.from_numpy(idx)[torch.randint(0, len(idx), (batch,), generator=gen)]
        xb, yb = augment(x[pick], y[pick], gen)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb) + soft_dice_loss(logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if step % 25 == 0:
            print(f"step {step} loss {np.mean(losses[-25:]):.4f}", file=sys.stderr, flush=True)
        if time.perf_counter() - start > max_s:
            break
    model.eval()
    return model, done, time.perf_counter() - start, float(np.mean(losses[-25:]))


def val_dice(model, x, y, idx) -> float:
    inter = total = 0.0
    with torch.inference_mode():
        for i in range(0, len(idx), 16):
            sel = torch.from_numpy(idx[i : i + 16])
            pred = model(x[sel]).argmax(1) == 1
            ref = y[sel] == 1
            inter += float((pred & ref).sum())
            total += float(pred.sum() + ref.sum())
    return 2 * inter / max(total, 1.0)


def ircadb_dice(bundle: Bundle) -> dict[str, float]:
    from livgui.imageio.datasets import load_case

    case = load_case(DATA / "ircadb-17")
    seg = Segmenter(liver=bundle, options=CascadeOptions(device="cpu"))
    result = seg.run(case.volume)
    pred, ref = result.labels.data > 0, case.reference.data > 0
    dice = 2 * np.count_nonzero(pred & ref) / (pred.sum() + ref.sum())
    chance = 2 * ref.mean() * ref.sum() / (ref.mean() * pred.size + ref.sum())
    return {
        "ircadb17_liver_dice": round(float(dice), 4),
        "ircadb17_chance_dice_same_volume_random": round(float(chance), 4),
        "ircadb17_cascade_s": round(result.timings_s["total"], 2),
        "ircadb17_pred_ml": round(float(pred.sum() * case.volume.geometry.voxel_volume_ml), 1),
        "ircadb17_ref_ml": round(float(ref.sum() * case.volume.geometry.voxel_volume_ml), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "first-liver-unet16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    x, y, pids = load_msd(DATA / "msd-liver-2d")
    tr, va = split_by_patient(pids, args.seed)
    model, steps, secs, loss = train(
        x, y, tr, args.steps, args.batch, args.lr, args.seed, 60 * args.max_minutes
    )
    vd = val_dice(model, x, y, va)
    bundle = Bundle(
        name=args.out.name,
        architecture="unet2d",
        hyperparameters=HPARAMS,
        stage="liver",
        labels={0: "background", 1: "liver"},
        preprocessing=PREP,
        provenance={
            "training_data": ["msd-liver-2d (MSD Task03 / LiTS slices), research/non-commercial"],
            "split": f"by patient id (VOLID), 80/20, seed {args.seed}",
            "script": "benchmarks/train_first_liver.py",
            "steps": steps,
            "seed": args.seed,
        },
        metrics={"val_slice_dice_liver": round(vd, 4)},
    )
    saved = save_bundle(bundle, model, args.out)
    report = {
        "notice": RESEARCH_NOTICE,
        "bundle": str(saved.path),
        "model_id": saved.model_id,
        "train_slices": len(tr),
        "val_slices": len(va),
        "patients": len(set(pids)),
        "steps": steps,
        "stopped_early": steps < args.steps,
        "train_s": round(secs, 1),
        "final_loss": round(loss, 4),
        "val_slice_dice_liver": round(vd, 4),
        **ircadb_dice(saved),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
