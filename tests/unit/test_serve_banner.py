"""`podium serve` says UNSIGNED however insecure mode was set: the flag, or
PODIUM_INSECURE_NO_SIGNATURE in the environment (which the flag only sets)."""

import pytest
from click.testing import CliRunner

from webhook_server import serve as serve_module
from webhook_server.cli import main


@pytest.fixture
def no_processes(monkeypatch):
    """serve without gunicorn or a worker child: only its start-up lines."""
    ran = []
    monkeypatch.setattr(serve_module, "run_http", lambda *a, **k: ran.append("http"))
    monkeypatch.setattr(serve_module, "spawn_worker_process", lambda **k: None)
    monkeypatch.setattr(serve_module, "stop_process", lambda proc: None)
    return ran


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_unsigned_banner_shows_however_insecure_mode_was_set(tmp_path, no_processes,
                                                                 how):
    policy = tmp_path / "podium.yaml"
    policy.write_text("{}\n")
    env = {"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
           "PODIUM_POLICY": str(policy)}
    args = ["serve", "--no-worker", "--no-scheduler"]
    if how == "flag":
        args.append("--insecure-no-signature")
    else:
        env["PODIUM_INSECURE_NO_SIGNATURE"] = "true"
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert no_processes == ["http"]
    assert "UNSIGNED MLflow deliveries accepted" in result.stderr


def test_no_unsigned_banner_with_a_secret(tmp_path, no_processes):
    policy = tmp_path / "podium.yaml"
    policy.write_text("{}\n")
    env = {"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
           "PODIUM_POLICY": str(policy), "PODIUM_MLFLOW_WEBHOOK_SECRET": "s3cret"}
    result = CliRunner().invoke(main, ["serve", "--no-worker", "--no-scheduler"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "UNSIGNED" not in result.stderr


def test_the_worker_says_which_isolation_model_code_gets_and_who_requires_more(tmp_path,
                                                                              monkeypatch):
    """Forced to the same-user fallback, the worker says so, and warns that the models whose
    policy says `sandbox: required` will fail rather than run there."""
    monkeypatch.setattr(serve_module, "run_workers", lambda *a, **k: None)
    policy = tmp_path / "podium.yaml"
    policy.write_text("default: {sandbox: preferred}\nmodels:\n  churn: {sandbox: required}\n")
    env = {"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
           "PODIUM_POLICY": str(policy), "PODIUM_SANDBOX": "process"}
    result = CliRunner().invoke(main, ["worker"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "podium worker: model code isolation: process (same user as Podium" \
        in result.stderr
    assert ("podium worker: warning: the policy requires the bubblewrap sandbox "
            "(models.churn: sandbox: required); their requests will fail here") \
        in result.stderr


def test_a_sandbox_required_policy_refuses_to_run_model_code_without_bubblewrap():
    from model_tests.gates import CheckRunError, JudgeConfig, SandboxGates, SandboxPool
    from model_tests.isolation import Isolation

    pool = SandboxPool(Isolation("process", "test"), spares=0)
    gates = SandboxGates(pool, lambda name: JudgeConfig(sandbox_required=True))
    with pytest.raises(CheckRunError, match=r"requires the bubblewrap sandbox for churn "
                                            r"\(sandbox: required\).*model code was not run"
                       ) as err:
        gates.check("models:/churn/3")
    assert err.value.transient is False and pool.started == 0
    pool.close()
