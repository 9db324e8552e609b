"""The shared TTP store: PostgreSQL through psycopg 3, so several TTP instances can serve from one database.

Same tables, same rules and same conformance suite as the SQLite store. Every write is one transaction
committed before the method returns (PostgreSQL's default synchronous_commit=on makes that durable).
Audit appends lock a one-row chain head (``SELECT ... FOR UPDATE``) inside their transaction, so appends
from any number of threads and instances queue on that row and the chain cannot fork. Threads share a
small pool of connections (psycopg connections are not for concurrent transactions).
psycopg is an optional dependency: ``pip install 'safework-watermark[postgres]'``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import psycopg

_SCHEMA_LOCK = 0x5AFE7770001  # advisory lock id: two instances creating the schema at once take turns

_SCHEMA = [
    "CREATE TABLE ttp_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE ttp_vendors (
        vendor_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, public_keys TEXT NOT NULL,
        model_ids TEXT NOT NULL, scheme TEXT NOT NULL, scheme_version TEXT NOT NULL, endpoint TEXT NOT NULL,
        cert_fingerprint TEXT NOT NULL, registered_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE ttp_grants (
        grant_id TEXT PRIMARY KEY, seed BIGINT NOT NULL CONSTRAINT ttp_grants_seed_key UNIQUE,
        vendor_id TEXT NOT NULL REFERENCES ttp_vendors (vendor_id),
        model_id TEXT NOT NULL, model_version TEXT NOT NULL, time_bucket BIGINT NOT NULL,
        extra_info TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL, signature BYTEA NOT NULL)""",
    "CREATE INDEX ttp_grants_by_vendor ON ttp_grants (vendor_id, issued_at)",
    """CREATE TABLE ttp_nonces (client_id TEXT NOT NULL, nonce BYTEA NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (client_id, nonce))""",
    "CREATE INDEX ttp_nonces_by_time ON ttp_nonces (seen_at)",
    """CREATE TABLE ttp_audit (idx BIGINT PRIMARY KEY CHECK (idx >= 0), ts DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL)""",
    """CREATE TABLE ttp_audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), length BIGINT NOT NULL,
        head_hash TEXT NOT NULL)""",
    f"INSERT INTO ttp_audit_head VALUES (1, 0, '{GENESIS_HASH}')",
    f"""INSERT INTO ttp_meta VALUES ('format', '{_rows.META_FORMAT}'),
        ('schema_version', '{_rows.SCHEMA_VERSION}')""",
]


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            "the PostgreSQL TTP store needs psycopg 3; install it with "
            "`pip install 'safework-watermark[postgres]'` (or `pip install 'psycopg[binary]>=3.2'`), "
            "or use the SQLite store"
        ) from None
    return psycopg


class PostgresStore(TTPStore):
    """A TTP store in a PostgreSQL database (its ttp_* tables are created if absent). Thread-safe."""

    def __init__(self, dsn: str, *, max_connections: int = 8, connect_timeout: int = 10) -> None:
        self._pg = _import_psycopg()
        if not isinstance(dsn, str) or not dsn.strip():
            raise StoreInputError("dsn must be a libpq connection string, e.g. 'host=db dbname=ttp user=ttp'")
        if max_connections < 1:
            raise StoreInputError(f"max_connections must be >= 1, got {max_connections}")
        self._dsn, self._timeout = dsn, connect_timeout
        self._where = _describe(self._pg, dsn)
        self._cond = threading.Condition()
        self._idle: list[psycopg.Connection[Any]] = []
        self._open_count, self._max = 0, max_connections
        self._closed = False
        try:
            self._create_schema()
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn: psycopg.Connection[Any] = self._pg.connect(
                self._dsn, autocommit=True, connect_timeout=self._timeout
            )
        except self._pg.Error as exc:
            raise StoreError(
                f"cannot connect to the TTP database {self._where}: {str(exc).strip()}; check the DSN, "
                "that the server runs, and the credentials"
            ) from None
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a pooled connection (opening one if under the cap, else waiting for one)."""
        with self._cond:
            while not self._closed and not self._idle and self._open_count >= self._max:
                self._cond.wait()
            if self._closed:
                raise StoreError(f"the TTP store {self._where} is closed; open a new PostgresStore")
            pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                self._open_count += 1
        if pooled is not None:
            conn = pooled
        else:
            try:
                conn = self._connect()
            except BaseException:
                with self._cond:
                    self._open_count -= 1
                    self._cond.notify()
                raise
        try:
            yield conn
        finally:
            with self._cond:
                if conn.closed or conn.broken or self._closed:
                    self._open_count -= 1
                    conn.close()
                else:
                    self._idle.append(conn)
                self._cond.notify()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction, committed when the block ends, rolled back on any error."""
        with self._connection() as conn, self._errors(), conn.transaction():
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._pg.Error as exc:
            raise StoreError(f"TTP database {self._where}: {str(exc).strip()}") from exc

    def _create_schema(self) -> None:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            rows = conn.execute(
                "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
                (list(_rows.TTP_TABLES),),
            ).fetchall()
            present = {str(r[0]) for r in rows}
            if "ttp_meta" in present:
                found = dict(conn.execute("SELECT key, value FROM ttp_meta").fetchall())
                problem = _rows.schema_problem(found, f"database {self._where}")
                if problem:
                    raise StoreSchemaError(problem)
                return
            if present:
                raise StoreSchemaError(
                    f"database {self._where} has tables {sorted(present)} but no ttp_meta, so they are not a "
                    "safework TTP store's; use another database, or drop those tables if they are leftovers"
                )
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- vendors ----------------------------------------------------------------------------------------

    def add_vendor(self, record: VendorRecord) -> None:
        if not isinstance(record, VendorRecord):
            raise StoreInputError(f"add_vendor takes a VendorRecord, got {type(record).__name__}")
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO ttp_vendors ({_rows.VENDOR_COLUMNS}) VALUES ({_marks(9)}) "
                "ON CONFLICT (vendor_id) DO UPDATE SET display_name = excluded.display_name, "
                "public_keys = excluded.public_keys, model_ids = excluded.model_ids, "
                "scheme = excluded.scheme, scheme_version = excluded.scheme_version, "
                "endpoint = excluded.endpoint, cert_fingerprint = excluded.cert_fingerprint",
                _rows.vendor_to_row(record),
            )

    def get_vendor(self, vendor_id: str) -> VendorRecord | None:
        check_vendor_id(vendor_id)
        rows = self._fetch(f"SELECT {_rows.VENDOR_COLUMNS} FROM ttp_vendors WHERE vendor_id = %s", vendor_id)
        return _rows.vendor_from_row(rows[0]) if rows else None

    def list_vendors(self) -> list[VendorRecord]:
        rows = self._fetch(f"SELECT {_rows.VENDOR_COLUMNS} FROM ttp_vendors ORDER BY vendor_id")
        return [_rows.vendor_from_row(r) for r in rows]

    def _fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._connection() as conn, self._errors():  # autocommit: one statement, no BEGIN/COMMIT
            return conn.execute(sql, params).fetchall()

    # -- grants -----------------------------------------------------------------------------------------

    def add_grant(self, record: GrantRecord) -> None:
        if not isinstance(record, GrantRecord):
            raise StoreInputError(f"add_grant takes a GrantRecord, got {type(record).__name__}")
        row = _rows.grant_to_row(record)
        errors = self._pg.errors
        try:
            with self._tx() as conn:
                conn.execute(
                    f"INSERT INTO ttp_grants ({_rows.GRANT_COLUMNS}) VALUES ({_marks(9)})",
                    row,
                )
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, errors.UniqueViolation):
                seed_clash = cause.diag.constraint_name == "ttp_grants_seed_key"
                other = (
                    self._fetch("SELECT grant_id FROM ttp_grants WHERE seed = %s", row[1])
                    if seed_clash
                    else []
                )
                raise _rows.grant_conflict(record, seed_clash, other[0][0] if other else "?") from None
            if isinstance(cause, errors.ForeignKeyViolation):
                raise _rows.unknown_vendor(record) from None
            raise

    def get_grant(self, grant_id: str) -> GrantRecord | None:
        check_text("grant_id", grant_id, max_len=128)
        rows = self._fetch(f"SELECT {_rows.GRANT_COLUMNS} FROM ttp_grants WHERE grant_id = %s", grant_id)
        return _rows.grant_from_row(rows[0]) if rows else None

    def grant_for_seed(self, seed: int) -> GrantRecord | None:
        value = _rows.seed_to_sql(check_seed(seed))
        rows = self._fetch(f"SELECT {_rows.GRANT_COLUMNS} FROM ttp_grants WHERE seed = %s", value)
        return _rows.grant_from_row(rows[0]) if rows else None

    def grants_for_vendor(self, vendor_id: str, *, since: float | None = None) -> list[GrantRecord]:
        check_vendor_id(vendor_id)
        floor = -1.0 if since is None else check_time("since", since)
        rows = self._fetch(
            f"SELECT {_rows.GRANT_COLUMNS} FROM ttp_grants WHERE vendor_id = %s AND issued_at >= %s "
            "ORDER BY issued_at, grant_id",
            vendor_id,
            floor,
        )
        return [_rows.grant_from_row(r) for r in rows]

    def count_grants(self) -> int:
        return int(self._fetch("SELECT count(*) FROM ttp_grants")[0][0])

    # -- replay guard -----------------------------------------------------------------------------------

    def remember_nonce(self, client_id: str, nonce: bytes, timestamp: float) -> bool:
        args = check_nonce(client_id, nonce, timestamp)
        with self._tx() as conn:
            cur = conn.execute("INSERT INTO ttp_nonces VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", args)
            return cur.rowcount == 1

    def purge_nonces(self, older_than: float) -> int:
        horizon = check_time("older_than", older_than)
        with self._tx() as conn:
            return conn.execute("DELETE FROM ttp_nonces WHERE seen_at < %s", (horizon,)).rowcount

    # -- audit log --------------------------------------------------------------------------------------

    def append_audit(
        self, kind: str, payload: dict[str, Any], *, timestamp: float | None = None
    ) -> AuditEntry:
        with self._tx() as conn:
            # The row lock queues every appender, in every instance, until this transaction ends.
            head = conn.execute(
                "SELECT length, head_hash FROM ttp_audit_head WHERE id = 1 FOR UPDATE"
            ).fetchone()
            if head is None:
                raise StoreError(f"database {self._where} lost its audit chain head row; it is damaged")
            length, prev = head
            entry, text = make_entry(int(length), str(prev), kind, payload, timestamp, time.time())
            conn.execute(
                f"INSERT INTO ttp_audit ({_rows.AUDIT_COLUMNS}) VALUES ({_marks(6)})",
                (entry.index, entry.timestamp, entry.kind, text, entry.prev_hash, entry.entry_hash),
            )
            conn.execute(
                "UPDATE ttp_audit_head SET length = %s, head_hash = %s WHERE id = 1",
                (entry.index + 1, entry.entry_hash),
            )
        return entry

    def read_audit(self, start: int = 0, limit: int = 100) -> list[AuditEntry]:
        start, limit = check_page(start, limit)
        rows = self._fetch(
            f"SELECT {_rows.AUDIT_COLUMNS} FROM ttp_audit WHERE idx >= %s ORDER BY idx LIMIT %s", start, limit
        )
        return [_rows.audit_from_row(r) for r in rows]

    def audit_length(self) -> int:
        return int(self._fetch("SELECT length FROM ttp_audit_head WHERE id = 1")[0][0])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open_count -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self._where})"


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _describe(pg: Any, dsn: str) -> str:
    """host/port/dbname of a DSN for messages, never its password."""
    try:
        info = pg.conninfo.conninfo_to_dict(dsn)
    except pg.Error:
        raise StoreInputError(
            "dsn is not a valid libpq connection string or URI; e.g. 'dbname=ttp'"
        ) from None
    parts = [f"{k}={info[k]}" for k in ("host", "port", "dbname", "user") if info.get(k)]
    return "'" + " ".join(parts or ["(libpq defaults)"]) + "'"
