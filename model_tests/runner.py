"""Run the checks in this process: ``podium check``, ``podium compare``, ``python -m
model_tests`` and the pytest plugin, on a machine and models the caller trusts. The service
never does this: it runs model code in sandboxes (``gates.py``). The caller passes what the
policy says (``config.JudgeConfig``)."""

from __future__ import annotations

import numpy as np

from model_tests.checks import CheckResult, run_checks
from model_tests.config import JudgeConfig
from model_tests.context import load


def check_in_process(model_uri: str, judge: JudgeConfig,
                     holdout: str | None = None) -> list[CheckResult]:
    m = load(model_uri, holdout or judge.holdout)
    return run_checks(m, judge.thresholds)


def compare_in_process(model: str, challenger: str, champion: str | None, judge: JudgeConfig,
                       holdout: str | None = None):
    """Score both versions on the same holdout and apply the policy's decision rule."""
    import mlflow
    from mlflow import MlflowClient

    from model_tests.compare import compare
    from model_tests.context import read_holdout

    if champion is None:
        champion = MlflowClient().get_model_version_by_alias(
            model, judge.champion_alias).version
    run_id = MlflowClient().get_model_version(model, challenger).run_id
    frame, labels = read_holdout(holdout or judge.holdout, run_id)

    def scores(version: str):
        out = mlflow.pyfunc.load_model(f"models:/{model}/{version}").predict(frame)
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 else out

    return compare(labels, scores(challenger), scores(str(champion)),
                   challenger_version=str(challenger), champion_version=str(champion),
                   threshold=judge.decision_threshold, comparison=judge.comparison,
                   business=judge.business, seed_from=(model,))
