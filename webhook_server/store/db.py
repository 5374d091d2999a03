"""Engine set-up (SQLite WAL or PostgreSQL), transactions and migrations."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from webhook_server.contract import MIGRATION_LOCK

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# conn.info key: the psycopg pipeline of a batched transaction (``Store.tx(batched=True)``)
PIPELINE = "podium_pipeline"


class StoreUnavailable(Exception):
    """The store cannot take a write right now (HTTP 503: the sender should retry)."""


class _ConnectionLost(Exception):
    """``call_alone``'s connection was found lost: the call is made again on a new one."""


def normalise_url(url: str) -> str:
    """``postgresql://`` -> ``postgresql+psycopg://`` (psycopg 3 is the driver we ship)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    _pipeline_sync(engine)
    return engine


def _pipeline_sync(engine: Engine) -> None:
    """A statement run through SQLAlchemy in a batched transaction gets its answer at once:
    SQLAlchemy reads the cursor's description right after the execute, which the pipeline
    only fills in at its next sync."""

    @event.listens_for(engine, "after_cursor_execute")
    def _sync(conn, _cursor, _statement, _params, _context, _many):
        pipeline = conn.info.get(PIPELINE)
        if pipeline is not None:
            pipeline.sync()


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of deadlocking."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the lock up front (no deadlocking upgrade); readers do not block them.
        write = conn.get_execution_options().get("podium_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class _SqliteWriteLock:
    """Serialise writers before SQLite sees them: a thread lock within the process and an
    flock on ``<db>.lock`` across processes. Both wake the next writer the moment the lock
    is released, where SQLite's busy handler would sleep-poll (up to 100 ms a turn)."""

    def __init__(self, db_path: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = f"{db_path}.lock" if db_path not in (None, "", ":memory:") else None
        self._fd: int | None = None

    @contextmanager
    def held(self, timeout_s: float = 30) -> Iterator[None]:
        # Not re-entrant on purpose: a nested write transaction in one thread would wait on
        # itself; the timeout turns that bug (or a stuck writer) into an error, not a hang.
        if not self._thread_lock.acquire(timeout=timeout_s):
            raise StoreUnavailable(f"no write slot on the SQLite store within {timeout_s} s")
        try:
            if self._path is None:
                yield
                return
            if self._fd is None or self._fd_pid != os.getpid():  # reopen after fork
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                self._fd_pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_AFTER_COMMIT = "podium.after_commit"


class Store:
    """Owns the engine. Repository functions take a ``Connection`` from ``tx()``."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(url)
        self._write_lock = (_SqliteWriteLock(self.engine.url.database)
                            if self.dialect == "sqlite" else None)
        # ``call_alone``'s connections (PostgreSQL only): in autocommit, so never left in a
        # transaction to roll back when returned, and never pinged
        self._calls = (create_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=5,
                                     max_overflow=10, pool_reset_on_return=None)
                       if self.dialect == "postgresql" else None)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert(self, table):
        """Dialect insert with ``on_conflict_do_nothing`` available."""
        return (postgresql.insert(table) if self.dialect == "postgresql"
                else sqlite.insert(table))

    @contextmanager
    def tx(self, *, batched: bool = False) -> Iterator[Connection]:
        """A write transaction: committed on exit, rolled back on an exception.

        ``batched`` (the intake's hot path, PostgreSQL only): statements go through a
        psycopg pipeline, so the ones whose answers are not read (``fastsql.send``) travel
        with the next one that is, BEGIN with the first and COMMIT with the last: fewer
        network round trips, the same statements in the same order. Nothing changes on
        SQLite (in-process)."""
        with self._writer(batched) as conn:
            yield conn

    def call_alone(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
        """One statement as its own transaction on the bare driver (PostgreSQL only: SQLite
        writers go through ``tx``): in autocommit, the statement, its commit and its answer
        are one network round trip (``tx`` adds BEGIN, COMMIT and the pool's pre-ping); the
        rows come back once committed. The statement must be safe to run twice: a
        connection found lost (the server restarted, and with it every idle connection of
        the pool) is dropped with its idle siblings and the call made once more on a new
        one, since this pool does not ping a connection before lending it (a round trip
        that costs as much CPU as the call). StoreUnavailable when the database cannot
        take it."""
        if self._calls is None:
            raise TypeError("call_alone is for a PostgreSQL store")
        try:
            return self._call_once(sql, params, last=False)
        except _ConnectionLost:
            self._calls.dispose()  # its idle connections were lost with this one
            return self._call_once(sql, params, last=True)

    def _call_once(self, sql: str, params: Sequence[Any] | Mapping[str, Any], *,
                   last: bool) -> list[tuple]:
        import psycopg

        lent = self._calls.raw_connection()
        raw = lent.driver_connection
        try:
            with raw.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.OperationalError as exc:
            if raw.broken:
                lent.invalidate()
                if not last:
                    raise _ConnectionLost from exc
            raise StoreUnavailable(str(exc)) from exc
        finally:
            lent.close()

    @staticmethod
    def after_commit(conn: Connection, key: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` once this write transaction has committed (never when it rolls
        back), after the store's write lock is released; one hook per ``key``. A hook is a
        best-effort signal (e.g. waking a worker): what it raises is logged, not raised."""
        conn.info.setdefault(_AFTER_COMMIT, {})[key] = hook

    @contextmanager
    def _writer(self, batched: bool = False) -> Iterator[Connection]:
        lock = self._write_lock.held() if self._write_lock else nullcontext()
        with lock, self.engine.connect() as conn:
            conn.execution_options(podium_write=True)
            try:
                with _pipelined(conn, batched), conn.begin():
                    yield conn
            finally:  # conn.info outlives the checkout: never leave hooks for the next one
                hooks = conn.info.pop(_AFTER_COMMIT, {})
        for key, hook in hooks.items():
            try:
                hook()
            except Exception:
                log.warning("after-commit hook %s failed", key, exc_info=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction that never waits for writers (WAL snapshot on SQLite)."""
        with self.engine.connect() as conn:
            conn.execution_options(podium_write=False)
            with conn.begin():
                yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent). On PostgreSQL one migrator
        at a time (a transaction advisory lock): processes starting together wait for the
        first, then find the schema at head (SQLite's writers are already serialised)."""
        from alembic import command

        with self._writer() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                             {"key": MIGRATION_LOCK})
            cfg = _alembic_config(conn)
            command.upgrade(cfg, "head")

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(MIGRATIONS)).get_current_head()

    def knows(self, revision: str | None) -> bool:
        """Whether ``revision`` is one of this code's migrations (a store migrated by a newer
        release is at one it does not know)."""
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        if revision is None:
            return True
        try:
            return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
        except CommandError:
            return False

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self._calls is not None:
            self._calls.dispose()


@contextmanager
def _pipelined(conn: Connection, batched: bool) -> Iterator[None]:
    """A psycopg pipeline around the transaction when ``batched`` on PostgreSQL; leaving
    it waits for every answer (an error raises before ``tx`` returns)."""
    if not batched or conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline() as pipeline:
        conn.info[PIPELINE] = pipeline
        try:
            yield
        finally:
            conn.info.pop(PIPELINE, None)


def _alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg
