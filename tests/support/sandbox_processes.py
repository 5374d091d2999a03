"""The processes of a sandbox as this machine names them (``/proc``), for the sandbox tests:
a sandbox started one by one is a child of this process; one forked by a zygote is a child
of the zygote, and ``sandbox.proc.pid`` is its pid in the zygote's PID namespace."""

from __future__ import annotations

import os


def processes() -> dict[int, dict]:
    """pid -> {ppid, state, nspid, vmpeak_kb} of every process now."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        out[int(name)] = {"ppid": int(fields["PPid"]), "state": fields["State"].split()[0],
                          "nspid": [int(p) for p in fields.get("NSpid", name).split()],
                          "vmpeak_kb": int(fields.get("VmPeak", "0 kB").split()[0])}
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    table = processes()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in table and p not in found:
            found.append(p)
            todo += [c for c, info in table.items() if info["ppid"] == p]
    return found


def gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, not yet reaped by init)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def sandbox_pid(sandbox) -> int:
    """The sandbox's first process as this machine names it: its ``Popen``'s pid, or for a
    sandbox forked by a zygote the zygote's child whose pid there is ``sandbox.proc.pid``."""
    if not getattr(sandbox, "forked", False):
        return sandbox.proc.pid
    table = processes()
    for pid in descendants(sandbox.proc.zygote.host_pid()):
        nspid = table.get(pid, {}).get("nspid", [])
        if len(nspid) == 2 and nspid[1] == sandbox.proc.pid:
            return pid
    raise AssertionError(f"no process {sandbox.proc.pid} under the zygote")


def host_pid(sandbox, inner: int) -> int:
    """The pid, as this machine names it, of the sandbox's process ``inner`` (its pid as
    the model sees it: in the sandbox's own PID namespace, or the same)."""
    table = processes()
    nested = sandbox.isolation.level == "bwrap"
    for pid in descendants(sandbox_pid(sandbox)):
        nspid = table.get(pid, {}).get("nspid", [])
        if nspid and nspid[-1] == inner and (len(nspid) > 1 or not nested):
            return pid
    raise AssertionError(f"no process {inner} in the sandbox {sandbox.proc.pid}")
