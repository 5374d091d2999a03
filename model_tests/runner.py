"""Run the checks in this process: ``podium check``, ``podium compare``, ``python -m
model_tests`` and the pytest plugin, on a machine and models the caller trusts. The service
never does this: it runs model code in sandboxes (``gates.py``)."""

from __future__ import annotations

import numpy as np

from model_tests.checks import CheckResult, run_checks
from model_tests.context import load, model_name


def _model_policy(policy_path: str | None, model_name: str | None):
    """The model's policy (``None``: the built-in defaults), read without repeating its
    deprecation lines for each check."""
    from webhook_server.policy import load_policy

    return load_policy(policy_path, warn=False).for_model(model_name or "")


def thresholds_from_policy(policy_path: str | None, model_name: str | None) -> dict:
    """The check thresholds as a plain dict (the checks take dicts)."""
    return _model_policy(policy_path, model_name).checks.as_dict()


def holdout_from_policy(policy_path: str | None, model_name: str | None) -> str | None:
    return _model_policy(policy_path, model_name).holdout


def check_in_process(model_uri: str, holdout: str | None = None,
                     policy_path: str | None = None) -> list[CheckResult]:
    name = model_name(model_uri)
    m = load(model_uri, holdout or holdout_from_policy(policy_path, name))
    return run_checks(m, thresholds_from_policy(policy_path, name))


def compare_in_process(model: str, challenger: str, champion: str | None,
                       holdout: str | None = None, policy_path: str | None = None):
    """Score both versions on the same holdout and apply the policy's decision rule."""
    import mlflow
    from mlflow import MlflowClient

    from model_tests.compare import compare
    from model_tests.context import read_holdout

    cfg = _model_policy(policy_path, model)
    if champion is None:
        champion = MlflowClient().get_model_version_by_alias(
            model, cfg.aliases.champion).version
    run_id = MlflowClient().get_model_version(model, challenger).run_id
    frame, labels = read_holdout(holdout or cfg.holdout, run_id)

    def scores(version: str):
        out = mlflow.pyfunc.load_model(f"models:/{model}/{version}").predict(frame)
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 else out

    return compare(labels, scores(challenger), scores(str(champion)),
                   challenger_version=str(challenger), champion_version=str(champion),
                   threshold=cfg.checks.decision_threshold,
                   comparison=cfg.comparison.as_dict(),
                   business=cfg.business.as_dict(), seed_from=(model,))
