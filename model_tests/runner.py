"""Run the checks: in this process (``podium check``, the pytest plugin) or in a child
process with a timeout and without Podium's secrets (the service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from model_tests.checks import CheckResult, run_checks
from model_tests.context import load


class CheckRunError(Exception):
    """The check run itself failed (timeout, crash): ``transient`` says whether to retry."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def thresholds_from_policy(policy_path: str | None, model_name: str | None) -> dict:
    from webhook_server.policy import load_policy

    return load_policy(policy_path).for_model(model_name or "")["checks"]


def holdout_from_policy(policy_path: str | None, model_name: str | None) -> str | None:
    from webhook_server.policy import load_policy

    return load_policy(policy_path).for_model(model_name or "").get("holdout")


def check_in_process(model_uri: str, holdout: str | None = None,
                     policy_path: str | None = None) -> list[CheckResult]:
    name = model_uri[len("models:/"):].split("/")[0].split("@")[0] \
        if model_uri.startswith("models:/") else None
    m = load(model_uri, holdout or holdout_from_policy(policy_path, name))
    return run_checks(m, thresholds_from_policy(policy_path, name))


def compare_in_process(model: str, challenger: str, champion: str | None,
                       holdout: str | None = None, policy_path: str | None = None):
    """Score both versions on the same holdout and apply the policy's decision rule."""
    import mlflow
    from mlflow import MlflowClient

    from model_tests.compare import compare
    from model_tests.context import read_holdout
    from webhook_server.policy import load_policy

    cfg = load_policy(policy_path).for_model(model)
    if champion is None:
        champion = MlflowClient().get_model_version_by_alias(
            model, cfg["aliases"]["champion"]).version
    run_id = MlflowClient().get_model_version(model, challenger).run_id
    frame, labels = read_holdout(holdout or cfg.get("holdout"), run_id)

    def scores(version: str):
        out = mlflow.pyfunc.load_model(f"models:/{model}/{version}").predict(frame)
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 else out

    return compare(labels, scores(challenger), scores(str(champion)),
                   challenger_version=str(challenger), champion_version=str(champion),
                   threshold=cfg["checks"]["decision_threshold"],
                   comparison=cfg["comparison"],
                   business=cfg["business"])


def safe_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything that looks like a secret."""
    from webhook_server.settings import SECRET_ENV_VARS

    env = dict(os.environ if environ is None else environ)
    for key in list(env):
        upper = key.upper()
        if key in SECRET_ENV_VARS or any(w in upper for w in ("SECRET", "TOKEN", "PASSWORD")):
            del env[key]
    return env


def check_in_child(model_uri: str, *, tracking_uri: str, policy_path: str | None = None,
                   timeout_s: float = 600) -> list[CheckResult]:
    """What the service runs: ``python -m model_tests check`` without Podium's secrets."""
    out = _child(["check", model_uri], tracking_uri, policy_path, timeout_s)
    return [CheckResult(**r) for r in out["checks"]]


def compare_in_child(model: str, challenger: str, champion: str, *, tracking_uri: str,
                     policy_path: str | None = None, timeout_s: float = 600):
    from model_tests.compare import Comparison, Side

    out = _child(["compare", model, "--challenger", challenger, "--champion", champion],
                 tracking_uri, policy_path, timeout_s)
    out["challenger"], out["champion"] = Side(**out["challenger"]), Side(**out["champion"])
    return Comparison(**out)


def _child(args: list[str], tracking_uri: str, policy_path: str | None,
           timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "model_tests", *args, "--json"]
    if policy_path:
        cmd += ["--policy", policy_path]
    env = safe_env()
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise CheckRunError(f"checks did not finish within {timeout_s:.0f} s",
                            transient=False) from None
    if proc.returncode not in (0, 1):
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise CheckRunError(f"{args[0]} run failed (exit {proc.returncode}): {tail[0][:300]}",
                            transient="ConnectionError" in proc.stderr
                            or "Max retries exceeded" in proc.stderr)
    return json.loads(proc.stdout)
