"""Store factories for the one conformance suite: SQLite always; PostgreSQL on a throw-away server started
for the session from the local server binaries (skipped, with the install command, when they are absent)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from safework.watermark.ttp.sqlite_store import SQLiteStore
from safework.watermark.ttp.store import TTPStore

INSTALL_HINT = "install the server binaries with `apt-get install postgresql` (Debian/Ubuntu)"


@dataclass
class StoreKit:
    """One backend under test: ``open()`` opens (or reopens) the same database, ``sql()`` changes it behind
    the store's back, as an attacker with database access would."""

    name: str
    opener: Callable[[], TTPStore]
    sql: Callable[[str], None]
    opened: list[TTPStore] = field(default_factory=list)

    def open(self) -> TTPStore:
        store = self.opener()
        self.opened.append(store)
        return store


# -- PostgreSQL server -------------------------------------------------------------------------------------


def _postgres_bin_dir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres: from PATH, else the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)]
    for d in candidates:
        if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    socket_dir: str
    port: int
    counter: Iterator[int] = field(default_factory=itertools.count)

    def dsn(self, schema: str | None = None) -> str:
        base = f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"
        return base if schema is None else f"{base} options='-c search_path={schema}'"

    def fresh_dsn(self) -> str:
        """A DSN whose tables land in a new, empty schema: a fresh store per test without the cost of a
        CREATE DATABASE (a full template copy each)."""
        import psycopg

        name = f"ttp_test_{next(self.counter)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server in a temp dir, listening on a unix socket only; stopped at teardown.

    PostgreSQL refuses to run as root, so under root initdb and pg_ctl run as an unprivileged user
    (``postgres`` if it exists, else ``nobody``) that owns the temp dir, made under /tmp so that user can
    reach it.
    """
    pytest.importorskip("psycopg", reason="psycopg 3 is missing: pip install 'safework-watermark[postgres]'")
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {INSTALL_HINT}")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    root = tempfile.mkdtemp(prefix="safework-pg-", dir="/tmp" if run_as else None)
    if run_as:
        os.chown(root, run_as["user"], run_as["group"])
    data, log, port = os.path.join(root, "data"), os.path.join(root, "server.log"), _free_port()
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "HOME": root}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / args[0]), *args[1:]], cwd=root, env=env, capture_output=True, text=True, **run_as
        )

    init = run(
        "initdb", "-D", data, "--auth=trust", "-U", "postgres", "--no-locale", "-E", "UTF8", "--no-sync"
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    options = f"-k {root} -p {port} -c listen_addresses=''"
    start = run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
    if start.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-2000:] if os.path.exists(log) else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed ({start.returncode}):\n{start.stderr}\n{tail}")
    try:
        yield PostgresServer(root, port)
    finally:
        run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")  # thrown away: skip the checkpoint
        shutil.rmtree(root, ignore_errors=True)


# -- the kits ----------------------------------------------------------------------------------------------


def _sqlite_kit(path: Path) -> StoreKit:
    def sql(statement: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(statement)
        finally:
            conn.close()

    return StoreKit("sqlite", lambda: SQLiteStore(path), sql)


def _postgres_kit(dsn: str) -> StoreKit:
    import psycopg

    from safework.watermark.ttp.postgres_store import PostgresStore

    def sql(statement: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement)

    return StoreKit("postgres", lambda: PostgresStore(dsn), sql)


@pytest.fixture(params=["sqlite", "postgres"])
def store_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreKit]:
    """A fresh, empty store location per test (SQLite file, PostgreSQL schema), on every backend."""
    if request.param == "sqlite":
        kit = _sqlite_kit(tmp_path / "ttp.db")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        kit = _postgres_kit(server.fresh_dsn())
    yield kit
    for store in kit.opened:
        store.close()


@pytest.fixture
def store(store_kit: StoreKit) -> TTPStore:
    return store_kit.open()
