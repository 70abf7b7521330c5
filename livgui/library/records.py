"""Plain records returned by the case library (frozen dataclasses, JSON-ready)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from livgui.core.volume import LabelMap, Volume

__all__ = [
    "MASK_KINDS",
    "STATUSES",
    "TRANSITIONS",
    "AddReport",
    "AuditEntry",
    "CaseLike",
    "CaseRecord",
    "CaseRefLike",
    "MaskRecord",
]

STATUSES = ("new", "predicted", "corrected", "approved", "unreadable")
MASK_KINDS = ("original", "final", "reference")

#: Allowed review-status changes.  ``unreadable`` is final (re-add a fixed source instead);
#: an approved case can be reopened for correction; re-running a model is allowed until
#: approval.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "new": frozenset({"predicted", "corrected"}),
    "predicted": frozenset({"predicted", "corrected", "approved"}),
    "corrected": frozenset({"predicted", "corrected", "approved"}),
    "approved": frozenset({"corrected"}),
    "unreadable": frozenset(),
}


class CaseRefLike(Protocol):
    """What the library needs of :class:`livgui.imageio.datasets.CaseRef`."""

    @property
    def case_id(self) -> str: ...
    @property
    def image_path(self) -> Path: ...
    @property
    def reference_path(self) -> Path | None: ...
    @property
    def layout(self) -> str: ...


class CaseLike(Protocol):
    """What the library needs of a loaded :class:`livgui.imageio.datasets.Case`."""

    @property
    def volume(self) -> Volume: ...
    @property
    def reference(self) -> LabelMap | None: ...
    @property
    def warnings(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class CaseRecord:
    """One row of the catalogue.  ``source_path`` is absolute and never written."""

    case_id: str
    source_path: str
    source_sha256: str
    layout: str
    reference_path: str | None
    status: str
    error: str | None
    added_utc: str
    use_for_training: bool
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MaskRecord:
    """A saved mask.  ``path`` is relative to the library root for original/final masks
    (they live in the case folder) and absolute for reference masks (sources)."""

    id: int
    case_id: str
    kind: str
    path: str
    model_id: str | None
    sha256: str
    saved_utc: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditEntry:
    """One append-only audit line: when (UTC, ISO 8601), who (OS user), what."""

    id: int
    at_utc: str
    who: str
    case_id: str | None
    action: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AddReport:
    """Outcome of :meth:`livgui.library.Library.add_path`.

    ``added`` lists new case ids (readable or not); ``unreadable`` the ones among them that
    failed validation, with the message; ``duplicates`` sources already in the library
    (``{"case_id", "source", "existing_case_id"}``); ``renamed`` ids changed to stay unique
    or safe; ``errors`` paths that could not even be listed.
    """

    path: str
    added: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["counts"] = {
            "added": len(self.added),
            "readable": len(self.added) - len(self.unreadable),
            "unreadable": len(self.unreadable),
            "duplicates": len(self.duplicates),
            "errors": len(self.errors),
        }
        return doc
