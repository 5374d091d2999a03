"""Hostile model code against the sandbox (``model_tests/isolation.py``, ``sandboxed.py``):
every attack of ``tests/support/hostile_model.py``, at every isolation level this machine
has. No MLflow server: the model is saved with ``mlflow.pyfunc.save_model`` into the
sandbox's input directory, as Podium puts a downloaded version there.

What each level promises (the tests hold each level to exactly that):

- ``bwrap``: the model sees only the sandbox's own processes, no network, none of the host's
  files (not the store, not the test's directories), and can write nowhere that outlives it.
- ``zygote``: the same ``bwrap`` isolation, the sandbox forked from one warm zygote
  (``zygote.py``, the session's ``zygote`` fixture) instead of started one by one: held to
  all that ``bwrap`` promises (``test_sandbox_zygote.py``: what forks must keep apart).
- ``user``: runs as an unprivileged user (checked only where ``detect('user')`` gives it).
- ``process``: the allow-listed environment of the child itself, the limits, the deadline
  of every call and the kill of the whole process group; as root, also its own PID and
  network namespace without capabilities (the worker's environment is out of reach and a
  ``setsid()`` grandchild dies with it). Not as root, such a grandchild outlives the
  sandbox: a strict xfail (the documented limit of that level).

Every level: a model that runs away (memory, a loop, a half-sent reply, garbage on the
reply pipe, killing itself) costs a bounded time and gives a reason, never a hang or a
crash of Podium.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_tests.sandbox import (
    BASE_ENV,
    Isolation,
    Limits,
    ModelCrashed,
    ModelFailed,
    Sandbox,
    SandboxDied,
    SandboxedModel,
    SandboxTimeout,
    detect,
)
from tests.support import hostile_model as hm
from tests.support.sandbox_processes import descendants, gone, host_pid, sandbox_pid
from tests.support.sandbox_processes import processes as _processes
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[3]
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-hostile-slack-7f3a91",
    "PODIUM_API_TOKEN": "podium-api-token-9c1e55",
    "PODIUM_DATABASE_URL": "postgresql://podium:pg-pass-4d2b88@127.0.0.1:5432/podium",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-8e6f0d",
    "OPENAI_API_KEY": "sk-openai-5a0c77",
    "MLFLOW_TRACKING_URI": "http://user:mlflow-pw-3b9d42@127.0.0.1:1",
}
# never to be seen: every value, and the passwords inside the URLs on their own
LEAKS = (*SECRETS.values(), "pg-pass-4d2b88", "mlflow-pw-3b9d42")
# the child's initial environment: the allow-list, and what each level sets itself
ALLOWED_ENV = set(BASE_ENV) | {"HOME", "TMPDIR", "MPLCONFIGDIR", "PWD"}
# what the warm-up's imports add to os.environ (scikit-learn's __init__), where a forked
# model's os.environ is all there is to read (its /proc/self/environ is covered)
SET_BY_IMPORTS = {"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"}
LIMITS = Limits(memory_mb=2048, cpu_s=120, timeout_s=60, file_mb=64, start_timeout_s=90)
FRAME = pd.DataFrame({"tenure": (np.arange(40) % 72).astype(float),
                      "charges": 20.0 + np.arange(40, dtype=float)})
FORK_ESCAPES = ("the grandchild's os.setsid() leaves the process group, so Sandbox.close()'s "
                "killpg misses it and it outlives the sandbox (isolation.py, Sandbox.close)")


def leaked(*texts: str) -> list[str]:
    """The secrets (or their passwords) that appear in any of ``texts``."""
    return [s for s in LEAKS if any(s in t for t in texts)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    """Podium's secrets in this process's environment before any sandbox starts."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def isolation_for(level: str) -> Isolation:
    if level in ("bwrap", "zygote"):  # the zygote: bwrap's isolation, sandboxes forked
        iso = detect("bwrap")
        if iso.level != "bwrap":
            pytest.skip(f"bubblewrap does not work here: {iso.why}")
        return iso
    if level == "user":
        iso = detect("user")
        if iso.level != "user":
            pytest.skip(f"no 'user' isolation here: {iso.why}")
        return iso
    return Isolation("process", "test: same user, allow-listed environment and limits")


LEVELS = ["bwrap", "zygote", "user", "process"]


@pytest.fixture(params=LEVELS)
def level(request) -> str:
    return request.param


@pytest.fixture
def isolation(level) -> Isolation:
    return isolation_for(level)


def zygote_for(level: str, request):
    """The session's zygote for the ``zygote`` level (started at first use), else None."""
    return request.getfixturevalue("zygote") if level == "zygote" else None


class Warm:
    """Sandboxes started ahead of the tests that take them (their imports take seconds), per
    level and limits; a sandbox is only ever started inside a test, so with the secrets in
    the environment. What is left is removed at the end of the module."""

    def __init__(self) -> None:
        self.ready: dict[tuple, list[Sandbox]] = {}
        self.started: list[Sandbox] = []

    def take(self, isolation: Isolation, limits: Limits, ahead: int, zygote=None) -> Sandbox:
        queue = self.ready.setdefault((isolation.level, zygote is not None, limits), [])
        while queue and not queue[0].alive:  # a spare that died waiting is no use
            queue.pop(0).remove()
        sandbox = queue.pop(0) if queue else self._start(isolation, limits, zygote)
        while len(queue) < ahead:
            queue.append(self._start(isolation, limits, zygote))
        return sandbox

    def _start(self, isolation: Isolation, limits: Limits, zygote=None) -> Sandbox:
        sandbox = Sandbox(isolation, limits, zygote=zygote)
        self.started.append(sandbox)
        return sandbox

    def close(self) -> None:
        for sandbox in self.started:
            sandbox.remove()


@pytest.fixture(scope="module")
def warm():
    pool = Warm()
    yield pool
    pool.close()


class Spawner:
    """SandboxedModels holding a hostile model, for one test, from the warm sandboxes. The
    test's sandboxes are removed at its end; their stderr is kept in ``stderr``."""

    def __init__(self, warm: Warm, isolation: Isolation, zygote=None) -> None:
        self.warm, self.isolation, self.zygote = warm, isolation, zygote
        self.level = "zygote" if zygote is not None else isolation.level
        self.sandboxes: list[Sandbox] = []
        self.stderr: dict[Path, str] = {}

    def _take(self, limits: Limits) -> Sandbox:
        ahead = 1 if limits == LIMITS and self.zygote is None else 0  # a fork takes no time
        sandbox = self.warm.take(self.isolation, limits, ahead, self.zygote)
        self.sandboxes.append(sandbox)
        remove = sandbox.remove

        def keep_stderr_then_remove() -> None:
            sandbox.close()
            with contextlib.suppress(OSError):
                self.stderr[sandbox.stderr_path] = sandbox.stderr_path.read_text(
                    errors="replace")
            remove()
        sandbox.remove = keep_stderr_then_remove
        return sandbox

    def __call__(self, model: hm.HostileModel, limits: Limits = LIMITS) -> SandboxedModel:
        taken: list[Sandbox] = []

        def take() -> Sandbox:
            taken.append(self._take(limits))
            return taken[-1]

        sandboxed = SandboxedModel(take, f"the {model.mode} model ({self.level})")
        sandboxed.taken = taken
        hm.save(sandboxed.files, model)
        return sandboxed

    def sandbox(self, limits: Limits = LIMITS) -> Sandbox:
        return self._take(limits)

    def all_stderr(self) -> str:
        for sandbox in self.sandboxes:
            with contextlib.suppress(OSError):
                self.stderr[sandbox.stderr_path] = sandbox.stderr_path.read_text(
                    errors="replace")
        return "\n".join(self.stderr.values())

    def close(self) -> None:
        for sandbox in self.sandboxes:
            sandbox.remove()


@pytest.fixture
def spawn(warm, level, isolation, request):
    spawner = Spawner(warm, isolation, zygote_for(level, request))
    yield spawner
    spawner.close()
    # whatever the model did, nothing it printed holds a secret of this process
    assert leaked(spawner.all_stderr()) == []


@contextlib.contextmanager
def listening():
    """A TCP server on 127.0.0.1 (a stand-in for MLflow): (port, what it received)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(OSError):
                    received.append(conn.recv(200) or b"(connected)")
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        server.close()


def make_store(path: Path) -> Path:
    """A stand-in for Podium's SQLite store: one approval row."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE approvals (id INTEGER PRIMARY KEY, who TEXT DEFAULT "
                     "'hostile', state TEXT DEFAULT 'approved')")
        conn.execute("INSERT INTO approvals (who, state) VALUES ('alice', 'pending')")
        conn.commit()
    return path


def rows(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM approvals").fetchone()[0]


@pytest.fixture(scope="module")
def snooped(tmp_path_factory):
    """``run(level)``: a worker process whose *initial* environment holds the secrets (what
    ``/proc/<pid>/environ`` shows) and which is hardened like ``podium serve`` runs the snoop
    model in a sandbox of ``level``, next to a listening port and a store file; once per
    level for the module. Returns what the worker saw and what the host kept."""
    runs: dict[str, dict] = {}
    made: list[Path] = []

    def run(level: str) -> dict:
        if level in runs:
            return runs[level]
        tmp = tmp_path_factory.mktemp(f"snoop-{level}")
        store = make_store(tmp / "podium.db")
        tag = uuid.uuid4().hex[:10]
        escaped, tmp_escape = tmp / "escaped.txt", Path(f"/tmp/podium-hostile-{tag}")
        made.append(tmp_escape)
        before = (sha256(store), rows(store))
        with listening() as (port, received):
            args = {"level": level, "secrets": sorted(SECRETS), "out": str(tmp / "out.json"),
                    "limits": {"memory_mb": 2048, "timeout_s": 60, "start_timeout_s": 90},
                    "model": {"store": str(store), "ports": [port, 5432],
                              "host_path": str(escaped), "tag": tag, "raise_every": 2}}
            worker = subprocess.run(
                [sys.executable, "-m", "tests.support.hostile_model", json.dumps(args)],
                cwd=REPO, env={**os.environ, **SECRETS}, capture_output=True, text=True,
                timeout=180)
        assert worker.returncode == 0, worker.stderr[-3000:]
        out = json.loads((tmp / "out.json").read_text())
        assert "skip" not in out, out
        runs[level] = {**out, "reports": hm.reports(out["stderr"]), "received": received,
                       "store_before": before, "store_after": (sha256(store), rows(store)),
                       "escaped": escaped, "tmp_escape": tmp_escape}
        return runs[level]

    yield run
    for path in made:  # where the 'process' level let the model write
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- reading secrets, the store, the network, the host's files ---------------------------

def test_snooping_model_in_a_worker_holding_secrets_gets_only_what_its_level_promises(
        level, isolation, snooped):
    """The model reads every environ, the store, the network, and writes outside."""
    out = snooped(level)
    reports = out["reports"]
    # the model ran: a report at load and at each scoring, scores, then the failure
    assert [r["when"] for r in reports] == ["load_context", "predict1", "predict2"]
    first, second = out["calls"]
    assert len(first["scores"]) == len(FRAME)
    assert second["error"] == "ModelFailed" and second["reason"].startswith(
        "RuntimeError: loot ")
    assert out["hardened"] is True

    # every level: the child's own environment is the allow-list, none of the worker's (a
    # forked model's /proc is covered: its environment is the zygote's, as it got it)
    for r in reports:
        if level == "zygote":
            assert set(r["own_environ"]) <= ALLOWED_ENV | SET_BY_IMPORTS
        else:
            assert set(r["own_initial_environ"]["value"]) <= ALLOWED_ENV
        assert leaked(json.dumps(r["own_environ"])) == []
        assert "tracking_uri" not in r["connect"]  # MLFLOW_TRACKING_URI never got in

    if isolation.level == "process":
        # Only the child's own environment is promised here: the store, the network and
        # the host's files are the same user's. The worker's environ: see the next test.
        if os.geteuid() != 0:
            assert not any(r["parent_environ"]["ok"] for r in reports)
        return

    # bwrap (and user): nothing of the worker reaches the model, or comes back from it
    assert leaked(out["stderr"], second["reason"], json.dumps(first)) == []
    assert out["files_with_secrets"] == []
    for r in reports:
        assert not r["store_read"]["ok"] and not r["store_open_write"]["ok"]
        assert not r["store_insert"]["ok"]
        assert not r["writes"][str(out["escaped"])]["ok"]
    assert out["store_after"] == out["store_before"]
    assert not out["escaped"].exists() and not out["tmp_escape"].exists()
    if level == "bwrap":
        for r in reports:
            # its own PID namespace: bubblewrap's init and the child, nothing of the host
            assert all("/podium/sandbox_child.py" in c
                       for c in r["cmdlines"].values()), r["cmdlines"]
            assert len(r["cmdlines"]) <= 3 and str(out["pid"]) not in r["cmdlines"]
            assert r["ppid"] == 1 and set(r["parent_environ"]["value"]) <= ALLOWED_ENV
    if level == "zygote":
        for r in reports:
            # its own PID namespace below the zygote's (its init is 1), /proc covered
            assert (r["pid"], r["ppid"]) == (2, 1)
            assert r["cmdlines"] == {} and r["environs"] == {}
            assert not r["parent_environ"]["ok"] and not r["own_initial_environ"]["ok"]
    if level in ("bwrap", "zygote"):
        for r in reports:
            assert r["uid"] == 65534
            assert not any(c["ok"] for c in r["connect"].values()), r["connect"]
        assert out["received"] == []  # no connection ever reached the listener


def test_at_process_level_the_workers_environment_does_not_reach_the_model(snooped):
    """An ordinary user: the worker is non-dumpable, its /proc/<pid>/environ unreadable.
    Root: the child runs in its own PID namespace without capabilities, so the only
    "parent" it can read is the sandbox's own init, with the allow-listed environment."""
    out = snooped("process")
    parent = [r["parent_environ"] for r in out["reports"]]
    assert parent
    for p in parent:
        assert not p["ok"] or set(p["value"]) <= ALLOWED_ENV, leaked(json.dumps(p["value"]))
    assert leaked(out["stderr"], *(c.get("reason", "") for c in out["calls"]),
                  json.dumps(parent)) == []


# --- processes that outlive the call -----------------------------------------------------

@pytest.mark.parametrize("level, setsid", [
    ("bwrap", False), ("bwrap", True), ("zygote", False), ("zygote", True), ("process", False),
    pytest.param("process", True, marks=pytest.mark.xfail(
        os.geteuid() != 0, strict=True, reason=FORK_ESCAPES)),
    ("user", False),
    pytest.param("user", True, marks=pytest.mark.xfail(strict=True, reason=FORK_ESCAPES))])
def test_a_forked_grandchild_dies_with_the_sandbox(warm, level, setsid, request):
    spawner = Spawner(warm, isolation_for(level), zygote_for(level, request))
    survivor = None
    try:
        model = spawner(hm.HostileModel("fork", setsid=setsid))
        model.load()
        assert len(model.predict(FRAME)) == len(FRAME)
        line = wait_for(lambda: next((ln for ln in spawner.all_stderr().splitlines()
                                        if ln.startswith(hm.GRANDCHILD)), None),
                          10, "the grandchild to report its pid")
        survivor = host_pid(model.sandbox, int(line[len(hm.GRANDCHILD):]))
        assert not gone(survivor)
        model.close()
        wait_for(lambda: gone(survivor), 10, f"the grandchild {survivor} to be killed")
        survivor = None
    finally:
        if survivor is not None and not gone(survivor):  # escaped: this test's own mess
            with contextlib.suppress(ProcessLookupError):
                os.kill(survivor, signal.SIGKILL)
        spawner.close()


# --- limits and deadlines ----------------------------------------------------------------

def test_allocating_10_gb_is_a_memory_error_within_the_memory_limit(spawn):
    model = spawn(hm.HostileModel("oom"))
    model.load()
    started = time.monotonic()
    with pytest.raises(ModelFailed) as err:
        model.predict(FRAME)
    assert err.value.reason.startswith("MemoryError") and "MemoryError" in err.value.kinds
    assert time.monotonic() - started < 10
    # a failure of the model, not a death: the same sandbox answers, well under its limit
    assert model.sandbox.alive and model.broken is None
    peaks = [_processes()[p]["vmpeak_kb"] for p in descendants(sandbox_pid(model.sandbox))]
    assert 0 < max(peaks) <= 2048 * 1024


@pytest.mark.parametrize("level, dirs", [
    ("bwrap", ("/tmp", "/dev/shm", "/")), ("zygote", ("/tmp", "/dev/shm", "/", "/dev")),
    pytest.param("bwrap", ("/dev",), marks=pytest.mark.xfail(strict=True, reason=(
        "bubblewrap's --dev makes /dev a tmpfs of no size of its own, writable by the "
        "sandbox's user (levels._bwrap_args): only a cgroup counts what is held there")))])
def test_a_model_cannot_hold_more_memory_than_its_limit_in_files(warm, level, dirs, request):
    """Files in a bubblewrap sandbox live in memory: the room for them must be bounded."""
    limits = Limits(memory_mb=1024, cpu_s=120, timeout_s=60, file_mb=64, start_timeout_s=90)
    spawner = Spawner(warm, isolation_for(level), zygote_for(level, request))
    try:
        model = spawner(hm.HostileModel("fill", fill_mb=limits.memory_mb + 256,
                                        fill_dirs=dirs), limits)
        model.load()
        assert len(model.predict(FRAME)) == len(FRAME)
        report = hm.reports(model.sandbox.stderr_path.read_text())[-1]
        held = {where: r["written_mb"] for where, r in report.items() if where[0] == "/"}
        assert sorted(held) == sorted(dirs)
        assert all(mb < limits.memory_mb for mb in held.values()), held
    finally:
        spawner.close()


def test_an_endless_predict_passes_its_deadline_and_the_sandbox_is_killed(spawn):
    model = spawn(hm.HostileModel("loop"), Limits(memory_mb=2048, timeout_s=5,
                                                  start_timeout_s=90))
    model.load()
    processes = descendants(sandbox_pid(model.sandbox))
    started = time.monotonic()
    with pytest.raises(ModelCrashed) as err:
        model.predict(FRAME)
    took = time.monotonic() - started
    assert 5 <= took < 15
    assert "predict did not finish within 5 s; the sandbox was killed" in err.value.reason
    assert not model.sandbox.alive
    wait_for(lambda: all(gone(p) for p in processes), 10, "the sandbox's processes to end")
    assert len(model.taken) == 1  # a deadline is not retried
    started = time.monotonic()
    with pytest.raises(ModelCrashed) as again:  # later calls fail at once, same reason
        model.predict(FRAME)
    assert again.value.reason == f"not run: {err.value.reason}"
    assert time.monotonic() - started < 1


def test_half_a_frame_header_on_the_reply_pipe_hits_the_deadline(spawn):
    sandbox = spawn.sandbox()
    hm.save(sandbox.inputs / "model", hm.HostileModel("partial"))
    sandbox.call("load", path=sandbox.inside(sandbox.inputs / "model"))
    started = time.monotonic()
    with pytest.raises(SandboxTimeout) as err:
        sandbox.call("predict", timeout_s=3, frame=sandbox.write_frame(FRAME))
    assert 3 <= time.monotonic() - started < 10
    assert "predict did not finish within 3 s" in err.value.reason
    assert not sandbox.alive


# --- a broken protocol -------------------------------------------------------------------

def test_garbage_on_the_reply_pipe_is_not_a_reply_and_twice_is_a_crash(spawn):
    model = spawn(hm.HostileModel("garbage", garbage="oversize"))
    model.load()
    with pytest.raises(ModelCrashed) as err:
        model.predict(FRAME)
    reason = err.value.reason
    assert "the sandbox died twice on predict" in reason
    # a reply may be no longer than the scores asked for (32 bytes a row and a little room)
    cap = 32 * len(FRAME) + 65536
    assert reason.count(f"4,294,967,295 bytes (more than {cap:,}): not a reply") == 2, reason
    assert len(model.taken) == 2  # replaced once, then a verdict
    assert not any(s.alive for s in model.taken)


@pytest.mark.parametrize("garbage, says", [
    ("not-json", "predict: the sandbox sent something that is not JSON: not a reply"),
    ("not-reply", "predict: the sandbox answered something that is not a reply")])
def test_a_malformed_reply_ends_the_sandbox_with_the_reason(spawn, garbage, says):
    sandbox = spawn.sandbox()
    hm.save(sandbox.inputs / "model", hm.HostileModel("garbage", garbage=garbage))
    sandbox.call("load", path=sandbox.inside(sandbox.inputs / "model"))
    with pytest.raises(SandboxDied) as err:
        sandbox.call("predict", frame=sandbox.write_frame(FRAME))
    assert err.value.reason == says
    assert not sandbox.alive


def test_a_model_that_kills_itself_is_retried_once_then_crashed(spawn):
    model = spawn(hm.HostileModel("crash"))
    model.load()
    with pytest.raises(ModelCrashed) as err:
        model.predict(FRAME)
    assert "the sandbox died twice on predict" in err.value.reason
    assert len(model.taken) == 2 and not any(s.alive for s in model.taken)
    for call in (lambda: model.predict(FRAME), model.load):  # no third sandbox, same reason
        started = time.monotonic()
        with pytest.raises(ModelCrashed) as again:
            call()
        assert again.value.reason == f"not run: {err.value.reason}"
        assert time.monotonic() - started < 1
    assert len(model.taken) == 2


def test_an_unknown_op_is_a_clear_failure_and_the_sandbox_keeps_serving(spawn):
    sandbox = spawn.sandbox()
    hm.save(sandbox.inputs / "model", hm.HostileModel("honest"))
    frame = sandbox.write_frame(FRAME)
    for op, args, says in (("nope", {}, "ValueError: unknown op 'nope'"),
                           ("predict", {"frame": frame}, "RuntimeError: no model loaded"),
                           ("load", {}, "KeyError")):
        with pytest.raises(ModelFailed) as err:
            sandbox.call(op, **args)
        assert err.value.reason.startswith(says) and sandbox.alive
    sandbox.call("load", path=sandbox.inside(sandbox.inputs / "model"))
    reply, _ = sandbox.call("predict", frame=frame)
    np.testing.assert_array_equal(reply["scores"], hm.plausible_scores(FRAME))
    for rows in (3, 5, 7):  # a shadow's chunks: one frame on disk at a time, each its own
        reply, _ = sandbox.call("predict", frame=sandbox.write_frame(FRAME.head(rows)))
        np.testing.assert_array_equal(reply["scores"], hm.plausible_scores(FRAME.head(rows)))
    assert sorted(p.name for p in sandbox.inputs.glob("frame-*")) == ["frame-4.pkl"]


# --- one model against another -----------------------------------------------------------

def test_a_poisoning_model_cannot_change_the_champions_scores(spawn):
    tag = uuid.uuid4().hex[:10]
    champion = spawn(hm.HostileModel("honest"))
    poison = spawn(hm.HostileModel("poison", tag=tag,
                                   targets=(str(champion.sandbox.inputs),)))
    champion.load()
    poison.load()
    assert poison.predict(FRAME).tolist() == [0.99] * len(FRAME)
    frame_file = champion.sandbox.inputs / "frame-1.pkl"
    got = champion.predict(FRAME)
    np.testing.assert_array_equal(got, hm.plausible_scores(FRAME))  # what it scores here
    assert np.mean([1.0, 3.0]) == 2.0  # nothing of this process was patched
    report = hm.reports(poison.sandbox.stderr_path.read_text())[-1]
    assert report["patched"] == ["numpy", "sklearn.metrics"]  # it did try, in its sandbox
    if spawn.isolation.level == "process":
        return  # same user: files and /proc of the host are not protected at this level
    assert not any(report["writes"].values()), report["writes"]
    assert not (champion.sandbox.inputs / f"poison-{tag}").exists()
    assert frame_file.exists() and not (poison.sandbox.inputs / f"poison-{tag}").exists()
    if spawn.level == "zygote":  # /proc covered: no /proc/<pid>/mem to open at all
        assert report["mem_open_for_write"] == {}
    elif spawn.isolation.level == "bwrap":  # /proc/<pid>/mem: only its own sandbox's
        inside = len(descendants(poison.sandbox.proc.pid)) - 1  # bubblewrap's outer process
        assert len(report["mem_open_for_write"]) + 1 == inside
