"""The zygote: imports once, then forks a sandbox per model inside bubblewrap.

``python -I -S -B sandbox_zygote.py FD SITE_PACKAGES...``, run by ``zygote.py`` as the first
process (PID 1) of one bubblewrap sandbox (every namespace unshared, uid 65534, no
capabilities, read-only files, no network). It does ``sandbox_child``'s warm-up (the imports
of MLflow, scikit-learn, LightGBM and skops: seconds of CPU) once, runs no model code ever,
and answers Podium on the socket ``FD`` (``SOCK_SEQPACKET``, one JSON message each):

    {"op": "spawn", "inputs": DIR, "hide": [DIR...], "tmp_bytes": N, "rlimits": {...}}
        + four file descriptors (requests, replies, stderr, status)
                                                     -> {"ok": true, "pid": N}
    {"op": "kill", "pid": N}                         -> {"ok": true, "killed": bool}

A spawn forks a child that makes a sandbox of its own *inside* this one, the isolation the
model would get from a bubblewrap of its own: new user, mount, PID, network, IPC and UTS
namespaces; a private ``/tmp`` and ``/dev/shm``; ``/dev`` (one for every sandbox of this
zygote) read-only; ``/proc`` (this sandbox's processes: the zygote and the other models)
covered; the directories in ``hide`` (where every sandbox's
input directory lives) covered but for its own ``inputs``, read-only; its init (PID 1,
non-dumpable, no model code) forks the model's process (PID 2), which drops every
capability, sets its limits, and serves ``sandbox_child``'s protocol on the pipes. The
init writes the model process's wait status (4 bytes) on the status pipe when it ends. A
model process cannot signal or trace its init, see another model or the zygote, nor undo a
mount (no capability left); if its sandbox's first process is killed, the init dies with it
and so does every process of the model (the PID namespace ends). If the zygote ends, the
whole bubblewrap sandbox ends.
"""

from __future__ import annotations

import array
import ctypes
import gc
import json
import os
import signal
import socket
import struct
import sys
import time

NEWNS, NEWUTS, NEWIPC = 0x00020000, 0x04000000, 0x08000000
NEWUSER, NEWPID, NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
CAPABILITY_VERSION_3 = 0x20080522
FDS = 4  # requests, replies, stderr, status
STATUS = struct.Struct(">i")

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {target}")


def _tmpfs(target: str, size: int, mode: str = "1777", flags: int = 0) -> None:
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | flags, f"size={size},mode={mode}")


# --- one model's sandbox, inside this one ---------------------------------------------------

def _enter_namespaces() -> None:
    """The sandbox's first process: namespaces of its own, mapped to the same user."""
    uid, gid = os.geteuid(), os.getegid()
    _check(_libc.unshare(NEWUSER | NEWNS | NEWPID | NEWNET | NEWIPC | NEWUTS), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _mounts_under(top: str, hide: list[str]) -> list[str]:
    """The outer sandbox's mounts below ``top`` (the Python installation may live under the
    host's /tmp), outermost only, none in a hidden directory: read before /proc is covered."""
    found: list[str] = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if (point.startswith(top + "/")
                    and not any(point == h or point.startswith(h + "/") for h in hide)
                    and not any(point.startswith(f + "/") for f in found)):
                found.append(point)
    return found


def _make_filesystem(inputs: str, hide: list[str], tmp_bytes: int) -> None:
    """The init: a private /tmp and /dev/shm, /dev read-only, /proc covered, every
    sandbox's directory covered but this one's ``inputs`` (read-only, at the same path);
    what the outer sandbox bound below /tmp (the installation) stays, read-only."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    below_tmp = _mounts_under("/tmp", hide)  # noqa: S108 (the outer sandbox's)
    staging = "/dev/shm"  # noqa: S108 (this namespace's own, replaced below)
    keep = [(inputs, f"{staging}/inputs")] + [(path, f"{staging}/keep-{i}")
                                              for i, path in enumerate(below_tmp)]
    _tmpfs(staging, 4096, mode="700")
    for path, stage in keep:
        os.mkdir(stage)
        _mount(path, stage, None, MS_BIND | MS_REC)
    _tmpfs("/tmp", tmp_bytes)  # noqa: S108 (the sandbox's own)
    covered = []
    for directory in hide:  # those not already under the new /tmp
        if os.path.isdir(directory):
            _tmpfs(directory, 4096, mode="755")
            covered.append(directory)
    for path, stage in keep:
        os.makedirs(path, exist_ok=True)
        _mount(stage, path, None, MS_BIND | MS_REC)
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _check(_libc.umount2(b"/dev/shm", MNT_DETACH), "umount /dev/shm")
    _tmpfs("/dev/shm", tmp_bytes)  # noqa: S108
    for directory in covered:
        _mount(None, directory, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
               "size=4096,mode=755")
    for directory in ("/dev/pts", "/dev/mqueue"):
        if os.path.isdir(directory):
            _tmpfs(directory, 4096, mode="755", flags=MS_RDONLY)
    # bubblewrap's /dev is one writable tmpfs for every sandbox of this zygote: read-only
    _mount(None, "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _tmpfs("/proc", 4096, mode="555", flags=MS_RDONLY | MS_NOEXEC)


def _drop_capabilities() -> None:
    """The model's process: no capability in its namespace, and none to be had again."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapHeader(CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _set_limits(rlimits: dict) -> None:
    import resource

    for name, (soft, hard) in rlimits.items():
        resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (soft, hard))


def _model_process(fds: list[int], rlimits: dict, started: float) -> int:
    """PID 2: the model's process. ``fds``: requests, replies, stderr."""
    import sandbox_child

    requests, replies, stderr = fds
    try:
        _drop_capabilities()
        _set_limits(rlimits)
        os.dup2(stderr, 2)
        os.dup2(2, 1)  # stray prints of the model go to stderr
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = sorted({0, 1, 2, requests, replies})
        for low, high in zip(keep, [*keep[1:], 1 << 16], strict=True):
            os.closerange(low + 1, high)
        os.chdir("/tmp")  # noqa: S108
    except BaseException as exc:
        sandbox_child.write_message(replies, {"ready": False, **sandbox_child._failure(exc)})
        return 1
    sandbox_child.write_message(replies, {"ready": True, "forked": True,
                                          "warm_s": round(time.perf_counter() - started, 3)})
    return sandbox_child.serve(requests, replies)


def _default_signals() -> None:
    """No handler of the zygote's (Python's SIGINT: KeyboardInterrupt) in the init: a
    namespace's init gets, from inside it, only the signals it handles, so the model's
    process can then signal it nothing."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) not in (signal.SIG_IGN, signal.SIG_DFL):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # real-time signals Python does not manage
            continue


def _init(fds: list[int], request: dict, started: float) -> int:
    """PID 1 of the sandbox's namespace: makes its files, forks the model's process, waits
    for it (reaping whatever else ends), writes its wait status, ends the namespace."""
    requests, replies, stderr, status = fds
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _default_signals()
    try:
        _make_filesystem(request["inputs"], request.get("hide", []), request["tmp_bytes"])
        os.setsid()
    except BaseException as exc:
        import sandbox_child

        sandbox_child.write_message(replies, {"ready": False, **sandbox_child._failure(exc)})
        return 1
    model = os.fork()
    if model == 0:
        os.close(status)
        os._exit(_model_process([requests, replies, stderr], request["rlimits"], started))
    for fd in (requests, replies, stderr):
        os.close(fd)
    while True:
        pid, wait_status = os.waitpid(-1, 0)
        if pid == model:
            os.write(status, STATUS.pack(wait_status))
            return 0


def _sandbox(fds: list[int], request: dict, started: float) -> int:
    """The sandbox's first process (in this zygote's namespaces): new namespaces, then
    their init."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        _enter_namespaces()
    except BaseException as exc:
        import sandbox_child

        sandbox_child.write_message(fds[1], {"ready": False, **sandbox_child._failure(exc)})
        return 1
    init = os.fork()
    if init == 0:
        os._exit(_init(fds, request, started))
    for fd in fds:
        os.close(fd)
    while True:
        pid, _ = os.waitpid(-1, 0)
        if pid == init:
            return 0


# --- the zygote -----------------------------------------------------------------------------

def _receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(FDS * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


def _reap(children: set[int]) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)


def _spawn(sock: socket.socket, request: dict, fds: list[int], children: set[int]) -> dict:
    if len(fds) != FDS:
        for fd in fds:
            os.close(fd)
        return {"ok": False, "error": f"spawn needs {FDS} file descriptors, got {len(fds)}"}
    started = time.perf_counter()
    try:
        pid = os.fork()
    except OSError as exc:  # out of processes or memory: this sandbox's failure, not ours
        for fd in fds:
            os.close(fd)
        return {"ok": False, "error": f"fork: {exc.strerror}"}
    if pid == 0:
        try:
            sock.close()
            code = _sandbox(fds, request, started)
        except BaseException:  # never back into the zygote's loop
            code = 1
        os._exit(code)
    for fd in fds:
        os.close(fd)
    children.add(pid)
    return {"ok": True, "pid": pid}


def serve(sock: socket.socket) -> int:
    children: set[int] = set()
    while True:
        message, fds = _receive(sock)
        _reap(children)
        if message is None:  # Podium is gone: so is every sandbox (this PID namespace)
            return 0
        op = message.get("op")
        if op == "spawn":
            reply = _spawn(sock, message, fds, children)
        elif op == "kill":
            for fd in fds:
                os.close(fd)
            pid = message.get("pid")
            killed = pid in children
            if killed:
                os.kill(pid, signal.SIGKILL)
            reply = {"ok": True, "killed": killed}
        else:
            for fd in fds:
                os.close(fd)
            reply = {"ok": False, "error": f"unknown op {op!r}"}
        sock.send(json.dumps(reply).encode())


def main(argv: list[str]) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    for path in argv[2:]:  # the installation's site-packages, without running .pth files
        sys.path.append(path)
    import sandbox_child

    sock = socket.socket(fileno=int(argv[1]))
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    started = time.perf_counter()
    try:
        sandbox_child._warm_up()
    except BaseException as exc:
        sock.send(json.dumps({"ready": False, **sandbox_child._failure(exc)}).encode())
        return 1
    # what the imports made is never collected in a fork: its collector does not walk (and
    # so copy, page by page) the zygote's objects
    gc.collect()
    gc.freeze()
    sock.send(json.dumps({"ready": True,
                          "warm_s": round(time.perf_counter() - started, 3)}).encode())
    return serve(sock)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
