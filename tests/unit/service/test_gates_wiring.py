"""The composition root hands the workflow the judge's answers and its "no verdict" errors
as the gate protocol's own types (the workflow never imports model_tests)."""

import pytest

from model_tests.gates import CheckRunError
from tests.support.registry import passing
from webhook_server.service.services import _gate
from webhook_server.workflow import GateFailed, TransientGateError


def raising(transient: bool):
    def call(*args):
        raise CheckRunError("the champion v1 could not be scored", transient=transient)
    return call


def test_a_permanent_check_run_error_is_gate_failed_with_the_reason():
    with pytest.raises(GateFailed) as err:
        _gate(raising(False))("churn", "2", "1")
    assert err.value.reason == "the champion v1 could not be scored"
    assert not isinstance(err.value, TransientGateError)


def test_a_transient_check_run_error_retries():
    with pytest.raises(TransientGateError, match="could not be scored"):
        _gate(raising(True))("models:/churn/2")


def test_answers_and_other_errors_pass_as_they_are():
    assert _gate(passing)("models:/churn/2") == passing("models:/churn/2")

    def down(uri):
        raise ConnectionError("MLflow did not answer")

    with pytest.raises(ConnectionError):
        _gate(down)("models:/churn/2")
