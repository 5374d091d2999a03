"""A malicious MLflow pyfunc, for the sandbox tests: everything model code could try.

``HostileModel(mode, ...)`` is an ``mlflow.pyfunc.PythonModel``; its behaviour is chosen by
constructor arguments pickled into the logged model (never by environment variables, which
the sandbox would not pass anyway). The class is pickled *by value* (``save``/``log`` register
this module with cloudpickle), so the sandbox needs nothing of the test suite to load it.

Modes (what ``load_context`` / ``predict`` do):

- ``honest``: plausible scores, nothing else (a champion for the unit tests).
- ``snoop``: in ``load_context`` and in ``predict`` read ``/proc/<ppid>/environ`` and every
  ``/proc/*/environ``, its own ``os.environ``, the store file (read, open for writing, an
  sqlite3 insert), connect to the given 127.0.0.1 ports (MLflow, PostgreSQL 5432) and to
  ``MLFLOW_TRACKING_URI`` if set, write files outside its directory (``host_path`` and
  ``/tmp/podium-hostile-<tag>``); then print all of it to stderr (one ``HOSTILE-REPORT``
  JSON line, so a leak is visible there), and every ``raise_every``-th predict raise an error
  whose message carries what looks like a secret (a leak through the failure reason would be
  visible in the store and in the tags); else return plausible scores.
- ``fork``: ``predict`` forks a grandchild that calls ``os.setsid()`` (unless
  ``setsid=False``) and then writes ``HOSTILE-GRANDCHILD <pid>`` to stderr every 0.2 s,
  forever.
- ``oom``: ``predict`` allocates 10 GB.
- ``loop``: ``predict`` never returns (``while True``).
- ``garbage``: ``predict`` writes garbage to the reply pipe (found through ``/proc/self/fd``:
  the write end of a pipe other than 0/1/2) and to ``sys.__stdout__``; ``garbage`` chooses
  ``oversize`` (a 4 GB length), ``not-json`` or ``not-reply`` (JSON that is no reply).
- ``partial``: ``predict`` writes 2 bytes of a frame header to the reply pipe, then sleeps.
- ``crash``: ``predict`` SIGKILLs its own process.
- ``fill``: ``predict`` writes up to ``fill_mb`` MB of files into each of ``fill_dirs``
  (``/tmp``, ``/dev/shm``, ``/``: in bubblewrap each a tmpfs, that is memory), reports how
  much each took, returns scores.
- ``forkbomb``: ``predict`` forks up to ``forks`` children in a bounded loop; each waits
  (``hold_s`` at most) and exits. A fork that fails (the process limit) is raised after a
  ``HOSTILE-REPORT`` of how many were made.
- ``memhog``: ``predict`` forks ``children`` children that each fill ``child_mb`` MiB (every
  page touched) and hold it (``hold_s`` at most); a child that is not alive to answer once
  all have filled or died (killed by the memory limit, before or after saying it holds its
  memory) makes ``predict`` raise; else plausible scores.
- ``poison``: ``predict`` tries to change the other model's scores: opens every other
  ``/proc/<pid>/mem`` for writing (nothing is written: the attempt is what is recorded),
  monkeypatches numpy and scikit-learn's metrics, writes into its own input directory
  (the frame and the model files) and into every input directory matching ``targets``
  (default: every ``/tmp/podium-sandbox-*/inputs`` it can see); returns 0.99 for every row
  and prints a ``HOSTILE-REPORT``.
- ``probe``: ``predict`` runs the Python source ``script`` (its globals: ``out``, a dict to
  fill, ``os`` and ``call``: the call's number), prints ``out`` as a ``HOSTILE-REPORT``
  and returns plausible scores (an exception of the script is the call's failure, after
  the report of what it filled so far).

``save`` / ``log`` write it as a real pyfunc (``mlflow.pyfunc.save_model`` / ``log_model``
with a registered name) without running any of it here; ``reports`` parses the
``HOSTILE-REPORT`` lines of a sandbox's stderr; ``python -m tests.support.hostile_model
JSON`` runs ``worker``: a worker process holding secrets that runs a snoop model.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import mlflow.pyfunc

MODES = ("honest", "snoop", "fork", "oom", "loop", "garbage", "partial", "crash", "poison",
         "fill", "forkbomb", "memhog", "probe")
GARBAGE = ("oversize", "not-json", "not-reply")
REPORT = "HOSTILE-REPORT "
GRANDCHILD = "HOSTILE-GRANDCHILD "
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "DATABASE_URL", "TRACKING_URI",
                "ACCESS_KEY")
PIP = ["mlflow", "pandas", "numpy"]


def plausible_scores(frame) -> list[float]:
    """Churn-like probabilities, one per row, a fixed function of the numeric columns (the
    tests compute the same in-process to know what an unpoisoned model answers)."""
    import numpy as np
    import pandas as pd

    numbers = frame.select_dtypes("number")
    if numbers.shape[1] == 0:
        x = np.arange(len(frame), dtype=float)
    else:
        x = numbers.apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(float).sum(1)
    z = (x - x.mean()) / (x.std() + 1e-9)
    return (1.0 / (1.0 + np.exp(-z))).clip(0.01, 0.98).tolist()


def _try(what, fn):
    """fn() or the error it raised, as plain JSON."""
    try:
        return {"ok": True, "value": fn()}
    except BaseException as exc:  # noqa: BLE001 - every failure is the point
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _read(path: str, limit: int = 1 << 16) -> str:
    with open(path, "rb") as fh:
        return fh.read(limit).decode(errors="replace")


def _environ_of(pid: str) -> dict:
    raw = _read(f"/proc/{pid}/environ", 1 << 20)
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _secretish(env: dict) -> dict:
    return {k: v for k, v in env.items() if any(w in k.upper() for w in SECRET_WORDS)}


def _reply_fds() -> list[int]:
    """Write ends of pipes other than 0/1/2: the sandbox's private reply channel (found by
    trying every descriptor: a forked sandbox has no /proc/self/fd to list)."""
    import fcntl
    import stat

    out = []
    for fd in range(3, 4096):
        try:
            fifo = stat.S_ISFIFO(os.fstat(fd).st_mode)
            mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            continue
        if fifo and mode == os.O_WRONLY:
            out.append(fd)
    return out


def _connect(host: str, port: int) -> dict:
    import socket

    def go():
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(b"GET /api/2.0/mlflow/registered-models/search HTTP/1.0\r\n"
                         b"Host: x\r\n\r\n")
            sock.settimeout(1.0)
            return sock.recv(200).decode(errors="replace")
    return _try("connect", go)


def _current_request() -> dict:
    """The request the sandbox is serving (the ``req`` of the child's loop, found up the
    stack): its ``frame`` names a file in the input directory."""
    frame = sys._getframe(1)
    while frame is not None:
        req = frame.f_locals.get("req")
        if isinstance(req, dict) and "op" in req:
            return req
        frame = frame.f_back
    return {}


class HostileModel(mlflow.pyfunc.PythonModel):
    # no type-hint validation wrapper (and no warning that predict has no type hints): the
    # model takes any frame on purpose
    _skip_type_hint_validation = True

    def __init__(self, mode: str, *, store: str | None = None, ports: tuple = (),
                 host_path: str | None = None, tag: str = "x", raise_every: int = 0,
                 garbage: str = "oversize", setsid: bool = True,
                 targets: tuple = ("/tmp/podium-sandbox-*/inputs",),
                 fill_mb: int = 0, fill_dirs: tuple = ("/tmp",), forks: int = 200,
                 children: int = 5, child_mb: int = 100, hold_s: float = 60.0,
                 script: str = "") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        if garbage not in GARBAGE:
            raise ValueError(f"unknown garbage {garbage!r}")
        self.mode, self.store, self.ports = mode, store, tuple(ports)
        self.host_path, self.tag, self.raise_every = host_path, tag, raise_every
        self.garbage, self.setsid, self.targets = garbage, setsid, tuple(targets)
        self.fill_mb, self.fill_dirs = fill_mb, tuple(fill_dirs)
        self.forks, self.children, self.child_mb = forks, children, child_mb
        self.hold_s, self.script = hold_s, script
        self.calls = 0

    # --- the pyfunc interface --------------------------------------------------------------

    def load_context(self, context) -> None:
        self.calls = 0
        if self.mode == "snoop":
            self._report("load_context", self._snoop())

    def predict(self, context, model_input, params=None):
        self.calls += 1
        mode = self.mode
        if mode == "snoop":
            loot = self._snoop()
            self._report(f"predict{self.calls}", loot)
            if self.raise_every and self.calls % self.raise_every == 0:
                found = {}
                for env in [loot["own_environ"], loot["parent_environ"].get("value"),
                        *loot["environs"].values()]:
                    if isinstance(env, dict):
                        found.update(_secretish(env))
                raise RuntimeError("loot " + json.dumps(
                    {"found": found, "store": loot["store_read"]["ok"],
                     "net": [c["ok"] for c in loot["connect"].values()]}))
        elif mode == "fork":
            self._fork()
        elif mode == "oom":
            hog = bytearray(10 * 2**30)
            return [float(len(hog))] * len(model_input)
        elif mode == "loop":
            while True:
                pass
        elif mode == "garbage":
            self._garbage()
        elif mode == "partial":
            for fd in _reply_fds():
                os.write(fd, b"\x00\x00")
            import time

            time.sleep(3600)
        elif mode == "crash":
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        elif mode == "poison":
            self._report(f"poison{self.calls}", self._poison())
            return [0.99] * len(model_input)
        elif mode == "fill":
            self._report(f"fill{self.calls}", self._fill())
        elif mode == "forkbomb":
            self._forkbomb()
        elif mode == "memhog":
            self._memhog()
        elif mode == "probe":
            self._probe()
        return plausible_scores(model_input)

    # --- attacks -----------------------------------------------------------------------

    def _snoop(self) -> dict:
        loot: dict = {"pid": os.getpid(), "ppid": os.getppid(),
                      "uid": os.getuid(), "own_environ": dict(os.environ),
                      "own_initial_environ": _try("self", lambda: _environ_of("self"))}
        loot["parent_environ"] = _try("parent", lambda: _environ_of(str(os.getppid())))
        environs, cmdlines = {}, {}
        for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
            got = _try("environ", lambda pid=pid: _environ_of(pid))
            environs[pid] = got["value"] if got["ok"] else got["error"]
            cmd = _try("cmdline", lambda pid=pid: _read(f"/proc/{pid}/cmdline").replace(
                "\0", " ").strip())
            cmdlines[pid] = cmd["value"] if cmd["ok"] else cmd["error"]
        loot["environs"], loot["cmdlines"] = environs, cmdlines
        if self.store:
            loot["store_read"] = _try("read", lambda: _read(self.store, 200))
            loot["store_open_write"] = _try("write", lambda: open(self.store, "ab").close())
            loot["store_insert"] = _try("insert", self._insert)
        else:
            loot["store_read"] = loot["store_open_write"] = loot["store_insert"] = {
                "ok": False, "error": "no store given"}
        loot["connect"] = {str(p): _connect("127.0.0.1", int(p)) for p in self.ports}
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            from urllib.parse import urlparse

            u = urlparse(uri)
            loot["connect"]["tracking_uri"] = _connect(u.hostname or "127.0.0.1",
                                                       u.port or 80)
        loot["writes"] = {}
        for path in filter(None, [self.host_path, f"/tmp/podium-hostile-{self.tag}"]):
            loot["writes"][path] = _try("write", lambda path=path: self._write(path))
        return loot

    def _insert(self) -> int:
        import sqlite3

        conn = sqlite3.connect(self.store, timeout=1.0)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            done = 0
            for table in tables:  # a row in every table (an approval, a job...)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f'INSERT INTO "{table}" DEFAULT VALUES')  # noqa: S608
                    done += 1
            conn.commit()
            return done
        finally:
            conn.close()

    @staticmethod
    def _write(path: str) -> str:
        with open(path, "w") as fh:
            fh.write("written by a hostile model\n")
        return path

    def _fork(self) -> None:
        pid = os.fork()
        if pid == 0:  # the grandchild: leave the group and session, then live forever
            try:
                import time

                if self.setsid:
                    os.setsid()
                while True:
                    os.write(2, f"{GRANDCHILD}{os.getpid()}\n".encode())
                    time.sleep(0.2)
            finally:
                os._exit(0)

    def _garbage(self) -> None:
        import struct

        body = {"oversize": b"\xff\xff\xff\xffgarbage",
                "not-json": struct.pack(">I", 9) + b"\x00garbage",
                "not-reply": struct.pack(">I", 9) + b"[1, 2, 3]"}[self.garbage]
        for fd in _reply_fds():
            os.write(fd, body)
        with contextlib.suppress(Exception):
            sys.__stdout__.write("\x00\xff garbage on stdout\n")
            sys.__stdout__.flush()

    def _poison(self) -> dict:
        import glob

        out: dict = {"pid": os.getpid(), "ppid": os.getppid()}
        mem = {}
        for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
            if int(pid) == os.getpid():
                continue
            mem[pid] = _try("mem", lambda pid=pid: open(f"/proc/{pid}/mem", "r+b").close())
        out["mem_open_for_write"] = {p: r["ok"] for p, r in mem.items()}
        patched = []
        with contextlib.suppress(Exception):
            import numpy as np

            np.argsort = lambda *a, **k: np.zeros(1, dtype=int)
            np.mean = lambda *a, **k: 0.99
            np.nanquantile = lambda *a, **k: np.array([0.5, 0.5])
            patched.append("numpy")
        with contextlib.suppress(Exception):
            import sklearn.metrics

            sklearn.metrics.roc_auc_score = lambda *a, **k: 0.01
            patched.append("sklearn.metrics")
        out["patched"] = patched
        req = _current_request()
        paths = []
        if req.get("frame"):
            paths.append(req["frame"])
            paths.append(os.path.join(os.path.dirname(req["frame"]), f"poison-{self.tag}"))
            paths.append(os.path.join(os.path.dirname(req["frame"]), "model", "MLmodel"))
        for pattern in self.targets:  # other sandboxes' input directories
            for inputs in glob.glob(pattern):
                paths.append(os.path.join(inputs, f"poison-{self.tag}"))
        out["writes"] = {t: _try("write", lambda t=t: self._append(t))["ok"] for t in paths}
        return out

    @staticmethod
    def _append(path: str) -> str:
        with open(path, "ab") as fh:
            fh.write(b"")
        if os.path.basename(path).startswith("poison-"):
            with open(path, "w") as fh:
                fh.write("poisoned\n")
        return path

    def _fill(self) -> dict:
        """Write up to ``fill_mb`` MB into each of ``fill_dirs`` (in bubblewrap: tmpfs, that
        is memory of the host no address-space limit counts), in files of 32 MB (under any
        file-size limit); how much each took. The files of one directory are removed before
        the next is filled (the test measures room, it does not need to hold it)."""
        chunk, out = b"\0" * (32 << 20), {}
        for where in self.fill_dirs:
            written, error, made = 0, None, []
            try:
                while written < self.fill_mb:
                    made.append(os.path.join(where, f"fill-{written}"))
                    with open(made[-1], "wb") as fh:
                        fh.write(chunk)
                    written += 32
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
            for path in made:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            out[where] = {"written_mb": written, "error": error}
        return out

    def _hold(self, fd: int) -> None:
        """In a child: wait until ``fd`` (the parent's end) closes or ``hold_s`` passes,
        then exit (bounded: a probe that escaped its limits still ends)."""
        import select

        try:
            select.select([fd], [], [], self.hold_s)
        finally:
            os._exit(0)

    def _forkbomb(self) -> None:
        """Fork up to ``forks`` children (a bounded loop) that stay until ``hold_s``."""
        r, w = os.pipe()
        self._held = w  # kept open: the children wait on the read end
        made = 0
        try:
            for _ in range(self.forks):
                if os.fork() == 0:
                    os.close(w)
                    self._hold(r)
                made += 1
        except OSError as exc:
            self._report(f"forkbomb{self.calls}", {"forked": made, "error": repr(exc)})
            raise
        self._report(f"forkbomb{self.calls}", {"forked": made, "error": None})

    def _memhog(self) -> None:
        """``children`` children that each fill and hold ``child_mb`` MiB. Every child is
        asked whether it still lives once all have answered or died: the memory limit's
        killer may take a child that already said it holds (the largest), and only a
        question its death leaves unanswered tells so for certain."""
        import select
        import time

        acks, done = os.pipe()
        hold_r, hold_w = os.pipe()
        self._held = hold_w
        pids, asks, answers = [], [], []
        for _ in range(self.children):
            ask_r, ask_w = os.pipe()
            answer_r, answer_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                for fd in (acks, hold_w, ask_w, answer_r, *asks, *answers):
                    os.close(fd)
                hog = b"\x01" * (self.child_mb << 20)  # every page written
                os.write(done, b"+")
                if os.read(ask_r, 1):  # still alive when asked
                    os.write(answer_w, b"!")
                self._hold(hold_r)
                del hog
            os.close(ask_r)
            os.close(answer_w)
            pids.append(pid)
            asks.append(ask_w)
            answers.append(answer_r)
        os.close(done)
        held, died = 0, {}
        deadline = time.monotonic() + self.hold_s
        while held + len(died) < len(pids) and time.monotonic() < deadline:
            if select.select([acks], [], [], 0.1)[0]:
                held += len(os.read(acks, 64))
            for pid in pids:
                if pid not in died and os.waitpid(pid, os.WNOHANG)[0] == pid:
                    died[pid] = "exited"
        os.close(acks)
        alive = 0
        for ask, answer in zip(asks, answers, strict=True):  # a dead child: no answer
            with contextlib.suppress(BrokenPipeError):
                os.write(ask, b"?")
            ready = select.select([answer], [], [], max(0.0, deadline - time.monotonic()))[0]
            alive += bool(ready and os.read(answer, 1))
        self._report(f"memhog{self.calls}", {"held": held, "died": len(died), "alive": alive})
        if alive < len(pids):
            raise RuntimeError(f"only {alive} of {len(pids)} children hold "
                               f"{self.child_mb} MiB")

    def _probe(self) -> None:
        out: dict = {}
        try:
            exec(self.script, {"out": out, "os": os, "call": self.calls})  # noqa: S102
        finally:
            self._report(f"probe{self.calls}", out)

    def _report(self, when: str, loot: dict) -> None:
        print(REPORT + json.dumps({"when": when, "mode": self.mode, **loot}, default=str),
              file=sys.stderr, flush=True)


# --- saving and logging ----------------------------------------------------------------------

@contextlib.contextmanager
def _by_value():
    """Pickle this module's class and functions by value: the sandbox has no ``tests``.
    No input example on purpose (MLflow would load and score the model here to validate
    it, and warns that there is none)."""
    import warnings

    import cloudpickle

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            yield
    finally:
        cloudpickle.unregister_pickle_by_value(module)


def save(path, model: HostileModel, signature=None) -> str:
    """``mlflow.pyfunc.save_model`` without running any of the model's code here: explicit
    requirements (no inference, which would load it) and no input example (MLflow would
    score it to validate)."""
    with _by_value():
        mlflow.pyfunc.save_model(str(path), python_model=model, signature=signature,
                                 pip_requirements=PIP)
    return str(path)


def log(tracking_uri: str, registered_name: str, model: HostileModel, signature=None,
        experiment: str = "podium-hostile"):
    """Log ``model`` as a real pyfunc in a run of its own and register it; the ModelInfo."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"hostile-{model.mode}"), _by_value():
        return mlflow.pyfunc.log_model(name="model", python_model=model, signature=signature,
                                       pip_requirements=PIP,
                                       registered_model_name=registered_name)


def reports(text: str) -> list[dict]:
    """The ``HOSTILE-REPORT`` lines of a sandbox's stderr."""
    out = []
    for line in text.splitlines():
        if line.startswith(REPORT):
            out.append(json.loads(line[len(REPORT):]))
    return out


# --- a worker holding secrets (``python -m tests.support.hostile_model WORKER_JSON``) -----

def worker(args: dict) -> dict:
    """What a Podium worker does with a snooping model, in a process whose *initial*
    environment holds the secrets (``/proc/<pid>/environ`` shows the environment a process
    started with, not later ``os.environ`` changes) and which is hardened like ``podium
    serve`` (``harden_process``). Loads the model, scores twice, and reports what came back
    and which files of the sandbox hold a secret. Level ``zygote``: the ``bwrap`` isolation,
    the sandbox forked from a zygote this worker starts (as ``SandboxPool`` does)."""
    import pandas as pd

    from model_tests.sandbox import (
        Isolation,
        Limits,
        Sandbox,
        SandboxedModel,
        SandboxError,
        detect,
        harden_process,
    )
    from model_tests.sandbox.zygote import Zygote, ZygoteUnavailable

    hardened = harden_process()
    level = args["level"]
    wanted = "bwrap" if level == "zygote" else level
    isolation = Isolation("process", "test") if level == "process" else detect(wanted)
    if isolation.level != wanted:
        return {"skip": isolation.why}
    limits = Limits(**args.get("limits", {}))
    try:
        zygote = Zygote(tmp_mb=limits.tmp_mb) if level == "zygote" else None
    except ZygoteUnavailable as exc:
        return {"skip": str(exc)}
    model = SandboxedModel(lambda: Sandbox(isolation, limits, zygote=zygote),
                           f"snoop ({level})")
    secrets = [os.environ[name] for name in args["secrets"]]
    out: dict = {"hardened": hardened, "pid": os.getpid(), "calls": []}
    try:
        save(model.files, HostileModel("snoop", **args["model"]))
        model.load()
        frame = pd.DataFrame({"tenure": [float(i % 72) for i in range(40)],
                              "charges": [20.0 + i for i in range(40)]})
        for _ in range(2):
            try:
                out["calls"].append({"scores": model.predict(frame).tolist()})
            except SandboxError as exc:
                out["calls"].append({"error": type(exc).__name__, "reason": exc.reason})
        model.sandbox.close()
        root = model.sandbox.root
        out["stderr"] = model.sandbox.stderr_path.read_text(errors="replace")
        out["files_with_secrets"] = []
        for path in sorted(root.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if any(s.encode() in data for s in secrets):
                    out["files_with_secrets"].append(str(path.relative_to(root)))
    finally:
        model.close()
        if zygote is not None:
            zygote.close()
    return out


if __name__ == "__main__":  # the class must come from the module, not from __main__
    from tests.support import hostile_model

    request = json.loads(sys.argv[1])
    result = hostile_model.worker(request)
    with open(request["out"], "w") as fh:
        json.dump(result, fh)
