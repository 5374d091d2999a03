"""`podium serve` says UNSIGNED however insecure mode was set: the flag, or
PODIUM_INSECURE_NO_SIGNATURE in the environment (which the flag only sets)."""

import pytest
from click.testing import CliRunner

from webhook_server.cli import main
from webhook_server.web import serve as serve_module


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
    from model_tests.config import JudgeConfig
    from model_tests.gates import CheckRunError, SandboxGates
    from model_tests.sandbox import Isolation, SandboxPool

    pool = SandboxPool(Isolation("process", "test"), spares=0)
    gates = SandboxGates(pool, lambda name: JudgeConfig(sandbox_required=True))
    with pytest.raises(CheckRunError, match=r"requires the bubblewrap sandbox for churn "
                                            r"\(sandbox: required\).*model code was not run"
                       ) as err:
        gates.check("models:/churn/3")
    assert err.value.transient is False and pool.started == 0
    pool.close()


# --- the limit mechanism: a cgroup per sandbox, or per-process limits only -----------------

POLICY_LIMITS = ("default: {sandbox: preferred}\nmodels:\n  churn: {sandbox: required}\n"
                 "  anywhere:\n    sandbox: required\n"
                 "    sandbox_limits: {accept_per_process: true}\n")


def _worker(tmp_path, monkeypatch, **env):
    monkeypatch.setattr(serve_module, "run_workers", lambda *a, **k: None)
    policy = tmp_path / "podium.yaml"
    policy.write_text(POLICY_LIMITS)
    env = {"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
           "PODIUM_POLICY": str(policy), **env}
    result = CliRunner().invoke(main, ["worker"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_the_worker_says_its_sandboxes_have_per_process_limits_only_without_a_cgroup(
        tmp_path, monkeypatch):
    nowhere = tmp_path / "no-cgroups"
    err = _worker(tmp_path, monkeypatch, PODIUM_SANDBOX_CGROUP_ROOT=str(nowhere))
    assert (f"podium worker: limits: per-process only (no writable cgroup: {nowhere} does "
            "not exist)\n") in err
    # the models that refuse it are named; the one that accepts it knowingly is not
    assert ("podium worker: warning: the policy requires a sandbox cgroup (models.churn: "
            "sandbox: required); their requests will fail here unless "
            "sandbox_limits.accept_per_process: true\n") in err


def test_the_worker_says_the_cgroup_limits_of_its_sandboxes(tmp_path, monkeypatch):
    from model_tests.sandbox import detect_cgroups as detect

    found = detect()
    if not found.available:
        pytest.skip(f"no sandbox cgroup on this machine: {found.why}")
    err = _worker(tmp_path, monkeypatch, PODIUM_SANDBOX_PIDS="128")
    assert (f"podium worker: limits: cgroup {found.version} (memory 4096 MiB, pids 128, "
            "cpu shares 512)\n") in err
    assert "sandbox cgroup" not in err


def test_sandbox_required_refuses_to_run_model_code_without_a_cgroup_in_one_line():
    from model_tests.config import JudgeConfig
    from model_tests.gates import CheckRunError, SandboxGates
    from model_tests.sandbox import Cgroups, Isolation, SandboxPool

    pool = SandboxPool(Isolation("bwrap", "test"), spares=0,
                       cgroups=Cgroups(None, "test: no cgroup"))
    gates = SandboxGates(pool, lambda name: JudgeConfig(sandbox_required=True))
    with pytest.raises(CheckRunError) as err:
        gates.check("models:/churn/3")
    assert str(err.value) == (
        "the policy requires a sandbox cgroup for churn (sandbox: required) and this worker "
        "has limits: per-process only (no writable cgroup: test: no cgroup): model code was "
        "not run (sandbox_limits.accept_per_process: true accepts that)")
    assert err.value.transient is False and pool.started == 0
    pool.close()


def test_accepting_per_process_limits_lets_model_code_run_without_a_cgroup(tmp_path):
    import pandas as pd

    from model_tests.config import JudgeConfig
    from model_tests.gates import SandboxGates
    from model_tests.sandbox import Cgroups, Limits, SandboxedModel, SandboxPool, detect
    from podium_policy.policy import SandboxLimits
    from tests.support import hostile_model as hm

    isolation = detect("bwrap")
    if isolation.level != "bwrap":
        pytest.skip(f"bubblewrap does not work here: {isolation.why}")
    pool = SandboxPool(isolation, Limits(memory_mb=2048, timeout_s=60), spares=0,
                       cgroups=Cgroups(None, "test: no cgroup"))
    config = JudgeConfig(sandbox_required=True,
                         sandbox_limits=SandboxLimits(accept_per_process=True))
    gates = SandboxGates(pool, lambda name: config)
    try:
        cfg = gates._config("churn")  # what check/compare/score ask before any model code
        model = SandboxedModel(lambda: pool.take(cfg.sandbox_limits), "honest")
        try:
            hm.save(model.files, hm.HostileModel("honest"))
            model.load()
            frame = pd.DataFrame({"tenure": [1.0, 5.0, 9.0], "charges": [20.0, 30.0, 40.0]})
            assert model.predict(frame).tolist() == pytest.approx(hm.plausible_scores(frame))
            assert model.sandbox.cgroup is None
        finally:
            model.close()
    finally:
        pool.close()
