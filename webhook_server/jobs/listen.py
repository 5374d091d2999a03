"""Wake idle workers on any machine with PostgreSQL's LISTEN/NOTIFY (the doorbell of
``doorbell.py`` reaches one machine only; this one is used instead on PostgreSQL).

The enqueueing transaction says ``NOTIFY podium_jobs`` (``notify``): PostgreSQL delivers it
when that transaction commits and drops it when it rolls back, to every session listening
on the channel. Each worker process keeps one listening connection (``PgWakeup``), read by
one thread; worker threads wait on it with their poll interval as the timeout. It is a hint,
never a promise: the poll stays the fallback. A lost connection is reopened (a second
later), and every reconnection wakes the waiters once, since a notification sent while
nobody listened is lost.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Connection

log = logging.getLogger(__name__)
CHANNEL = "podium_jobs"
RECONNECT_S = 1.0
READ_S = 1.0  # how often the reading thread looks at ``close``


def notify(conn: Connection) -> None:
    """Wake listening workers once the caller's transaction commits (never if it rolls
    back). Several in one transaction are folded into one by PostgreSQL. The payload is the
    store's schema: channels are per database, and two Podiums (or test runs) in two schemas
    of one database must not wake each other."""
    conn.connection.driver_connection.execute(
        f"SELECT pg_notify('{CHANNEL}', current_schema())")


class PgWakeup:
    """``wait(timeout)`` returns True as soon as a job was committed anywhere (False at the
    timeout); the same interface as ``Doorbell``, whose ``ring`` it makes a no-op."""

    def __init__(self, connect_args: dict[str, Any]) -> None:
        self._connect_args = connect_args  # psycopg.connect keyword arguments
        self._cond = threading.Condition()
        self._rung = 0  # notifications (and reconnections) seen so far
        self._seen = threading.local()  # per waiting thread: the count it last saw
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # listening right now (tests wait on it)
        self.backend_pid: int | None = None  # the listening session's, on the server

    @classmethod
    def for_engine(cls, engine) -> PgWakeup:
        """Connect like ``engine`` does (host, database, user, options), without its pool."""
        _, kwargs = engine.dialect.create_connect_args(engine.url)
        return cls({k: v for k, v in kwargs.items() if k != "context"})

    def ring(self) -> int:
        return 0  # the enqueueing transaction notifies (``notify``)

    def wait(self, timeout: float) -> bool:
        """Sleep until a notification this thread has not seen yet, or ``timeout``. One that
        came while the thread was busy wakes its next wait at once: none is lost."""
        self._start()
        with self._cond:
            seen = getattr(self._seen, "count", None)
            if seen is None:  # a thread's first wait: what came before is not for it
                seen = self._rung
            self._cond.wait_for(lambda: self._rung != seen or self._closed.is_set(), timeout)
            self._seen.count = self._rung
            return self._rung != seen

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(READ_S + 5)

    def _start(self) -> None:
        with self._cond:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._listen, daemon=True,
                                                name="pg-wakeup")
                self._thread.start()

    def _bump(self) -> None:
        with self._cond:
            self._rung += 1
            self._cond.notify_all()

    def _listen(self) -> None:
        import psycopg

        failures = 0
        while not self._closed.is_set():
            try:
                with psycopg.connect(**self._connect_args, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    schema = conn.execute("SELECT current_schema()").fetchone()[0]
                    self.backend_pid = conn.info.backend_pid
                    self._bump()  # whatever was sent while nobody listened: look now
                    self.connected.set()
                    failures = 0
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=READ_S, stop_after=1):
                            if note.payload == schema:  # this store's jobs only
                                self._bump()
            except Exception as exc:
                self.connected.clear()
                failures += 1
                if failures == 1:  # no connection string in the log: it may hold a password
                    log.warning("job wake-up listener lost (%s); workers poll meanwhile",
                                type(exc).__name__)
                self._closed.wait(RECONNECT_S)
        self.connected.clear()
