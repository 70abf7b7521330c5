"""Adding sources to a case library: list the cases, hash, validate by reading, record.

Every case is read once (``load_case``) to validate it, because some corrupt files only
fail when their data is decoded (RELIABILITY row 1).  A case that fails is recorded with
status ``unreadable`` and the reader's message; it never stops the others.  A source whose
SHA-256 is already in the library is reported as a duplicate and not added again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from livgui import imageio
from livgui.core.progress import Cancelled, ProgressFn, check_cancel
from livgui.library.library import Library, now_utc
from livgui.library.records import AddReport, CaseLike, CaseRecord, CaseRefLike
from livgui.library.sources import sanitize_case_id, source_sha256, unique_case_id

__all__ = ["add_path", "case_summary", "default_lister", "default_loader"]

log = logging.getLogger(__name__)

Lister = Callable[[Path], Sequence[CaseRefLike]]
Loader = Callable[[CaseRefLike], CaseLike]


def default_lister(path: Path) -> Sequence[CaseRefLike]:
    """:func:`livgui.imageio.list_cases`."""
    return imageio.list_cases(path)


def default_loader(ref: CaseRefLike) -> CaseLike:
    """:func:`livgui.imageio.load_case` (``ref`` must be a real ``CaseRef``)."""
    return imageio.load_case(ref)  # type: ignore[arg-type]


def _message(exc: BaseException, source: Path) -> str:
    """The reader's message, prefixed with the source when it does not name a path."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        text = f"not enough memory to read it ({text})"
    return text if str(source) in text or source.name in text else f"{source}: {text}"


def case_summary(case: CaseLike) -> dict[str, Any]:
    """Facts shown in ``library list``: grid, HU range, warnings, reference label counts."""
    vol = case.volume
    warnings = list(case.warnings)
    if vol.source is not None:
        warnings += [w for w in vol.source.warnings if w not in warnings]
    info: dict[str, Any] = {
        "shape_zyx": list(vol.shape),
        "spacing_zyx_mm": [round(s, 6) for s in vol.spacing],
        "orientation": "".join(vol.geometry.orientation),
        "hu_range": list(vol.finite_range()),
        "warnings": warnings,
        "has_reference": case.reference is not None,
    }
    if case.reference is not None:
        counts = np.bincount(case.reference.data.ravel(), minlength=3)
        info["reference_voxels"] = {str(i): int(c) for i, c in enumerate(counts) if c}
    return info


def _validate(
    ref: CaseRefLike, loader: Loader, source: Path
) -> tuple[str, str | None, dict[str, Any]]:
    """``(status, error, info)`` after reading the case once."""
    try:
        case = loader(ref)
        return "new", None, case_summary(case)
    except Cancelled:
        raise
    except Exception as exc:  # any reader failure marks the case, never the whole add
        log.info("case %s unreadable: %s", ref.case_id, exc)
        return "unreadable", _message(exc, source), {}


def _add_one(
    lib: Library, ref: CaseRefLike, loader: Loader, report: AddReport, taken: set[str]
) -> None:
    source = Path(ref.image_path).expanduser().resolve()
    try:
        sha, hash_error = source_sha256(source), None
    except OSError as exc:
        sha, hash_error = "", _message(exc, source)
    existing = lib.find_by_hash(sha) if sha else None
    if existing is not None:
        report.duplicates.append(
            {
                "case_id": ref.case_id,
                "source": str(source),
                "existing_case_id": existing.case_id,
                "existing_status": existing.status,
            }
        )
        return
    case_id = unique_case_id(sanitize_case_id(str(ref.case_id)), taken)
    if case_id != ref.case_id:
        report.renamed.append({"from": str(ref.case_id), "to": case_id})
    if hash_error is None:
        status, error, info = _validate(ref, loader, source)
    else:
        status, error, info = "unreadable", hash_error, {}
    reference = None if ref.reference_path is None else str(Path(ref.reference_path).resolve())
    record = CaseRecord(
        case_id=case_id,
        source_path=str(source),
        source_sha256=sha,
        layout=str(ref.layout),
        reference_path=reference,
        status=status,
        error=error,
        added_utc=now_utc(),
        use_for_training=False,
        info=info,
    )
    lib.insert_case(record, source=str(source), sha256=sha, status=status, error=error)
    taken.add(case_id)
    report.added.append(case_id)
    if error is not None:
        report.unreadable.append({"case_id": case_id, "source": str(source), "error": error})


def add_path(
    lib: Library,
    path: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    lister: Lister | None = None,
    loader: Loader | None = None,
) -> AddReport:
    """Add every case found at ``path`` to ``lib`` (see the module docstring).

    ``lister(path)`` returns case references (default
    ``livgui.imageio.datasets.list_cases``); ``loader(ref)`` reads one case (default
    ``livgui.imageio.datasets.load_case``).  Both are injectable for tests.  Cancelling
    stops between cases; the cases already added stay.
    """
    started = time.perf_counter()
    report = AddReport(str(Path(path).expanduser().resolve()))
    try:
        refs = list((lister or default_lister)(Path(path)))
    except Exception as exc:  # a folder that is no dataset at all: say so, add nothing
        report.errors.append({"path": str(path), "error": _message(exc, Path(path))})
        report.seconds = time.perf_counter() - started
        return report
    if not refs:
        message = "no case LivGUI can read was found (no dataset layout or image recognised)"
        report.errors.append({"path": str(path), "error": f"{path}: {message}"})
    taken = lib.case_ids()
    for i, ref in enumerate(refs):
        check_cancel(cancel)
        if progress is not None:
            progress(i / max(len(refs), 1), f"reading case {i + 1} of {len(refs)}")
        _add_one(lib, ref, loader or default_loader, report, taken)
    if progress is not None:
        progress(1.0, f"{len(report.added)} added, {len(report.duplicates)} duplicates")
    report.seconds = time.perf_counter() - started
    return report
