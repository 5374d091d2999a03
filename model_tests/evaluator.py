"""``python -m model_tests serve``: a warm, secret-free evaluator for one request.

The service starts it ahead of time (imports of MLflow, scikit-learn and LightGBM cost
about 3.5 s, more than the checks themselves), then sends it the request's ``check`` and
``compare`` as JSON lines on stdin and reads JSON lines back. A model artifact is code, so
an evaluator serves one request and exits: the challenger loaded for the checks is reused
by the comparison, nothing is shared with the next request. Anything the model or MLflow
prints goes to stderr; replies use the original stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time


def warm_up() -> None:
    import lightgbm  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import skops.io  # noqa: F401

    import model_tests.checks  # noqa: F401
    import model_tests.compare  # noqa: F401


def is_transient(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("ConnectionError", "Max retries exceeded",
                                   "Connection refused", "503 Service Unavailable"))


class Session:
    """The models and holdouts this request has loaded, by URI."""

    def __init__(self) -> None:
        self.models: dict[str, object] = {}
        self.holdouts: dict[tuple, tuple] = {}

    def check(self, uri: str, holdout: str | None, policy: str | None) -> dict:
        from model_tests.runner import check_loaded

        results, m = check_loaded(uri, holdout, policy)
        if m.model is not None and m.version:
            self.models[f"models:/{m.name}/{m.version}"] = m.model
        if m.holdout is not None and m.run_id:
            self.holdouts[(holdout, m.run_id)] = (m.holdout, m.labels)
        return {"checks": [r.as_json() for r in results]}

    def compare(self, model: str, challenger: str, champion: str | None,
                holdout: str | None, policy: str | None) -> dict:
        from model_tests.runner import compare_in_process

        return compare_in_process(model, challenger, champion, holdout, policy,
                                  load_model=self._model, load_holdout=self._holdout).as_json()

    def _model(self, uri: str):
        if uri not in self.models:
            import mlflow

            self.models[uri] = mlflow.pyfunc.load_model(uri)
        return self.models[uri]

    def _holdout(self, path: str | None, run_id: str | None):
        if (path, run_id) not in self.holdouts:
            from model_tests.context import read_holdout

            self.holdouts[(path, run_id)] = read_holdout(path, run_id)
        return self.holdouts[(path, run_id)]


def serve() -> int:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr
    started = time.perf_counter()
    warm_up()
    replies.write(json.dumps({"ready": True,
                              "warm_s": round(time.perf_counter() - started, 3)}) + "\n")
    session = Session()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            op = req.pop("op")
            if op == "check":
                result = session.check(req["uri"], req.get("holdout"), req.get("policy"))
            elif op == "compare":
                result = session.compare(req["model"], req["challenger"], req.get("champion"),
                                         req.get("holdout"), req.get("policy"))
            else:
                raise ValueError(f"unknown op {op!r}")
            reply = {"ok": True, "result": result}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000],
                     "transient": is_transient(exc)}
        replies.write(json.dumps(reply, default=str) + "\n")
    return 0
