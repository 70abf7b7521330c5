"""The case library: a folder per case under a root plus the SQLite catalogue.

Layout on disk::

    <root>/catalogue.sqlite        cases, masks, append-only audit (see catalogue.py)
    <root>/cases/<case_id>/        masks LivGUI writes for the case (original, final)

Sources (CT files and folders, reference masks) are referenced by absolute path and
SHA-256, never copied and never opened for writing.  Masks recorded as ``original`` or
``final`` must lie under the root and are stored relative to it.

A :class:`Library` wraps one SQLite connection: use it from one thread (open another
``Library`` on the same root in a worker; WAL lets them share the catalogue).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from livgui.core.atomicio import atomic_write_bytes, sha256_file
from livgui.core.metrics import json_safe
from livgui.core.progress import ProgressFn
from livgui.core.volume import RESEARCH_NOTICE
from livgui.library.catalogue import CATALOGUE_NAME, connect
from livgui.library.records import (
    MASK_KINDS,
    STATUSES,
    TRANSITIONS,
    AddReport,
    AuditEntry,
    CaseLike,
    CaseRecord,
    CaseRefLike,
    MaskRecord,
)

__all__ = ["Library", "now_utc", "os_user"]

log = logging.getLogger(__name__)

_README = f"""LivGUI case library ({RESEARCH_NOTICE}).

catalogue.sqlite  cases, masks and the append-only audit log (do not edit by hand)
cases/<case_id>/  masks LivGUI saved for each case; the CT sources stay where they were
"""

_CASE_COLUMNS = (
    "case_id, source_path, source_sha256, layout, reference_path, status, error, "
    "added_utc, use_for_training, info"
)


def now_utc() -> str:
    """Current UTC time, ISO 8601 with milliseconds (``2026-11-26T17:00:00.000+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def os_user() -> str:
    """The OS user name for the audit log (``"unknown"`` when the OS cannot tell)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "unknown"


def _details_json(details: dict[str, Any]) -> str:
    """Audit details as strict JSON (NaN/Inf become null, unknown objects their str)."""
    return json.dumps(json_safe(details), allow_nan=False, default=str)


def _case_from_row(row: Sequence[Any]) -> CaseRecord:
    return CaseRecord(
        case_id=row[0],
        source_path=row[1],
        source_sha256=row[2],
        layout=row[3],
        reference_path=row[4],
        status=row[5],
        error=row[6],
        added_utc=row[7],
        use_for_training=bool(row[8]),
        info=json.loads(row[9]),
    )


class Library:
    """An open case library.  Create with :meth:`open`; close with :meth:`close`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self._conn = conn

    @classmethod
    def open(cls, root: str | Path) -> Library:
        """Open the library at ``root``, creating the folder and catalogue when absent."""
        path = Path(root).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{path}: a library root must be a folder")
        (path / "cases").mkdir(parents=True, exist_ok=True)
        readme = path / "README.txt"
        if not readme.exists():
            atomic_write_bytes(readme, _README.encode("utf-8"))
        return cls(path, connect(path / CATALOGUE_NAME))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` when the block raises)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def case_dir(self, case_id: str) -> Path:
        """The case's own folder under the root (masks LivGUI writes go here)."""
        self.get(case_id)
        return self.root / "cases" / case_id

    # --- reading -------------------------------------------------------------------------

    def list_cases(self, status: str | None = None) -> list[CaseRecord]:
        """All cases in the order they were added, optionally only those with ``status``."""
        sql = f"SELECT {_CASE_COLUMNS} FROM cases"
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [_case_from_row(r) for r in rows]

    def get(self, case_id: str) -> CaseRecord:
        """The case ``case_id``; ``KeyError`` naming it when absent."""
        row = self._conn.execute(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = ?", (case_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no case {case_id!r} in the library {self.root}")
        return _case_from_row(row)

    def find_by_hash(self, sha256: str) -> CaseRecord | None:
        """The first case whose source has this SHA-256, if any."""
        row = self._conn.execute(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE source_sha256 = ? ORDER BY rowid LIMIT 1",
            (sha256,),
        ).fetchone()
        return None if row is None else _case_from_row(row)

    def case_ids(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT case_id FROM cases")}

    # --- writing -------------------------------------------------------------------------

    def insert_case(self, record: CaseRecord, **audit_details: Any) -> None:
        """Insert a new catalogue row and its ``add`` audit line in one transaction."""
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}; expected one of {STATUSES}")
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.case_id,
                    record.source_path,
                    record.source_sha256,
                    record.layout,
                    record.reference_path,
                    record.status,
                    record.error,
                    record.added_utc,
                    int(record.use_for_training),
                    _details_json(record.info),
                ),
            )
            self._append_audit(conn, record.case_id, "add", audit_details)
        (self.root / "cases" / record.case_id).mkdir(parents=True, exist_ok=True)

    def set_status(self, case_id: str, status: str, **details: Any) -> CaseRecord:
        """Move a case to ``status`` (see :data:`TRANSITIONS`), audited; returns the new row."""
        current = self.get(case_id).status
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
            raise ValueError(
                f"case {case_id!r}: cannot go from {current!r} to {status!r} (allowed: {allowed})"
            )
        with self.transaction() as conn:
            conn.execute("UPDATE cases SET status = ? WHERE case_id = ?", (status, case_id))
            info = {"from": current, "to": status, **details}
            self._append_audit(conn, case_id, "status", info)
        return self.get(case_id)

    def set_training(self, case_id: str, include: bool) -> CaseRecord:
        """Include or exclude a case from training sets (audited)."""
        case = self.get(case_id)
        if include and case.status == "unreadable":
            raise ValueError(f"case {case_id!r} is unreadable and cannot be used for training")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE cases SET use_for_training = ? WHERE case_id = ?", (int(include), case_id)
            )
            action = "include in training" if include else "exclude from training"
            self._append_audit(conn, case_id, action, {})
        return self.get(case_id)

    def record_mask(
        self,
        case_id: str,
        kind: str,
        path: str | Path,
        *,
        model_id: str | None = None,
        sha256: str | None = None,
    ) -> MaskRecord:
        """Record a saved mask of ``kind`` (original, final or reference), audited.

        ``original`` (the model's proposal) and ``final`` (the reviewed mask) must lie
        under the library root; they are stored relative to it.  ``reference`` masks are
        sources and stored by absolute path.  ``sha256`` is computed when not given.
        """
        self.get(case_id)
        if kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {kind!r}; expected one of {MASK_KINDS}")
        full = Path(path).expanduser().resolve()
        if not full.is_file():
            raise FileNotFoundError(f"{full}: mask file not found")
        stored = str(full)
        if kind != "reference":
            try:
                stored = full.relative_to(self.root).as_posix()
            except ValueError:
                raise ValueError(
                    f"{full}: {kind} masks must be saved under the library root {self.root}"
                ) from None
        digest = sha256 or sha256_file(full)
        saved = now_utc()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO masks (case_id, kind, path, model_id, sha256, saved_utc) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, kind, stored, model_id, digest, saved),
            )
            details = {"kind": kind, "path": stored, "sha256": digest, "model_id": model_id}
            self._append_audit(conn, case_id, "save mask", details)
        return MaskRecord(int(cur.lastrowid or 0), case_id, kind, stored, model_id, digest, saved)

    def masks(self, case_id: str, kind: str | None = None) -> list[MaskRecord]:
        """Masks recorded for a case, oldest first (the last of a kind is the current one)."""
        sql = "SELECT id, case_id, kind, path, model_id, sha256, saved_utc FROM masks "
        sql += "WHERE case_id = ?" + (" AND kind = ?" if kind else "") + " ORDER BY id"
        args = (case_id, kind) if kind else (case_id,)
        return [MaskRecord(*row) for row in self._conn.execute(sql, args)]

    def mask_path(self, record: MaskRecord) -> Path:
        """Absolute path of a recorded mask."""
        p = Path(record.path)
        return p if p.is_absolute() else self.root / p

    # --- audit ---------------------------------------------------------------------------

    @staticmethod
    def _append_audit(
        conn: sqlite3.Connection, case_id: str | None, action: str, details: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at_utc, who, case_id, action, details) VALUES (?, ?, ?, ?, ?)",
            (now_utc(), os_user(), case_id, action, _details_json(details)),
        )

    def audit(self, case_id: str | None, action: str, **details: Any) -> None:
        """Append one line to the audit log (``case_id`` ``None`` for library-wide actions)."""
        if not action:
            raise ValueError("an audit line needs an action")
        with self.transaction() as conn:
            self._append_audit(conn, case_id, action, details)

    def audit_log(self, case_id: str | None = None) -> list[AuditEntry]:
        """Audit lines, oldest first: all of them, or those of one case."""
        sql = "SELECT id, at_utc, who, case_id, action, details FROM audit"
        args: tuple[str, ...] = ()
        if case_id is not None:
            sql += " WHERE case_id = ?"
            args = (case_id,)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # --- adding --------------------------------------------------------------------------

    def add_path(
        self,
        path: str | Path,
        *,
        progress: ProgressFn | None = None,
        cancel: Callable[[], bool] | None = None,
        lister: Callable[[Path], Sequence[CaseRefLike]] | None = None,
        loader: Callable[[CaseRefLike], CaseLike] | None = None,
    ) -> AddReport:
        """Add a file, a case folder or a dataset folder of many cases.

        See :func:`livgui.library.adding.add_path` (``lister``/``loader`` default to
        :mod:`livgui.imageio.datasets`).
        """
        from livgui.library.adding import add_path

        return add_path(
            self, Path(path), progress=progress, cancel=cancel, lister=lister, loader=loader
        )
