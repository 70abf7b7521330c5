"""``livgui segment INPUT... --out DIR``: segment cases, write masks and JSON reports.

Every INPUT may be an image file, a DICOM folder, one case or a whole dataset folder (all
its cases are segmented).  For each case the mask is written in the image's geometry
(``<case>_pred.nii.gz``) with a JSON report (``<case>.json``: models, device, timings,
notices, volumes and, when a reference exists or ``--reference`` is given, metrics).
Progress goes to stderr; a summary JSON to stdout.  Research use only, not for diagnosis.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livgui import imageio  # looked up at call time (the facade may be patched in tests)
from livgui.cli.main import emit_json
from livgui.core.atomicio import atomic_write_bytes
from livgui.core.metrics import case_metrics, json_safe
from livgui.core.volume import RESEARCH_NOTICE

if TYPE_CHECKING:  # torch is imported only when the command runs, never for --help
    from livgui.inference.cascade import Segmenter

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "segment",
        help="segment liver and lesions; write masks and JSON reports",
        description="Run the liver -> lesion cascade (--liver-model [--lesion-model]) or a "
        "one-stage model (--model) on every case of the inputs.  Research use only.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--model", help="one-stage bundle predicting 0/1/2")
    p.add_argument("--liver-model", help="stage-1 (liver) bundle of the cascade")
    p.add_argument("--lesion-model", help="stage-2 (lesion) bundle of the cascade")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--reference", type=Path, help="reference mask (one INPUT only)")
    p.add_argument("--margin-mm", type=float, default=10.0, help="liver crop margin (mm)")
    p.add_argument(
        "--replace-non-finite",
        action="store_true",
        help="replace NaN/Inf voxels (logged) instead of refusing the case",
    )
    p.set_defaults(func=run)


def _segmenter(args: argparse.Namespace) -> Segmenter:
    from livgui.inference.cascade import CascadeOptions, Segmenter
    from livgui.models.store import ModelStore

    if args.model and (args.liver_model or args.lesion_model):
        raise ValueError("give either --model or --liver-model/--lesion-model, not both")
    if not (args.model or args.liver_model):
        raise ValueError("choose a model: --model NAME or --liver-model NAME [--lesion-model NAME]")
    store = ModelStore()
    options = CascadeOptions(
        margin_mm=args.margin_mm,
        device=args.device,
        non_finite="replace" if args.replace_non_finite else "refuse",
    )
    if args.model:
        return Segmenter(onestage=store.find(args.model), options=options)
    lesion = store.find(args.lesion_model) if args.lesion_model else None
    return Segmenter(liver=store.find(args.liver_model), lesion=lesion, options=options)


def _case_refs(args: argparse.Namespace) -> list[Any]:
    if args.reference is not None:
        if len(args.inputs) != 1:
            raise ValueError("--reference needs exactly one INPUT")
        return [imageio.pair_case(args.inputs[0], args.reference)]
    refs: list[Any] = []
    for path in args.inputs:
        found = _expand(path, 0)
        if not found:
            raise ValueError(f"{path}: no image or case found")
        refs.extend(found)
    return refs


def _expand(path: Path, depth: int) -> list[Any]:
    """Cases of a dataset/case/image path; a plain folder of images gives one per file."""
    found: list[Any] = list(imageio.list_cases(path))
    if found or not path.is_dir() or depth >= 3:
        return found
    for child in sorted(path.iterdir()):
        if not child.name.startswith("."):
            found.extend(_expand(child, depth + 1))
    return found


class _Bar:
    """Terminal progress on stderr, at most ~5 updates a second."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 5.0) and fraction < 1.0:
            return
        self.last = now
        filled = int(30 * fraction)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {100 * fraction:3.0f}% {message}"
        )
        sys.stderr.write(("\r" + line[:120].ljust(120)) if self.tty else line + "\n")
        if fraction >= 1.0 and self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _output_names(refs: list[Any]) -> list[str]:
    """Readable, file-safe output names, unique over every input: two inputs holding a
    case of the same id (``dsA/liver_0``, ``dsB/liver_0``) never overwrite each other."""
    readable = [re.sub(r"[^A-Za-z0-9_.-]+", "_", r.case_id).strip("._") or "case" for r in refs]
    counts = {n: readable.count(n) for n in readable}
    return [
        n if counts[n] == 1 else f"{n}_{hashlib.sha256(str(r.image_path).encode()).hexdigest()[:8]}"
        for n, r in zip(readable, refs, strict=True)
    ]


def _one_case(ref: Any, name: str, segmenter: Segmenter, out: Path, label: str) -> dict[str, Any]:
    case = imageio.load_case(ref)
    result = segmenter.run(case.volume, progress=_Bar(label))
    mask_path = out / f"{name}_pred.nii.gz"
    digest = imageio.save_mask(result.labels, mask_path, like=case.volume)
    report: dict[str, Any] = {
        "notice": RESEARCH_NOTICE,
        "case_id": ref.case_id,
        "input": str(ref.image_path),
        "mask": str(mask_path),
        "mask_sha256": digest,
        **{k: v for k, v in result.to_json().items() if k != "notice"},
        "read_warnings": list(case.warnings),
    }
    if case.reference is not None:
        report["reference"] = str(ref.reference_path)
        report["metrics"] = case_metrics(case.reference, result.labels).to_json()
    text = json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(out / f"{name}.json", text.encode("utf-8"))
    return {"case_id": ref.case_id, "mask": str(mask_path), "report": str(out / f"{name}.json")}


def run(args: argparse.Namespace) -> int:
    refs = _case_refs(args)
    segmenter = _segmenter(args)
    args.out.mkdir(parents=True, exist_ok=True)
    done: list[dict[str, Any]] = []
    failed = 0
    names = _output_names(refs)
    for i, (ref, name) in enumerate(zip(refs, names, strict=True), 1):
        try:
            label = f"[{i}/{len(refs)}] {ref.case_id}"
            done.append(_one_case(ref, name, segmenter, args.out, label))
        except Exception as exc:  # one bad case never stops the batch
            failed += 1
            log.debug("case failed", exc_info=True)
            sys.stderr.write(f"livgui segment: {ref.case_id}: {exc}\n")
            done.append({"case_id": ref.case_id, "error": str(exc)})
    emit_json(
        {
            "command": "segment",
            "device": segmenter.choice.description,
            "models": segmenter.model_ids,
            "cases": done,
        }
    )
    return 1 if failed else 0
