"""Seeing a server drain from outside: a request left half-sent on a raw socket, and whether
a process still holds its listening socket (Linux ``/proc``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path


def listener_inode(port: int) -> str | None:
    """The inode of the socket listening on 127.0.0.1:``port`` (``/proc/net/tcp``)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
            return fields[9]
    return None


def holds_socket(pid: int, inode: str) -> bool:
    """Whether process ``pid`` still has the socket ``inode`` open."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return False
    for name in names:
        try:
            if os.readlink(f"{fd_dir}/{name}") == f"socket:[{inode}]":
                return True
        except FileNotFoundError:
            continue
    return False


def half_sent_post(port: int, path: str, body: bytes) -> tuple[socket.socket, bytes]:
    """A POST whose headers and first byte are sent; the rest is returned to send later."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sock.sendall(head + body[:1])
    return sock, body[1:]


def finish(sock: socket.socket, rest: bytes) -> str:
    """Send the rest of the body and read the whole answer (the server closes)."""
    sock.sendall(rest)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks).decode("latin-1")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of a process started in its own session (a test that failed
    before it stopped it), and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
