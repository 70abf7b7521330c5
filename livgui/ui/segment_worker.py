"""The segmentation panel's work as plain functions (``progress=``, ``cancel=``), no Qt.

* :func:`list_models` scans the model store (user + bundled bundles) by stage and picks
  the device; it is the first thing that imports torch, so the panel runs it in a worker.
* :func:`segment_case` runs the cascade (or a one-stage model) on one volume.
* :func:`segment_library` runs it over cases of a case library, one at a time: each
  prediction is written atomically into the case folder, recorded as the ``original``
  mask with the model ids, the status set to ``predicted`` unless the case is already
  corrected/approved (then only the new original is stored, and the report says so), and
  an ``infer`` audit line appended.
* :func:`install_bundle` copies a bundle folder into the user store (re-verified).

Oracle bundles (hand-set HU thresholds) are test tools: they are listed only when the
environment variable ``LIVGUI_SHOW_TEST_MODELS`` is ``1``.  Research use only, not for
diagnosis.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livgui.core.progress import ProgressFn, check_cancel, no_progress
from livgui.core.volume import RESEARCH_NOTICE, Volume

__all__ = [
    "BatchReport",
    "CaseOutcome",
    "ModelChoice",
    "ModelListing",
    "SegmentRequest",
    "device_label",
    "install_bundle",
    "list_models",
    "segment_case",
    "segment_library",
    "show_test_models",
]

log = logging.getLogger(__name__)

#: ``case_progress(index, count, case_id, fraction_of_this_case, message)``
CaseProgressFn = Callable[[int, int, str, float, str], None]
INSTALL_HINT = (
    "No model bundles are installed. Install one with `livgui models install PATH` "
    "(a folder with manifest.json and weights.safetensors) or the Install model… button."
)


def show_test_models() -> bool:
    """Oracle (test) bundles are offered only with ``LIVGUI_SHOW_TEST_MODELS=1``."""
    return os.environ.get("LIVGUI_SHOW_TEST_MODELS", "") == "1"


@dataclass(frozen=True)
class ModelChoice:
    """One usable bundle as the panel lists it."""

    name: str
    model_id: str
    stage: str
    path: str
    architecture: str
    is_test: bool = False

    @property
    def label(self) -> str:
        test = " [test oracle]" if self.is_test else ""
        return f"{self.name} ({self.architecture}){test}"


@dataclass
class ModelListing:
    """Bundles by stage (``liver``, ``lesion``, ``onestage``), broken ones, the device."""

    by_stage: dict[str, list[ModelChoice]] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    hidden_test: int = 0
    device: str = ""
    threads: int = 0
    user_dir: str = ""

    @property
    def empty(self) -> bool:
        return not any(self.by_stage.values())


@dataclass(frozen=True)
class SegmentRequest:
    """What to run: a cascade (``liver`` [+ ``lesion``]) or a ``onestage`` bundle.

    Bundles are given by folder path (as listed), so a later install under the same name
    cannot swap the network under a running batch.
    """

    liver: str | None = None
    lesion: str | None = None
    onestage: str | None = None
    device: str = "auto"
    replace_non_finite: bool = False

    def describe(self) -> str:
        if self.onestage:
            return f"one-stage {Path(self.onestage).name}"
        lesion = f" + {Path(self.lesion).name}" if self.lesion else " (liver only)"
        return f"cascade {Path(self.liver or '?').name}{lesion}"


def device_label(choice: Any, threads: int) -> str:
    """Status-bar text: the CUDA card's name, ``Apple MPS`` or ``CPU, N threads``."""
    import torch

    kind = choice.device.type
    if kind == "cuda":
        return f"GPU: {torch.cuda.get_device_name(choice.device)} ({choice.precision})"
    if kind == "mps":
        return f"Apple MPS ({choice.precision})"
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


def _choose(device: str, set_threads: bool = True) -> Any:
    """The device for in-GUI inference; on the CPU at most ``cores - 1`` threads."""
    from livgui.inference.device import choose_device, cpu_threads_for_gui

    choice = choose_device(device)
    if choice.device.type == "cpu" and set_threads:
        cpu_threads_for_gui()  # called in the worker thread that runs the networks
        choice = choose_device("cpu")  # description with the thread count now in force
    return choice


def list_models(
    device: str = "auto", *, progress: ProgressFn = no_progress, cancel: Any = None
) -> ModelListing:
    """Usable bundles by stage (oracles only with ``LIVGUI_SHOW_TEST_MODELS=1``)."""
    from livgui.models.store import ModelStore

    progress(0.0, "scanning installed models")
    store = ModelStore()
    listing = ModelListing(by_stage={"liver": [], "lesion": [], "onestage": []})
    listing.user_dir = str(store.user)
    seen: set[str] = set()
    show_test = show_test_models()
    for entry in store.entries():  # user bundles first: they shadow bundled ones
        check_cancel(cancel)
        if entry.name in seen:
            continue
        seen.add(entry.name)
        b = entry.bundle
        if b is None:
            listing.broken.append(f"{entry.path}: {entry.error}")
            continue
        is_test = b.architecture == "oracle_threshold" or b.provenance.get("kind") == "oracle"
        if is_test and not show_test:
            listing.hidden_test += 1
            continue
        choice = ModelChoice(b.name, b.model_id, b.stage, str(entry.path), b.architecture, is_test)
        listing.by_stage.setdefault(b.stage, []).append(choice)
    from livgui.inference.device import gui_thread_count

    listing.threads = gui_thread_count()  # what the inference worker will set
    listing.device = device_label(_choose(device, set_threads=False), listing.threads)
    progress(1.0, "models listed")
    return listing


def _segmenter(request: SegmentRequest) -> Any:
    from livgui.inference.cascade import CascadeOptions, Segmenter
    from livgui.models.bundle import load_bundle

    choice = _choose(request.device)
    non_finite = "replace" if request.replace_non_finite else "refuse"
    options = CascadeOptions(device=request.device, non_finite=non_finite)

    def bundle(path: str | None) -> Any:
        return load_bundle(path) if path else None

    if request.onestage:
        return Segmenter(onestage=bundle(request.onestage), options=options, choice=choice)
    if not request.liver:
        raise ValueError("choose a liver model for the cascade, or a one-stage model")
    return Segmenter(
        liver=bundle(request.liver),
        lesion=bundle(request.lesion),
        options=options,
        choice=choice,
    )


def segment_case(
    request: SegmentRequest,
    volume: Volume,
    *,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
) -> Any:
    """Segment ``volume``; returns a :class:`~livgui.inference.cascade.SegmentationResult`.

    Nothing is returned on cancel or error (:class:`Cancelled` / the error propagates),
    so the caller's layers stay untouched.
    """
    progress(0.0, "loading the models")
    segmenter = _segmenter(request)
    try:
        return segmenter.run(volume, progress=progress, cancel=cancel)
    finally:
        segmenter.close()


@dataclass
class CaseOutcome:
    """What happened to one library case in a batch."""

    case_id: str
    state: str  # "predicted", "stored" (corrected/approved: original only), "failed", "skipped"
    message: str = ""
    mask: str = ""
    seconds: float = 0.0
    dice_liver: float | None = None


@dataclass
class BatchReport:
    """Outcome of :func:`segment_library` (also when cancelled: ``cancelled`` is set)."""

    root: str
    models: dict[str, str] = field(default_factory=dict)
    device: str = ""
    cases: list[CaseOutcome] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for c in self.cases if c.state == state)

    def summary(self) -> str:
        parts = [f"{self.count('predicted')} predicted"]
        for state, words in (
            ("stored", "already reviewed (new original stored only)"),
            ("failed", "failed"),
            ("skipped", "skipped"),
        ):
            if self.count(state):
                parts.append(f"{self.count(state)} {words}")
        tail = " — cancelled" if self.cancelled else ""
        return f"{', '.join(parts)} in {self.seconds:.1f} s{tail}"


def _mask_name() -> str:
    return f"original-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.nii.gz"


def _one_library_case(
    lib: Any, case_id: str, segmenter: Any, progress: ProgressFn, cancel: Any
) -> CaseOutcome:
    """Segment, save, record and audit one case (raises on failure; nothing half-written)."""
    from livgui.core.metrics import dice_iou
    from livgui.imageio import load_case, save_mask
    from livgui.ui.case_list import ref_from_record

    record = lib.get(case_id)
    if record.status == "unreadable":
        return CaseOutcome(case_id, "skipped", f"unreadable: {record.error or 'see library'}")
    t0 = time.perf_counter()
    case = load_case(ref_from_record(record), cancel=cancel)
    result = segmenter.run(case.volume, progress=progress, cancel=cancel)
    check_cancel(cancel)
    path = lib.case_dir(case_id) / _mask_name()
    digest = save_mask(result.labels, path, like=case.volume)
    model_id = "+".join(result.model_ids.values())
    lib.record_mask(case_id, "original", path, model_id=model_id, sha256=digest)
    reviewed = record.status in ("corrected", "approved")
    if not reviewed:
        lib.set_status(case_id, "predicted", models=result.model_ids)
    dice = None
    if case.reference is not None:
        dice = dice_iou(case.reference.liver(), result.labels.liver())[0]
    lib.audit(
        case_id,
        "infer",
        models=result.model_ids,
        device=result.device,
        timings_s={k: round(v, 3) for k, v in result.timings_s.items()},
        notices=result.notices,
        mask=path.relative_to(lib.root).as_posix(),
        sha256=digest,
        status_kept=record.status if reviewed else None,
        notice=RESEARCH_NOTICE,
    )
    message = (
        f"already {record.status}: new original stored, status kept" if reviewed else "predicted"
    )
    if result.notices:
        message += "; " + "; ".join(result.notices)
    state = "stored" if reviewed else "predicted"
    return CaseOutcome(case_id, state, message, str(path), time.perf_counter() - t0, dice)


def segment_library(
    root: str | Path,
    case_ids: Sequence[str],
    request: SegmentRequest,
    *,
    progress: ProgressFn = no_progress,
    cancel: Any = None,
    case_progress: CaseProgressFn | None = None,
    report: BatchReport | None = None,
) -> BatchReport:
    """Segment the library cases ``case_ids`` one at a time (see the module docstring).

    A case that fails (unreadable file, refused input) is reported and the batch goes
    on; cancel stops between batches of slices and keeps the cases already written.
    The library is opened here (its SQLite connection belongs to this thread).  Pass
    ``report`` to read the outcome also when the run is cancelled (a Qt worker drops
    the return value of a cancelled function).
    """
    from livgui.core.progress import Cancelled
    from livgui.library import Library

    start = time.perf_counter()
    report = report if report is not None else BatchReport(str(root))
    n = max(1, len(case_ids))
    progress(0.0, "loading the models")
    segmenter = _segmenter(request)
    report.models, report.device = segmenter.model_ids, segmenter.choice.description
    lib = Library.open(root)
    try:
        for i, case_id in enumerate(case_ids):

            def sub(f: float, m: str, i: int = i, case_id: str = case_id) -> None:
                check_cancel(cancel)
                progress((i + f) / n, f"case {i + 1} of {len(case_ids)} ({case_id}): {m}")
                if case_progress is not None:
                    case_progress(i, len(case_ids), case_id, f, m)

            sub(0.0, "loading")
            try:
                report.cases.append(_one_library_case(lib, case_id, segmenter, sub, cancel))
            except Cancelled:
                report.cancelled = True
                break
            except Exception as exc:  # one bad case never stops the batch
                log.warning("segmenting %s failed: %s", case_id, exc)
                report.cases.append(CaseOutcome(case_id, "failed", str(exc)))
                lib.audit(case_id, "infer failed", models=report.models, error=str(exc))
        report.seconds = time.perf_counter() - start
        lib.audit(None, "infer batch", models=report.models, summary=report.summary())
    finally:
        lib.close()
        segmenter.close()
    progress(1.0, report.summary())
    return report


def install_bundle(
    folder: str | Path, *, progress: ProgressFn = no_progress, cancel: Any = None
) -> str:
    """Copy the bundle at ``folder`` into the user store (re-verified); its model id."""
    from livgui.models.store import ModelStore

    progress(0.0, f"installing {Path(folder).name}")
    bundle = ModelStore().install_folder(Path(folder))
    progress(1.0, "installed")
    return str(bundle.model_id)
