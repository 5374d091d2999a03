"""Run the checks: in this process (``podium check``, the pytest plugin) or, for the
service, in a warm child process (``python -m model_tests serve``) with a timeout and
without Podium's secrets."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading

import numpy as np

from model_tests.checks import CheckResult, run_checks
from model_tests.context import load


class CheckRunError(Exception):
    """The check run itself failed (timeout, crash): ``transient`` says whether to retry."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _model_policy(policy_path: str | None, model_name: str | None):
    """The model's policy (``None``: the built-in defaults). The service warned about
    deprecated entries at start; the evaluator child does not repeat it for each check."""
    from webhook_server.policy import load_policy

    return load_policy(policy_path, warn=False).for_model(model_name or "")


def thresholds_from_policy(policy_path: str | None, model_name: str | None) -> dict:
    """The check thresholds as a plain dict (the checks take dicts)."""
    return _model_policy(policy_path, model_name).checks.as_dict()


def holdout_from_policy(policy_path: str | None, model_name: str | None) -> str | None:
    return _model_policy(policy_path, model_name).holdout


def check_in_process(model_uri: str, holdout: str | None = None,
                     policy_path: str | None = None) -> list[CheckResult]:
    return check_loaded(model_uri, holdout, policy_path)[0]


def check_loaded(model_uri: str, holdout: str | None = None, policy_path: str | None = None):
    """The check results and the loaded model under test (the evaluator reuses it)."""
    name = model_uri[len("models:/"):].split("/")[0].split("@")[0] \
        if model_uri.startswith("models:/") else None
    m = load(model_uri, holdout or holdout_from_policy(policy_path, name))
    return run_checks(m, thresholds_from_policy(policy_path, name)), m


def compare_in_process(model: str, challenger: str, champion: str | None,
                       holdout: str | None = None, policy_path: str | None = None, *,
                       load_model=None, load_holdout=None):
    """Score both versions on the same holdout and apply the policy's decision rule.
    ``load_model(uri)`` / ``load_holdout(path, run_id)`` let the evaluator reuse what the
    checks already loaded."""
    import mlflow
    from mlflow import MlflowClient

    from model_tests.compare import compare
    from model_tests.context import read_holdout

    cfg = _model_policy(policy_path, model)
    if champion is None:
        champion = MlflowClient().get_model_version_by_alias(
            model, cfg.aliases.champion).version
    run_id = MlflowClient().get_model_version(model, challenger).run_id
    frame, labels = (load_holdout or read_holdout)(holdout or cfg.holdout, run_id)
    load_model = load_model or mlflow.pyfunc.load_model

    def scores(version: str):
        out = load_model(f"models:/{model}/{version}").predict(frame)
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 else out

    return compare(labels, scores(challenger), scores(str(champion)),
                   challenger_version=str(challenger), champion_version=str(champion),
                   threshold=cfg.checks.decision_threshold,
                   comparison=cfg.comparison.as_dict(),
                   business=cfg.business.as_dict())


def safe_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that looks like a secret."""
    from webhook_server.settings import SECRET_ENV_VARS

    env = dict(os.environ if environ is None else environ)
    for key in list(env):
        upper = key.upper()
        if key in SECRET_ENV_VARS or any(w in upper for w in ("SECRET", "TOKEN", "PASSWORD")):
            del env[key]
    return env


class Evaluator:
    """A warm ``python -m model_tests serve`` child without Podium's secrets."""

    def __init__(self, tracking_uri: str, policy_path: str | None = None) -> None:
        env = safe_env()
        env["MLFLOW_TRACKING_URI"] = tracking_uri
        self.policy_path = policy_path
        self.proc = subprocess.Popen([sys.executable, "-m", "model_tests", "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True, bufsize=1)
        self._ready = False

    def _read(self, timeout_s: float, what: str) -> dict:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            alive = self.proc.poll() is None
            self.close()
            if alive:
                raise CheckRunError(f"{what} did not finish within {timeout_s:.0f} s",
                                    transient=False)
            raise CheckRunError(f"{what}: the evaluator exited ({self.proc.returncode}); "
                                "see the worker's log", transient=True)
        return json.loads(line)

    def call(self, op: str, timeout_s: float = 600, **args) -> dict:
        if not self._ready:
            self._read(120, "starting the evaluator")
            self._ready = True
        try:
            self.proc.stdin.write(json.dumps({"op": op, "policy": self.policy_path,
                                              **args}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            raise CheckRunError(f"{op}: the evaluator is gone", transient=True) from None
        reply = self._read(timeout_s, op)
        if not reply["ok"]:
            raise CheckRunError(f"{op} run failed: {reply['error']}",
                                transient=reply["transient"])
        return reply["result"]

    def check(self, model_uri: str, timeout_s: float = 600) -> list[CheckResult]:
        out = self.call("check", timeout_s, uri=model_uri)
        return [CheckResult(**r) for r in out["checks"]]

    def compare(self, model: str, challenger: str, champion: str, timeout_s: float = 600):
        from model_tests.compare import Comparison, Side

        out = self.call("compare", timeout_s, model=model, challenger=challenger,
                        champion=champion)
        out["challenger"], out["champion"] = Side(**out["challenger"]), Side(**out["champion"])
        return Comparison(**out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class EvaluatorPool:
    """Keeps one evaluator warm so a request does not wait for the imports. Each request
    takes a fresh one (its own process); the next spare is started by the caller once the
    checks are done (``warm``), so its 3.5 s of imports never compete with the checks'
    latency measurements."""

    def __init__(self, tracking_uri: str, policy_path: str | None = None) -> None:
        self.tracking_uri, self.policy_path = tracking_uri, policy_path
        self._spare: Evaluator | None = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start the spare now (the worker does at start) so the first request does not
        wait for the imports either."""
        with self._lock:
            if self._spare is None:
                self._spare = Evaluator(self.tracking_uri, self.policy_path)

    def take(self) -> Evaluator:
        with self._lock:
            evaluator = self._spare or Evaluator(self.tracking_uri, self.policy_path)
            self._spare = None
        return evaluator

    def close(self) -> None:
        with self._lock:
            if self._spare is not None:
                self._spare.close()
                self._spare = None


class EvaluatorGates:
    """Checks and comparisons of one request in one warm evaluator (per worker thread):
    ``check`` takes a fresh evaluator, ``compare`` of the same version reuses it (the
    challenger is loaded once), ``release`` ends it when the job is done."""

    def __init__(self, pool: EvaluatorPool, timeout_s: float = 600) -> None:
        self.pool, self.timeout_s = pool, timeout_s
        self._local = threading.local()

    def check(self, model_uri: str) -> list[CheckResult]:
        self.release()
        evaluator = self.pool.take()
        self._local.session = (model_uri, evaluator)
        try:
            return evaluator.check(model_uri, self.timeout_s)
        finally:
            self.pool.warm()  # the next request's evaluator imports while we compare

    def compare(self, model: str, challenger: str, champion: str):
        session = getattr(self._local, "session", None)
        if session and session[0] == f"models:/{model}/{challenger}":
            evaluator = session[1]
        else:
            self.release()
            evaluator = self.pool.take()
            self._local.session = (f"models:/{model}/{challenger}", evaluator)
            self.pool.warm()
        return evaluator.compare(model, challenger, champion, self.timeout_s)

    def release(self) -> None:
        session = getattr(self._local, "session", None)
        self._local.session = None
        if session:
            session[1].close()
