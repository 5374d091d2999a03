"""Hostile models against the inner wall of the zygote (``model_tests/sandbox/zygote.py``,
``sandbox_zygote.py``): sandboxes forked from one warm zygote share its bubblewrap sandbox,
so each fork's own namespaces are all that stands between one model and another, and
between a model and the zygote. What ``test_sandbox.py`` holds every level to (the outer
wall) runs there against forked sandboxes too (its ``zygote`` variant); here: what only the
zygote has to keep apart.

Each attack is a ``probe`` model (``tests/support/hostile_model.py``): Python source run in
``predict`` that reports what it got as JSON on stderr. Every test is written to fail were
the wall it names missing: the neighbour's files, sockets and processes exist (the
neighbour is alive while the intruder looks), and a positive control shows the attempt
itself works where it is allowed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid

import numpy as np
import pandas as pd
import pytest

from model_tests.sandbox import (
    Limits,
    ModelFailed,
    Sandbox,
    SandboxDied,
    SandboxedModel,
    SandboxPool,
    detect,
)
from model_tests.sandbox import pool as pool_module
from model_tests.sandbox.zygote import ZygoteUnavailable
from tests.support import hostile_model as hm
from tests.support.sandbox_processes import descendants, gone, host_pid, sandbox_pid
from tests.support.waiting import wait_for

LIMITS = Limits(memory_mb=2048, cpu_s=120, timeout_s=60, file_mb=64, start_timeout_s=90)
FRAME = pd.DataFrame({"tenure": np.arange(8, dtype=float),
                      "charges": 20.0 + np.arange(8, dtype=float)})
PIDS_SCANNED = 1 << 15
SHM_KEY = 0x504F44  # a System V shared memory key both would name

# --- the probes (run in predict: ``out`` is reported, ``os`` imported) ------------------

NEIGHBOUR = LIBC_SOURCE = r"""
import ctypes, errno as E
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def err(result):
    return "ok" if result >= 0 else E.errorcode.get(ctypes.get_errno(), ctypes.get_errno())
KEY_SPECS = {"session": -3, "user": -4}
def add_key(name, keyring):  # add_key(2), x86_64: 248
    return err(libc.syscall(ctypes.c_long(248), b"user", name.encode(), b"the neighbour's",
                            ctypes.c_size_t(15), ctypes.c_int(KEY_SPECS[keyring])))
def request_key(name):  # request_key(2), x86_64: 249, then keyctl(KEYCTL_SEARCH) (250)
    found = err(libc.syscall(ctypes.c_long(249), b"user", name.encode(), None,
                             ctypes.c_int(0)))
    return found if found == "ok" else err(libc.syscall(
        ctypes.c_long(250), ctypes.c_int(10), ctypes.c_int(KEY_SPECS["user"]), b"user",
        name.encode(), ctypes.c_int(0)))
IPC_CREAT = 0o1000
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
"""
NEIGHBOUR += r"""
out["keys"] = {k: add_key(TAG + "-" + k, k) for k in KEY_SPECS}
out["own_keys"] = {k: request_key(TAG + "-" + k) for k in KEY_SPECS}
out["shm"] = err(libc.shmget(SHM_KEY, 4096, IPC_CREAT | 0o666))
out["own_shm"] = err(libc.shmget(SHM_KEY, 4096, 0o666))
import socket
for path in (f"/tmp/{TAG}", f"/dev/shm/{TAG}", f"/dev/{TAG}"):
    try:
        with open(path, "w") as fh:
            fh.write("the neighbour's")
        out[path] = "written"
    except OSError as exc:
        out[path] = type(exc).__name__
tcp = socket.socket()
tcp.bind(("127.0.0.1", 0))
tcp.listen(8)
unix = socket.socket(socket.AF_UNIX)
unix.bind("\0podium-" + TAG)
unix.listen(8)
os.podium_kept = (tcp, unix)  # listening while the intruder looks
out["port"] = tcp.getsockname()[1]
try:  # its loopback is down (a new network namespace): 127.0.0.1 may not answer it either
    socket.create_connection(("127.0.0.1", out["port"]), timeout=1).close()
    out["own_tcp"] = "ok"
except OSError as exc:
    out["own_tcp"] = type(exc).__name__
knock = socket.socket(socket.AF_UNIX)
knock.connect("\0podium-" + TAG)
knock.close()
out["own_abstract_answers"] = True
"""

INTRUDER = LIBC_SOURCE + r"""
out["keys"] = {k: request_key(TAG + "-" + k) for k in KEY_SPECS}
out["shm"] = err(libc.shmget(SHM_KEY, 4096, 0o666))
import glob, socket
def attempt(fn):
    try:
        return ["ok", repr(fn())[:200]]
    except BaseException as exc:
        return ["refused", type(exc).__name__]
def read(path):
    with open(path) as fh:
        return fh.read()
out["other_inputs_exist"] = os.path.exists(OTHER_INPUTS)
out["other_inputs_list"] = attempt(lambda: os.listdir(OTHER_INPUTS))
out["other_model_read"] = attempt(lambda: read(OTHER_INPUTS + "/model/MLmodel"))
out["other_inputs_write"] = attempt(lambda: open(OTHER_INPUTS + "/poison", "w").close())
out["inputs_seen"] = sorted(glob.glob(ZYGOTE_ROOT + "/*/inputs"))
out["zygote_root_seen"] = sorted(glob.glob(ZYGOTE_ROOT + "/**", recursive=True))
out["files"] = {p: attempt(lambda p=p: read(p))
                for p in (f"/tmp/{TAG}", f"/dev/shm/{TAG}", f"/dev/{TAG}")}
out["tcp"] = attempt(lambda: socket.create_connection(("127.0.0.1", PORT), timeout=1).close())
def abstract():
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("\0podium-" + TAG)
    finally:
        s.close()
out["abstract"] = attempt(abstract)
live = []
for pid in range(1, PIDS):
    try:
        os.kill(pid, 0)
        live.append(pid)
    except ProcessLookupError:
        pass
    except PermissionError:
        live.append(pid)
out["live_pids"], out["pid"] = live, os.getpid()
out["proc"] = sorted(os.listdir("/proc"))
"""

INIT = LIBC_SOURCE + r"""
import signal, time
buf = ctypes.create_string_buffer(64)
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
local, remote = iovec(ctypes.addressof(buf), 64), iovec(ctypes.addressof(buf), 64)
def read_memory(pid):  # process_vm_readv (x86_64: 310)
    one, none = ctypes.c_ulong(1), ctypes.c_ulong(0)  # variadic: full-width arguments
    return err(libc.syscall(ctypes.c_long(310), ctypes.c_long(pid), ctypes.byref(local), one,
                            ctypes.byref(remote), one, none))
out["read_own_memory"] = read_memory(os.getpid())
out["read_memory"] = {pid: read_memory(pid) for pid in range(1, 64) if pid != os.getpid()}
out["ptrace_attach_init"] = err(libc.ptrace(ctypes.c_long(16), ctypes.c_long(1), None, None))
out["proc_1_mem"] = os.path.exists("/proc/1/mem")
sent = {}
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
            signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD,
            signal.SIGSEGV, signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT):
    try:
        os.kill(1, sig)
        sent[sig.name] = "sent"
    except OSError as exc:
        sent[sig.name] = type(exc).__name__
out["signals_to_init"] = sent
time.sleep(1)  # the init acts on a signal within milliseconds: dead by now if it could die
out["init_alive"] = os.kill(1, 0) is None
"""

MOUNTS = LIBC_SOURCE + r"""
import glob
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
inputs = glob.glob(ZYGOTE_ROOT + "/*/inputs")[0]
def undo(tag):
    out[tag + "umount"] = {p: err(libc.umount2(p.encode(), 2)) for p in (
        "/proc", "/tmp", "/dev/shm", "/dev", inputs, ZYGOTE_ROOT)}
    out[tag + "remount_rw"] = {p: err(libc.mount(None, p.encode(), None,
                                                 MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV,
                                                 None)) for p in (inputs, "/dev", "/")}
    out[tag + "mount_proc"] = err(libc.mount(b"proc", b"/tmp", b"proc", 0, None))
    for path in (inputs + "/planted", "/dev/planted", "/planted"):
        try:
            open(path, "w").close()
            out[tag + "write " + path] = "ok"
        except OSError as exc:
            out[tag + "write " + path] = E.errorcode[exc.errno]
undo("")
# a user namespace of its own below the sandbox's: every capability, in there
out["nested_userns"] = err(libc.unshare(0x10000000 | 0x00020000))
undo("nested ")
"""

CAPABILITIES = LIBC_SOURCE + r"""
PR_CAPBSET_READ, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, PR_GET_NO_NEW_PRIVS = 23, 47, 1, 39
out["bounding"] = [c for c in range(64) if libc.prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1]
out["ambient"] = [c for c in range(64)
                  if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1]
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
header, data = Header(0x20080522, 0), (Data * 2)()
out["capget"] = err(libc.capget(ctypes.byref(header), data))
out["sets"] = [[d.effective, d.permitted, d.inheritable] for d in data]
out["no_new_privs"] = libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
out["status_readable"] = os.path.exists("/proc/self/status")
out["uid"] = os.getuid()
"""


# --- fixtures ----------------------------------------------------------------------------

class Forks:
    """Probe models in sandboxes forked from ``zygote``; removed at the end of the test."""

    def __init__(self, zygote) -> None:
        self.zygote, self.models = zygote, []
        self.isolation = detect("bwrap")

    def sandbox(self, limits: Limits = LIMITS) -> Sandbox:
        return Sandbox(self.isolation, limits, zygote=self.zygote)

    def model(self, hostile: hm.HostileModel, limits: Limits = LIMITS) -> SandboxedModel:
        model = SandboxedModel(lambda: self.sandbox(limits), f"the {hostile.mode} model")
        self.models.append(model)
        hm.save(model.files, hostile)
        model.load()
        return model

    def probe(self, script: str, **names) -> SandboxedModel:
        """A loaded probe model; ``names`` become variables of its script."""
        names.setdefault("ZYGOTE_ROOT", str(self.zygote.root))
        prelude = "".join(f"{name} = {value!r}\n" for name, value in names.items())
        return self.model(hm.HostileModel("probe", script=prelude + script))

    def close(self) -> None:
        for model in self.models:
            model.close()


def report(model: SandboxedModel) -> dict:
    """What the probe reported on its last call."""
    return hm.reports(model.sandbox.stderr_path.read_text(errors="replace"))[-1]


@pytest.fixture
def forks(zygote):
    made = Forks(zygote)
    yield made
    made.close()


@pytest.fixture(scope="module")
def neighbours(zygote):
    """Two models forked from the same zygote, both alive: the neighbour made files in its
    /tmp, /dev/shm and /dev and listens on 127.0.0.1 and an abstract unix socket; then the
    intruder tried all of it, the neighbour's input directory and every pid."""
    made = Forks(zygote)
    tag = f"podium-{uuid.uuid4().hex[:10]}"
    try:
        neighbour = made.probe(NEIGHBOUR, TAG=tag, SHM_KEY=SHM_KEY)
        neighbour.predict(FRAME)
        seen = report(neighbour)
        intruder = made.probe(INTRUDER, TAG=tag, PORT=seen["port"], PIDS=PIDS_SCANNED,
                              SHM_KEY=SHM_KEY,
                              OTHER_INPUTS=str(neighbour.sandbox.inputs))
        intruder.predict(FRAME)
        assert neighbour.sandbox.alive and intruder.sandbox.alive
        yield {"neighbour": neighbour, "intruder": intruder, "tag": tag,
               "seen": seen, "tried": report(intruder)}
    finally:
        made.close()


# --- two models forked at once -----------------------------------------------------------

def test_a_model_cannot_see_read_or_write_another_models_input_directory(neighbours):
    tried, intruder = neighbours["tried"], neighbours["intruder"]
    other = neighbours["neighbour"].sandbox.inputs
    assert (other / "model" / "MLmodel").is_file()  # there, on the host, while it looked
    assert tried["other_inputs_exist"] is False
    assert tried["other_inputs_list"][0] == "refused"
    assert tried["other_model_read"][0] == "refused"
    assert tried["other_inputs_write"][0] == "refused"
    assert not (other / "poison").exists()
    # of every sandbox's input directory under the zygote's root, it sees its own only,
    # and nothing else there (not the neighbour's stderr.log)
    own = str(intruder.sandbox.inputs)
    assert tried["inputs_seen"] == [own]
    assert all(p == own or p.startswith(own + "/") or own.startswith(p.rstrip("/") + "/")
               for p in tried["zygote_root_seen"]), tried["zygote_root_seen"]
    assert (neighbours["neighbour"].sandbox.stderr_path).is_file()


def test_a_model_cannot_see_another_models_tmp_dev_shm_or_dev_files(neighbours):
    seen, tried, tag = neighbours["seen"], neighbours["tried"], neighbours["tag"]
    # the neighbour wrote in its own /tmp and /dev/shm (control); never into /dev, which
    # every sandbox of the zygote shares
    assert seen[f"/tmp/{tag}"] == "written" and seen[f"/dev/shm/{tag}"] == "written"
    assert seen[f"/dev/{tag}"] != "written", "a forked model wrote into the shared /dev"
    assert tried["files"] == {f"/tmp/{tag}": ["refused", "FileNotFoundError"],
                              f"/dev/shm/{tag}": ["refused", "FileNotFoundError"],
                              f"/dev/{tag}": ["refused", "FileNotFoundError"]}


def test_a_model_cannot_connect_to_another_over_loopback_or_an_abstract_socket(neighbours):
    seen, tried = neighbours["seen"], neighbours["tried"]
    assert seen["own_abstract_answers"] is True  # it listens, and answers its own model
    assert seen["own_tcp"] in ("ok", "OSError")  # OSError: its loopback is down
    assert tried["tcp"] in (["refused", "ConnectionRefusedError"], ["refused", "OSError"])
    assert tried["abstract"] == ["refused", "ConnectionRefusedError"]


def test_a_model_cannot_find_another_models_keys_or_shared_memory(neighbours):
    """The kernel's keyrings and System V IPC are not files: the neighbour's key (in its
    session and user keyrings) and its shared memory segment exist, the intruder finds
    neither."""
    seen, tried = neighbours["seen"], neighbours["tried"]
    assert seen["keys"] == {"session": "ok", "user": "ok"}
    assert seen["own_keys"] == {"session": "ok", "user": "ok"} and seen["own_shm"] == "ok"
    assert tried["keys"] == {"session": "ENOKEY", "user": "ENOKEY"}
    assert tried["shm"] == "ENOENT"


def test_a_model_sees_no_process_but_its_own_and_its_init(neighbours):
    """Not the zygote (PID 1 of the bubblewrap sandbox), not the neighbour, not its own
    sandbox's first process: ``kill(pid, 0)`` over every pid up to 32768 finds its init and
    itself, and ``/proc`` is covered."""
    tried = neighbours["tried"]
    assert tried["pid"] == 2
    assert tried["live_pids"] == [1, 2]
    assert tried["proc"] == []
    assert neighbours["neighbour"].sandbox.alive  # it was there to be found


# --- one model against its own sandbox ---------------------------------------------------

def test_a_model_cannot_signal_trace_or_read_its_init_nor_any_other_memory(forks):
    """Its init is PID 1 of its namespace (only signals it handles get in), not dumpable,
    and the model has no capability: every signal is lost on it, no ptrace, no
    ``process_vm_readv`` of any other process (the init's memory is the zygote's copy)."""
    model = forks.probe(INIT)
    model.predict(FRAME)
    got = report(model)
    assert got["read_own_memory"] == "ok"  # the call works where it is allowed
    assert set(got["read_memory"].values()) <= {"ESRCH", "EPERM"}, got["read_memory"]
    assert got["read_memory"]["1"] == "EPERM"
    assert got["ptrace_attach_init"] == "EPERM" and got["proc_1_mem"] is False
    assert set(got["signals_to_init"].values()) == {"sent"}
    assert got["init_alive"] is True
    # and the sandbox goes on: its init did not end it
    assert len(model.predict(FRAME)) == len(FRAME) and model.sandbox.alive


def test_a_model_cannot_undo_a_mount_of_its_sandbox_even_in_a_user_namespace_of_its_own(forks):
    model = forks.probe(MOUNTS)
    model.predict(FRAME)
    got = report(model)
    assert got["nested_userns"] == "ok"  # the kernel lets it: the mounts are locked there
    for tag in ("", "nested "):
        assert "ok" not in got[tag + "umount"].values(), got[tag + "umount"]
        assert "ok" not in got[tag + "remount_rw"].values(), got[tag + "remount_rw"]
        assert got[tag + "mount_proc"] != "ok"
        writes = {k: v for k, v in got.items() if k.startswith(tag + "write ")}
        assert len(writes) == 3 and "ok" not in writes.values(), writes
    assert list(model.sandbox.inputs.glob("planted")) == []


def test_a_forked_model_has_no_capability_and_cannot_gain_one(forks):
    model = forks.probe(CAPABILITIES)
    model.predict(FRAME)
    got = report(model)
    assert got["capget"] == "ok"
    assert got["sets"] == [[0, 0, 0], [0, 0, 0]]
    assert got["bounding"] == [] and got["ambient"] == []
    assert got["no_new_privs"] == 1
    assert got["status_readable"] is False and got["uid"] == 65534


def test_a_model_cannot_write_its_own_input_directory(forks):
    tag = uuid.uuid4().hex[:10]
    model = forks.model(hm.HostileModel("poison", tag=tag, targets=()))
    before = (model.files / "MLmodel").read_bytes()
    model.predict(FRAME)
    writes = report(model)["writes"]
    assert len(writes) == 3 and not any(writes.values()), writes
    assert (model.files / "MLmodel").read_bytes() == before
    assert not (model.sandbox.inputs / f"poison-{tag}").exists()


# --- ends and exit statuses --------------------------------------------------------------

def test_closing_a_forked_sandbox_kills_its_setsid_grandchild(forks):
    model = forks.model(hm.HostileModel("fork", setsid=True))
    model.predict(FRAME)
    sandbox = model.sandbox
    line = wait_for(lambda: next((ln for ln in sandbox.stderr_path.read_text().splitlines()
                                  if ln.startswith(hm.GRANDCHILD)), None), 10,
                    "the grandchild to report its pid")
    survivor = host_pid(sandbox, int(line[len(hm.GRANDCHILD):]))
    everything = descendants(sandbox_pid(sandbox))
    assert survivor in everything and not gone(survivor)
    try:
        model.close()
        wait_for(lambda: all(gone(p) for p in everything), 10,
                 "every process of the sandbox to be killed")
    finally:
        if not gone(survivor):
            with contextlib.suppress(ProcessLookupError):
                os.kill(survivor, signal.SIGKILL)
    assert sandbox.proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("script, says", [
    ("os._exit(3)", "predict: the sandbox exited with status 3"),
    ("import signal; os.kill(os.getpid(), signal.SIGKILL)",
     "predict: the sandbox was killed by signal 9 (SIGKILL)"),
    ("import signal; os.kill(os.getpid(), signal.SIGTERM)",
     "predict: the sandbox was killed by signal 15 (SIGTERM)"),
    # its pipe ends before its exit: the status it then reports, not the kill of a
    # sandbox given up at once
    ("import time; os.closerange(3, 1 << 16); time.sleep(0.5); os._exit(7)",
     "predict: the sandbox exited with status 7")])
def test_a_forked_models_exit_is_reported_as_a_process_exit(forks, script, says):
    """The status comes from its init: the model process's own, as ``Popen`` reports it
    (a SIGTERM is not taken for the SIGKILL of a lost init)."""
    sandbox = forks.sandbox()
    hm.save(sandbox.inputs / "model", hm.HostileModel("probe", script=script))
    try:
        sandbox.call("load", path=str(sandbox.inputs / "model"))
        with pytest.raises(SandboxDied) as err:
            sandbox.call("predict", frame=sandbox.write_frame(FRAME))
        assert err.value.reason == says
        assert not sandbox.alive
    finally:
        sandbox.remove()


def test_sys_exit_in_a_forked_model_is_its_failure_and_the_sandbox_serves_on(forks):
    model = forks.model(hm.HostileModel("probe", script="import sys; sys.exit(3)"))
    with pytest.raises(ModelFailed) as err:
        model.predict(FRAME)
    assert err.value.reason == "SystemExit: 3" and model.sandbox.alive


# --- the zygote itself, and the pool -----------------------------------------------------

def _honest_scores(sandbox: Sandbox) -> list[float]:
    hm.save(sandbox.inputs / "model", hm.HostileModel("honest"))
    sandbox.call("load", path=str(sandbox.inputs / "model"))
    reply, _ = sandbox.call("predict", frame=sandbox.write_frame(FRAME))
    return reply["scores"]


def test_when_the_zygote_dies_its_sandboxes_die_and_the_pool_starts_a_new_one(zygote):
    iso = detect("bwrap")  # (the shared zygote: only to skip where there can be none)
    pool = SandboxPool(iso, LIMITS, spares=0)
    try:
        first, second = pool.take(), pool.take()
        assert first.forked and second.forked
        old = pool.zygote
        everything = descendants(old.host_pid())
        assert len(everything) >= 7  # the zygote, and two sandboxes of three processes
        os.kill(old.host_pid(), signal.SIGKILL)
        for sandbox in (first, second):
            wait_for(lambda s=sandbox: s.proc.poll() is not None, 10, "the sandbox to die")
            assert sandbox.proc.returncode == -signal.SIGKILL
        wait_for(lambda: all(gone(p) for p in everything), 10, "every process to end")
        wait_for(lambda: not old.alive, 10, "bubblewrap to notice")
        third = pool.take()
        assert third.forked and pool.zygote is not old and pool.zygote.alive
        assert _honest_scores(third) == pytest.approx(hm.plausible_scores(FRAME))
        assert pool.describe_start().startswith("sandboxes: forked from a warm zygote")
        for sandbox in (first, second, third):
            sandbox.remove()
    finally:
        pool.close()


def test_a_spare_forked_before_the_zygote_died_is_not_handed_out(zygote):
    """Spares die with their zygote; one that had already said it was ready (a ``take``
    readies every spare) must not be handed out dead afterwards."""
    iso = detect("bwrap")
    pool = SandboxPool(iso, LIMITS, spares=2)
    try:
        pool.warm()
        first = pool.take()  # readies both spares, hands out one
        old = pool.zygote
        os.kill(old.host_pid(), signal.SIGKILL)
        wait_for(lambda: not old.alive, 10, "the zygote to end")
        wait_for(lambda: first.proc.poll() is not None, 10, "its sandboxes to end")
        taken = pool.take()
        assert taken.alive and taken.forked and pool.zygote is not old
        assert _honest_scores(taken) == pytest.approx(hm.plausible_scores(FRAME))
        for sandbox in (first, taken):
            sandbox.remove()
    finally:
        pool.close()


def test_a_pool_whose_zygote_cannot_start_starts_sandboxes_one_by_one_and_says_why(
        monkeypatch, zygote):
    iso = detect("bwrap")

    def no_zygote(*args, **kwargs):
        raise ZygoteUnavailable("the zygote could not start: test says no")
    monkeypatch.setattr(pool_module, "Zygote", no_zygote)
    pool = SandboxPool(iso, LIMITS, spares=0)
    try:
        assert pool.describe_start().startswith("sandboxes: forked from a warm zygote")
        sandbox = pool.take()
        assert not sandbox.forked and sandbox.alive and pool.zygote is None
        assert pool.describe_start() == ("sandboxes: started one by one (zygote: the zygote "
                                         "could not start: test says no)")
        assert _honest_scores(sandbox) == pytest.approx(hm.plausible_scores(FRAME))
        sandbox.remove()
    finally:
        pool.close()



LAZY_IMPORT = r"""
import importlib
module = importlib.import_module(MODULE)
out["imported"] = module.ANSWER
"""


def test_an_installation_under_the_hosts_tmp_stays_importable_in_a_fork(tmp_path,
                                                                         monkeypatch):
    """A fork's private /tmp must not hide what the outer sandbox bound below the host's
    /tmp (a virtualenv made there, as the demo's wheel test does): a module the zygote did
    not import is imported at predict time. Before, the fork saw an empty /tmp there:
    ``ModuleNotFoundError`` on the first lazy import (the demo's checks all failed)."""
    from model_tests.sandbox import levels
    from model_tests.sandbox import zygote as zygote_module
    from tests.unit.model_tests.conftest import start_zygote

    extra = tmp_path / "site-packages"  # the pytest temp root lives under /tmp
    assert str(extra).startswith("/tmp/"), extra
    extra.mkdir()
    name = f"podium_lazy_{uuid.uuid4().hex[:8]}"
    (extra / f"{name}.py").write_text("ANSWER = 42\n")
    with_extra = [*levels._site_packages(), str(extra)]
    monkeypatch.setattr(levels, "_site_packages", lambda: with_extra)
    monkeypatch.setattr(zygote_module, "_site_packages", lambda: with_extra)
    started = start_zygote()
    made = Forks(started)
    try:
        model = made.probe(LAZY_IMPORT, MODULE=name)
        model.predict(FRAME)
        assert report(model)["imported"] == 42
    finally:
        made.close()
        started.close()


def test_a_sandbox_taken_as_its_zygote_dies_is_forked_from_a_new_one(zygote):
    """The zygote killed and a sandbox asked for at once (its bubblewrap not yet gone, so
    the pool still holds it for alive): the fork fails, and the pool starts a new zygote
    for it rather than a sandbox one by one (3 s of imports). Before, it fell back; or the
    socket's reset (the zygote died with the question unread) escaped as an OSError."""
    iso = detect("bwrap")  # (the shared zygote: only to skip where there can be none)
    pool = SandboxPool(iso, LIMITS, spares=0)
    try:
        first = pool.take()
        old = pool.zygote
        os.kill(old.host_pid(), signal.SIGKILL)
        second = pool.take()
        assert second.forked and pool.zygote is not old and pool.zygote.alive
        assert _honest_scores(second) == pytest.approx(hm.plausible_scores(FRAME))
        for sandbox in (first, second):
            sandbox.remove()
    finally:
        pool.close()


def test_a_zygote_whose_probe_fork_fails_otherwise_is_unavailable_and_leaves_nothing(
        zygote, monkeypatch):
    """Any failure of the start (here the probe fork's reply saying it could not start, a
    ``SandboxDied``) is ``ZygoteUnavailable`` — what the pool falls back on — and ends the
    zygote's bubblewrap. Before, only ``ZygoteUnavailable`` was cleaned up: this left the
    zygote running and escaped the pool's fallback."""
    from model_tests.sandbox import zygote as zygote_module

    started = []
    real_init = zygote_module.Zygote.__init__

    def remember(self, *args, **kwargs):
        started.append(self)
        real_init(self, *args, **kwargs)

    def refused(self):
        raise SandboxDied("the sandbox could not start: OSError: unshare: refused")

    monkeypatch.setattr(zygote_module.Zygote, "__init__", remember)
    monkeypatch.setattr(zygote_module.Zygote, "_probe", refused)
    with pytest.raises(ZygoteUnavailable, match="unshare: refused"):
        zygote_module.Zygote()
    assert started and started[0].proc.poll() is not None
    assert not started[0].root.exists()
