"""The case library on disk: folders + SQLite catalogue, masks, audit log, review status."""

from livgui.library.library import Library, now_utc, os_user
from livgui.library.records import (
    MASK_KINDS,
    STATUSES,
    TRANSITIONS,
    AddReport,
    AuditEntry,
    CaseRecord,
    MaskRecord,
)
from livgui.library.sources import sanitize_case_id, source_sha256

__all__ = [
    "MASK_KINDS",
    "STATUSES",
    "TRANSITIONS",
    "AddReport",
    "AuditEntry",
    "CaseRecord",
    "Library",
    "MaskRecord",
    "now_utc",
    "os_user",
    "sanitize_case_id",
    "source_sha256",
]
