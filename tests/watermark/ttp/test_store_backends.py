"""What only one backend can get wrong: SQLite's durability settings and foreign files, PostgreSQL's
optional driver and shared-database checks."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safework.watermark.ttp.sqlite_store import SQLiteStore
from safework.watermark.ttp.store import StoreError, StoreSchemaError

if TYPE_CHECKING:
    from conftest import PostgresServer


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a" / "b" / "ttp.db") as store:
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_sqlite_refuses_a_file_that_is_not_a_database_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreSchemaError, match="not a safework TTP database"):
        SQLiteStore(path)
    assert path.read_bytes() == b"these are my notes, not a database" * 100


def test_sqlite_refuses_another_applications_database_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(
        StoreSchemaError, match=r"SQLite database of something else \(tables: \['invoices'\]\)"
    ):
        SQLiteStore(path)
    assert path.read_bytes() == before


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "ttp.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ttp_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreSchemaError, match=r"schema version 99, newer .* upgrade safework-watermark"):
        SQLiteStore(path)


def test_sqlite_reports_an_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open TTP database"):
        SQLiteStore(tmp_path / "file" / "ttp.db")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open TTP database"):
        SQLiteStore(tmp_path / "dir.db")


def test_postgres_store_without_psycopg_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from safework.watermark.ttp.postgres_store import PostgresStore

    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` raise ImportError
    with pytest.raises(StoreError, match=r"safework-watermark\[postgres\]"):
        PostgresStore("dbname=ttp")


def test_postgres_unreachable_server_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from safework.watermark.ttp.postgres_store import PostgresStore

    with pytest.raises(StoreError, match="cannot connect to the TTP database") as info:
        PostgresStore(f"host={tmp_path} port=1 dbname=ttp user=ttp password=hunter2", connect_timeout=2)
    assert "hunter2" not in str(info.value)


def test_postgres_refuses_foreign_tables_and_newer_schemas(postgres_server: PostgresServer) -> None:
    import psycopg

    from safework.watermark.ttp.postgres_store import PostgresStore

    dsn = postgres_server.fresh_dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE ttp_audit (whatever INTEGER)")
    with pytest.raises(StoreSchemaError, match=r"has tables \['ttp_audit'\] but no ttp_meta"):
        PostgresStore(dsn)

    dsn = postgres_server.fresh_dsn()
    PostgresStore(dsn).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE ttp_meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreSchemaError, match="schema version 2, newer"):
        PostgresStore(dsn)
