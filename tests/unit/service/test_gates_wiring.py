"""The composition root hands the workflow the judge's answers and its "no verdict" errors
as the gate protocol's own types (the workflow never imports model_tests)."""

import pytest

from model_tests.gates import SANDBOX_RETRY_S, CheckRunError, _needs_a_sandbox
from model_tests.sandbox import SandboxUnavailable
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


def test_no_sandbox_now_retries_after_a_short_wait_and_limits_not_applied_fail():
    """A machine that could not start a sandbox is asked again ``SANDBOX_RETRY_S`` later
    (not after the queue's doubling backoff); a model whose limits cannot be applied fails
    with the reason."""
    def take(transient):
        @_needs_a_sandbox
        def check(uri):
            raise SandboxUnavailable("a sandbox could not start: out of memory", transient)
        return _gate(check)

    with pytest.raises(TransientGateError) as err:
        take(True)("models:/churn/2")
    assert err.value.retry_after_s == SANDBOX_RETRY_S
    assert err.value.reason == "a sandbox could not start: out of memory"
    with pytest.raises(GateFailed) as err:
        take(False)("models:/churn/2")
    assert not isinstance(err.value, TransientGateError)


def test_a_transient_error_without_a_wait_keeps_the_queue_backoff():
    with pytest.raises(TransientGateError) as err:
        _gate(raising(True))("models:/churn/2")
    assert err.value.retry_after_s is None
