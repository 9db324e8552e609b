"""The embedded TTP store: one SQLite file in WAL mode with synchronous=FULL, so a write that returned
survives a crash or power loss.

Concurrency: one connection guarded by a lock. SQLite lets only one writer in at a time anyway, so a pool
would buy nothing for writes, and one connection keeps every read-modify-write (a conflict check then an
insert, reading the chain head then appending) trivially atomic within the process. Writes run in
``BEGIN IMMEDIATE`` transactions, which take the database's write lock up front, so two processes (or two
store objects) on one file serialise too and can never fork the audit chain.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from safework.watermark.ttp import _rows
from safework.watermark.ttp.audit import GENESIS_HASH, make_entry
from safework.watermark.ttp.store import (
    AuditEntry,
    GrantRecord,
    StoreError,
    StoreInputError,
    StoreSchemaError,
    TTPStore,
    VendorRecord,
    check_nonce,
    check_page,
    check_seed,
    check_text,
    check_time,
    check_vendor_id,
)

_SCHEMA = f"""
CREATE TABLE ttp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE ttp_vendors (
    vendor_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, public_keys TEXT NOT NULL,
    model_ids TEXT NOT NULL, scheme TEXT NOT NULL, scheme_version TEXT NOT NULL, endpoint TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL, registered_at REAL NOT NULL
) STRICT;
CREATE TABLE ttp_grants (
    grant_id TEXT PRIMARY KEY, seed INTEGER NOT NULL UNIQUE,
    vendor_id TEXT NOT NULL REFERENCES ttp_vendors (vendor_id),
    model_id TEXT NOT NULL, model_version TEXT NOT NULL, time_bucket INTEGER NOT NULL,
    extra_info TEXT NOT NULL, issued_at REAL NOT NULL, signature BLOB NOT NULL
) STRICT;
CREATE INDEX ttp_grants_by_vendor ON ttp_grants (vendor_id, issued_at);
CREATE TABLE ttp_nonces (
    client_id TEXT NOT NULL, nonce BLOB NOT NULL, seen_at REAL NOT NULL, PRIMARY KEY (client_id, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX ttp_nonces_by_time ON ttp_nonces (seen_at);
CREATE TABLE ttp_audit (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0), ts REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL
) STRICT;
INSERT INTO ttp_meta VALUES ('format', '{_rows.META_FORMAT}'), ('schema_version', '{_rows.SCHEMA_VERSION}');
"""


class SQLiteStore(TTPStore):
    """A TTP store in one SQLite file (created with its schema if new or empty). Thread-safe."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open TTP database {self.path} ({exc}); check the path and its permissions"
            ) from None
        self._conn: sqlite3.Connection | None = conn
        try:
            self._open()
        except BaseException:
            conn.close()
            self._conn = None
            raise

    # -- plumbing ---------------------------------------------------------------------------------------

    def _open(self) -> None:
        """Check the file before changing anything in it, then set durability pragmas and the schema."""
        with self._errors():
            conn = self._live()
            try:
                self._check_schema(conn)
            except sqlite3.OperationalError as exc:  # e.g. a directory, no permission
                raise StoreError(
                    f"cannot open TTP database {self.path} ({exc}); check the path and its permissions"
                ) from None
            except sqlite3.DatabaseError as exc:  # e.g. "file is not a database"
                raise StoreSchemaError(
                    f"{self.path} is not a safework TTP database (SQLite says: {exc}); "
                    "point the TTP at its own database file"
                ) from None
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"SQLite refused WAL journal mode for {self.path} (got {mode!r}); put the database on a "
                    "local file system"
                )
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            with self._write() as wconn:  # re-checked under the write lock: another process may have won
                if not self._check_schema(wconn):
                    # statement by statement: executescript() would COMMIT the open transaction first
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        wconn.execute(statement)

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """True if the TTP schema is there, False if the database is empty; raise for anything else."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "ttp_meta" not in tables:
            if tables:
                raise StoreSchemaError(
                    f"{self.path} is an SQLite database of something else (tables: {sorted(tables)[:5]}); "
                    "point the TTP at its own database file"
                )
            return False
        found = dict(conn.execute("SELECT key, value FROM ttp_meta").fetchall())
        problem = _rows.schema_problem(found, str(self.path))
        if problem:
            raise StoreSchemaError(problem)
        return True

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the TTP store {self.path} is closed; open a new SQLiteStore")
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"TTP database {self.path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._live()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed (and fsynced) on success, rolled back on any error."""
        with self._lock, self._errors():
            conn = self._live()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- vendors ----------------------------------------------------------------------------------------

    def add_vendor(self, record: VendorRecord) -> None:
        if not isinstance(record, VendorRecord):
            raise StoreInputError(f"add_vendor takes a VendorRecord, got {type(record).__name__}")
        row = _rows.vendor_to_row(record)
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO ttp_vendors ({_rows.VENDOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (vendor_id) DO UPDATE SET display_name = excluded.display_name, "
                "public_keys = excluded.public_keys, model_ids = excluded.model_ids, "
                "scheme = excluded.scheme, scheme_version = excluded.scheme_version, "
                "endpoint = excluded.endpoint, cert_fingerprint = excluded.cert_fingerprint",
                row,
            )

    def get_vendor(self, vendor_id: str) -> VendorRecord | None:
        check_vendor_id(vendor_id)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_rows.VENDOR_COLUMNS} FROM ttp_vendors WHERE vendor_id = ?", (vendor_id,)
            ).fetchone()
        return None if row is None else _rows.vendor_from_row(row)

    def list_vendors(self) -> list[VendorRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_rows.VENDOR_COLUMNS} FROM ttp_vendors ORDER BY vendor_id"
            ).fetchall()
        return [_rows.vendor_from_row(r) for r in rows]

    # -- grants -----------------------------------------------------------------------------------------

    def add_grant(self, record: GrantRecord) -> None:
        if not isinstance(record, GrantRecord):
            raise StoreInputError(f"add_grant takes a GrantRecord, got {type(record).__name__}")
        row = _rows.grant_to_row(record)
        with self._write() as conn:
            clash = conn.execute(
                "SELECT grant_id, seed = ? FROM ttp_grants WHERE grant_id = ? OR seed = ? LIMIT 1",
                (row[1], record.grant_id, row[1]),
            ).fetchone()
            if clash is not None:
                raise _rows.grant_conflict(record, bool(clash[1]), clash[0])
            if conn.execute("SELECT 1 FROM ttp_vendors WHERE vendor_id = ?", (record.vendor_id,)).fetchone():
                conn.execute(f"INSERT INTO ttp_grants ({_rows.GRANT_COLUMNS}) VALUES ({_marks(9)})", row)
                return
        raise _rows.unknown_vendor(record)

    def get_grant(self, grant_id: str) -> GrantRecord | None:
        check_text("grant_id", grant_id, max_len=128)
        return self._one_grant("grant_id = ?", grant_id)

    def grant_for_seed(self, seed: int) -> GrantRecord | None:
        return self._one_grant("seed = ?", _rows.seed_to_sql(check_seed(seed)))

    def _one_grant(self, where: str, value: Any) -> GrantRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_rows.GRANT_COLUMNS} FROM ttp_grants WHERE {where}", (value,)
            ).fetchone()
        return None if row is None else _rows.grant_from_row(row)

    def grants_for_vendor(self, vendor_id: str, *, since: float | None = None) -> list[GrantRecord]:
        check_vendor_id(vendor_id)
        floor = -1.0 if since is None else check_time("since", since)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_rows.GRANT_COLUMNS} FROM ttp_grants WHERE vendor_id = ? AND issued_at >= ? "
                "ORDER BY issued_at, grant_id",
                (vendor_id, floor),
            ).fetchall()
        return [_rows.grant_from_row(r) for r in rows]

    def count_grants(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM ttp_grants").fetchone()[0])

    # -- replay guard -----------------------------------------------------------------------------------

    def remember_nonce(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        args = check_nonce(client_id, nonce, timestamp)
        with self._write() as conn:
            cur = conn.execute("INSERT INTO ttp_nonces VALUES (?, ?, ?) ON CONFLICT DO NOTHING", args)
            return cur.rowcount == 1

    def purge_nonces(self, older_than: float) -> int:
        horizon = check_time("older_than", older_than)
        with self._write() as conn:
            return conn.execute("DELETE FROM ttp_nonces WHERE seen_at < ?", (horizon,)).rowcount

    # -- audit log --------------------------------------------------------------------------------------

    def append_audit(
        self, kind: str, payload: dict[str, Any], *, timestamp: float | None = None
    ) -> AuditEntry:
        with self._write() as conn:  # IMMEDIATE: the head read below cannot go stale before the insert
            head = conn.execute("SELECT idx, entry_hash FROM ttp_audit ORDER BY idx DESC LIMIT 1").fetchone()
            index, prev = (0, GENESIS_HASH) if head is None else (int(head[0]) + 1, str(head[1]))
            entry, text = make_entry(index, prev, kind, payload, timestamp, time.time())
            conn.execute(
                f"INSERT INTO ttp_audit ({_rows.AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (entry.index, entry.timestamp, entry.kind, text, entry.prev_hash, entry.entry_hash),
            )
        return entry

    def read_audit(self, start: int = 0, limit: int = 100) -> list[AuditEntry]:
        start, limit = check_page(start, limit)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_rows.AUDIT_COLUMNS} FROM ttp_audit WHERE idx >= ? ORDER BY idx LIMIT ?",
                (start, limit),
            ).fetchall()
        return [_rows.audit_from_row(r) for r in rows]

    def audit_length(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM ttp_audit").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"


def _marks(n: int) -> str:
    return ", ".join("?" * n)
