"""Wake idle workers the moment a job is committed, instead of letting them sleep out their
poll interval.

Same machine, any process: every worker process that waits binds a Unix datagram socket in
a private directory named after the store (mode 0700, so only this user can ring), and
``ring`` sends one byte to each socket there, without blocking. It is a hint, never a
promise: a lost ring costs at most one poll interval (the poll stays as the fallback), a
ring with nothing to claim costs one empty claim. Used on SQLite (one machine); on
PostgreSQL workers LISTEN instead (``listen.py``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import select
import socket
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def directory_for(store_url: str) -> Path:
    """The doorbell directory of one store (the URL is hashed: no secret in a path)."""
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"podium-wake-{os.getuid()}-{digest}"


class Doorbell:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sock: socket.socket | None = None
        self._broken = False  # could not bind once: poll, and say so once
        self._lock = threading.Lock()

    # --- the side that enqueues ----------------------------------------------------------

    def ring(self) -> int:
        """Wake every waiting worker process; returns how many sockets were rung."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0  # nobody waits on this machine
        rung = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.setblocking(False)
            for name in names:
                path = self.directory / name
                try:
                    out.sendto(b"!", str(path))
                    rung += 1
                except BlockingIOError:
                    rung += 1  # its queue is full of rings already: it will wake
                except OSError as exc:
                    if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                        with contextlib.suppress(OSError):  # a worker that died
                            path.unlink()
        return rung

    # --- the side that waits -------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Sleep until rung or ``timeout`` seconds; True when rung. Worker threads of one
        process share its socket: a ring wakes those waiting, and they race to claim."""
        sock = self._socket()
        if sock is None:
            threading.Event().wait(timeout)
            return False
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while sock.recv(64):  # several rings wake once
                pass
        return True

    def _socket(self) -> socket.socket | None:
        with self._lock:
            if self._sock is None and not self._broken:
                try:
                    try:
                        self._sock, self._path = self._bind()
                    except FileNotFoundError:  # the last worker took the directory away
                        self._sock, self._path = self._bind()
                except OSError as exc:
                    log.warning("no doorbell (%s): workers poll", exc)
                    self._broken = True
                    return None
            return self._sock

    def _bind(self) -> tuple[socket.socket, Path]:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        if self.directory.stat().st_uid != os.getuid():
            raise PermissionError(f"{self.directory} belongs to another user")
        path = self.directory / f"{os.getpid()}-{id(self):x}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(path))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock, path

    def close(self) -> None:
        """Stop waiting; the last waiter of a store removes its directory (one per store URL
        would otherwise stay behind in the temp directory, empty)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                with contextlib.suppress(OSError):
                    self._path.unlink()
                with contextlib.suppress(OSError):  # not empty: others still wait
                    self.directory.rmdir()
                self._sock = None
