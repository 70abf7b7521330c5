"""The SQLite catalogue of a case library: schema, migrations and connections.

One file ``catalogue.sqlite`` in the library root, opened in WAL mode with foreign keys on.
The schema is versioned (table ``schema_version``); :data:`MIGRATIONS` holds one SQL script
per version step and :func:`connect` applies the missing ones in a single transaction, so a
library written by an older LivGUI is upgraded in place and one written by a newer LivGUI
is refused instead of being damaged.

The ``audit`` table is append-only: triggers abort any UPDATE or DELETE on it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

__all__ = ["CATALOGUE_NAME", "MIGRATIONS", "SCHEMA_VERSION", "connect", "schema_version"]

log = logging.getLogger(__name__)

CATALOGUE_NAME = "catalogue.sqlite"

_V1 = """
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    source_path TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    layout TEXT NOT NULL,
    reference_path TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('new', 'predicted', 'corrected', 'approved', 'unreadable')),
    error TEXT,
    added_utc TEXT NOT NULL,
    use_for_training INTEGER NOT NULL DEFAULT 0 CHECK (use_for_training IN (0, 1)),
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX cases_by_hash ON cases (source_sha256);
CREATE TABLE masks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL REFERENCES cases (case_id),
    kind TEXT NOT NULL CHECK (kind IN ('original', 'final', 'reference')),
    path TEXT NOT NULL,
    model_id TEXT,
    sha256 TEXT NOT NULL,
    saved_utc TEXT NOT NULL
);
CREATE INDEX masks_by_case ON masks (case_id, kind);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_utc TEXT NOT NULL,
    who TEXT NOT NULL,
    case_id TEXT,
    action TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_case ON audit (case_id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""

#: ``MIGRATIONS[i]`` upgrades a catalogue from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[str, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """Version of an open catalogue (0 for a new, empty database)."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(version[0]) if version else 0


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"{path}: catalogue schema version {current} was written by a newer LivGUI "
            f"(this one knows up to {SCHEMA_VERSION}); not opened to avoid damaging it"
        )
    if current == SCHEMA_VERSION:
        return
    script = ["BEGIN IMMEDIATE;"]
    if current == 0:
        script.append("CREATE TABLE schema_version (version INTEGER NOT NULL);")
        script.append("INSERT INTO schema_version VALUES (0);")
    script.extend(MIGRATIONS[current:])
    script.append(f"UPDATE schema_version SET version = {SCHEMA_VERSION}; COMMIT;")
    try:
        conn.executescript("\n".join(script))
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.info("catalogue %s upgraded from schema %d to %d", path, current, SCHEMA_VERSION)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating and migrating when needed) the catalogue at ``path``.

    The connection is in autocommit mode (``isolation_level=None``); callers group writes
    with explicit ``BEGIN IMMEDIATE`` / ``COMMIT``.
    """
    path = Path(path)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn
