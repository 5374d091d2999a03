"""pytest plugin: ``pytest model_tests --model-uri models:/churn/3 [--holdout F] [--policy F]``
runs one test per check (JUnit with ``--junitxml`` for GitLab). Without ``--model-uri`` the
tests skip, so a plain ``pytest`` of the repository does not need a model."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("podium model checks")
    group.addoption("--model-uri", help="model under test, e.g. models:/churn/3")
    group.addoption("--holdout", help="holdout CSV (default: the version's logged holdout)")
    group.addoption("--policy", help="policy file with the check thresholds")


@pytest.fixture(scope="session")
def model_under_test(request):
    uri = request.config.getoption("--model-uri")
    if not uri:
        pytest.skip("no --model-uri given")
    if os.environ.get("MLFLOW_TRACKING_URI"):
        import mlflow

        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(os.environ["MLFLOW_TRACKING_URI"])
    from model_tests.config import read_policy
    from model_tests.context import load, model_name

    judge = read_policy(request.config.getoption("--policy"), model_name(uri))
    m = load(uri, request.config.getoption("--holdout") or judge.holdout)
    return m, judge.thresholds
