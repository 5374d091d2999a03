from pathlib import Path

import pytest

from model_tests.runner import CheckRunError, Evaluator, safe_env


def test_the_child_environment_carries_no_secrets():
    env = safe_env({"PATH": "/usr/bin", "MLFLOW_TRACKING_URI": "http://m",
                    "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                    "PODIUM_MLFLOW_WEBHOOK_SECRET": "w", "PODIUM_API_TOKEN": "t",
                    "GITLAB_TOKEN": "g", "AWS_SECRET_ACCESS_KEY": "a", "DB_PASSWORD": "p"})
    assert env == {"PATH": "/usr/bin", "MLFLOW_TRACKING_URI": "http://m"}


@pytest.fixture
def evaluator(monkeypatch):
    """A real warm evaluator started from an environment that holds Podium's secrets."""
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-leak", "PODIUM_MLFLOW_WEBHOOK_SECRET":
                        "whsec-leak", "SLACK_SIGNING_SECRET": "sign-leak"}.items():
        monkeypatch.setenv(name, value)
    ev = Evaluator("http://127.0.0.1:9")
    yield ev
    ev.close()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_the_evaluator_process_does_not_see_slack_or_webhook_secrets(evaluator):
    environ = Path(f"/proc/{evaluator.proc.pid}/environ").read_bytes()
    for leak in (b"xoxb-leak", b"whsec-leak", b"sign-leak", b"SLACK_BOT_TOKEN"):
        assert leak not in environ
    assert b"MLFLOW_TRACKING_URI=http://127.0.0.1:9" in environ


def test_an_unknown_operation_is_a_clear_permanent_error(evaluator):
    with pytest.raises(CheckRunError, match="unknown op 'explode'") as err:
        evaluator.call("explode")
    assert err.value.transient is False
    assert evaluator.proc.poll() is None  # still serving the request's next call


def test_a_call_past_its_timeout_kills_the_evaluator(evaluator):
    with pytest.raises(CheckRunError, match="check did not finish within 0 s"):
        evaluator._read(0.001, "check")  # before it is even warm: nothing arrives in time
    assert evaluator.proc.poll() is not None  # killed, not left running


def test_the_evaluator_exits_when_the_service_goes_away(evaluator):
    evaluator.proc.stdin.close()  # what the worker's death looks like to the child
    assert evaluator.proc.wait(timeout=60) == 0
