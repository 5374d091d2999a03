"""The podium command, run in-process through click's runner with an explicit environment."""

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.support.signing import SECRET
from webhook_server.cli import main
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery


@pytest.fixture
def env(sqlite_url):
    return {"PODIUM_DATABASE_URL": sqlite_url, "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET}


def as_operator(env, tmp_path):
    """``env`` with a policy naming whoever runs the tests (cli:<OS account>) an operator:
    replaying and resending are for operators, and a missing policy refuses (fail closed)."""
    from webhook_server.core.identity import cli_actor

    policy = tmp_path / "podium.yaml"
    policy.write_text(f"people:\n  op: {{cli: {json.dumps(cli_actor()[4:])}}}\n"
                      "operators: [op]\n")
    return {**env, "PODIUM_POLICY": str(policy)}


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def seed(env):
    from webhook_server.core.settings import Settings
    from webhook_server.service.services import build

    svc = build(Settings(database_url=env["PODIUM_DATABASE_URL"]))
    svc.store.migrate()
    for i, target in enumerate(["Production", "Staging"], start=3):
        svc.intake.record(Delivery("mlflow", f"d-{i}", "model_version_tag.set", "{}",
                                   TransitionRequested("churn", str(i), target, "tag")))
    svc.close()


def test_requests_prints_a_table_and_json(env):
    seed(env)
    table = run(env, "requests")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:6] == ["id", "model", "version", "target", "origin", "state"]
    assert "Staging" in lines[2] and "Production" in lines[3]
    data = json.loads(run(env, "requests", "--json", "--model", "churn").output)
    assert [(r["version"], r["state"]) for r in data] == [("4", "queued"), ("3", "queued")]


def test_show_prints_the_history_and_fails_on_an_unknown_id(env):
    seed(env)
    shown = run(env, "show", "1")
    assert "request 1: churn v3 -> Production (tag), state queued" in shown.output
    missing = CliRunner().invoke(main, ["show", "42"], env=env)
    assert missing.exit_code == 1 and "no request 42" in missing.output


def test_jobs_and_replay_of_an_unknown_delivery(env, tmp_path):
    seed(env)
    assert "request:1" in run(env, "jobs").output
    result = CliRunner().invoke(main, ["replay", "nope"], env=as_operator(env, tmp_path))
    assert result.exit_code == 1 and "no stored delivery 'nope'" in result.output


def test_replay_and_resend_are_refused_to_someone_who_is_not_an_operator(env, tmp_path):
    seed(env)
    (tmp_path / "nobody.yaml").write_text("people:\n  op: {cli: somebody-else}\n"
                                          "operators: [op]\n")
    env = {**env, "PODIUM_POLICY": str(tmp_path / "nobody.yaml")}
    for args, action in ((["replay", "d-3"], "replay"), (["outbox", "--retry", "1"], "resend")):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 1, result.output
        assert f"may not {action}: only the policy's operators may" in result.output
        assert "(who may: op)" in result.output
    without = CliRunner().invoke(main, ["replay", "d-3"], env={
        **env, "PODIUM_POLICY": str(tmp_path / "absent.yaml")})
    assert without.exit_code == 1 and "the policy cannot be read (fail closed)" in \
        without.output


def test_config_lists_variables_without_revealing_secrets(env):
    out = run(env, "config").output
    assert re.search(r"PODIUM_MLFLOW_WEBHOOK_SECRET\s+\(set\)", out)
    assert re.search(r"SLACK_BOT_TOKEN\s+\(unset\)", out) and SECRET not in out


NO_SECRET = ("podium serve: refusing to start: PODIUM_MLFLOW_WEBHOOK_SECRET is not set (set "
             "it, or pass --insecure-no-signature to accept unsigned deliveries)")


def test_serve_refuses_to_start_without_a_webhook_secret(sqlite_url):
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", "serve"],
                          env={"PODIUM_DATABASE_URL": sqlite_url, "PATH": "",
                               "PODIUM_LOG_FORMAT": "text"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [NO_SECRET]


def test_with_json_logs_the_refusal_is_one_json_error_line(sqlite_url):
    """Not a terminal and no PODIUM_LOG_FORMAT: JSON, so a log platform parses every line."""
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", "serve"],
                          env={"PODIUM_DATABASE_URL": sqlite_url, "PATH": ""},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("ERROR", "podium",
                                                                      NO_SECRET)


def test_a_bad_setting_is_reported_in_one_line(sqlite_url):
    result = CliRunner().invoke(main, ["requests"], env={"PODIUM_DATABASE_URL": sqlite_url,
                                                         "PODIUM_JOB_LEASE": "x"})
    assert result.exit_code == 1 and "PODIUM_JOB_LEASE='x' is not a valid int" in result.output


def test_outbox_lists_notifications_and_requeues_a_dropped_one(env, tmp_path):
    seed(env)
    from webhook_server.core.settings import Settings
    from webhook_server.service.services import build
    from webhook_server.store import outbox as ob

    svc = build(Settings(database_url=env["PODIUM_DATABASE_URL"]))
    with svc.store.tx() as conn:
        ob.mark_failed(conn, 1, "slack chat_postMessage: channel_not_found", 0, dead=True)
    svc.close()
    table = run(env, "outbox", "--state", "dead").output
    assert "channel_not_found" in table and table.splitlines()[0].split()[:3] == [
        "id", "channel", "kind"]
    rows = json.loads(run(env, "outbox", "--json", "--channel", "slack").output)
    assert {r["key"] for r in rows} == {"request:1:created", "request:2:created"}
    operator = as_operator(env, tmp_path)  # resending is for operators
    assert "queued again: 1" in run(operator, "outbox", "--retry", "1").output
    assert json.loads(run(env, "outbox", "--json", "--state", "dead").output) == []
    missing = CliRunner().invoke(main, ["outbox", "--retry", "99"], env=operator)
    assert missing.exit_code == 1 and "notification 99 does not exist" in missing.output


def rollback_rig(env, tmp_path, monkeypatch):
    """churn: v1 then v2 made champion through Podium; cli:<OS account> may roll back. The
    CLI's workflow judges with stubs (a rollback runs no check), the worker's registry is in
    memory."""
    from podium_policy.policy import load_policy
    from tests.support.registry import MemoryRegistry, passing
    from webhook_server.core.identity import cli_actor
    from webhook_server.core.settings import Settings
    from webhook_server.service.services import Services, build
    from webhook_server.store import ledger
    from webhook_server.workflow import Gates, Workflow

    policy = tmp_path / "podium.yaml"
    policy.write_text(f"people:\n  ops: {{cli: {json.dumps(cli_actor()[4:])}}}\n"
                      "default:\n  rollback: {approvers: [ops]}\n")
    env = {**env, "PODIUM_POLICY": str(policy), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    monkeypatch.setattr(Services, "gates", property(lambda self: Gates(passing, None)))
    svc = build(Settings(database_url=env["PODIUM_DATABASE_URL"]))
    svc.store.migrate()
    with svc.store.tx() as conn:
        for old, new in ((None, "1"), ("1", "2")):
            ledger.record(conn, model="churn", alias="champion", from_version=old,
                          to_version=new, kind=ledger.PROMOTE, actor="policy")
    registry = MemoryRegistry({"champion": "2"})
    workflow = Workflow(svc.store, svc.queue, registry, load_policy(str(policy)),
                        Gates(passing, None))
    return env, svc, registry, workflow


def test_rollback_queues_the_request_and_waits_for_a_worker_to_run_it(env, tmp_path,
                                                                      monkeypatch):
    import threading

    from webhook_server.jobs.worker import Worker

    env, svc, registry, workflow = rollback_rig(env, tmp_path, monkeypatch)
    stop = threading.Event()
    worker = Worker(svc.queue, {"request": workflow.handle}, poll_s=0.01)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        out = run(env, "rollback", "churn", "--json", "--timeout", "30")
    finally:
        stop.set()
        thread.join(10)
        svc.close()
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert (data["from"], data["to"], data["state"]) == ("2", "1", "promoted")
    assert "queued" in out.stderr and "promoted" in out.stderr  # the states it passed
    assert registry.aliases["champion"] == "1"
    assert registry.tags["2"]["podium.status"] == "archived"


def test_rollback_with_no_worker_says_so_after_the_timeout_and_stays_queued(env, tmp_path,
                                                                            monkeypatch):
    from webhook_server.store import transition_requests as reqs

    env, svc, registry, _ = rollback_rig(env, tmp_path, monkeypatch)
    out = run(env, "rollback", "churn", "--timeout", "0.3")
    assert out.exit_code == 1
    assert "is still queued after 0.3 s: is a worker running" in out.output
    with svc.store.read() as conn:
        [req] = reqs.list_(conn)
    svc.close()
    assert (req.origin, req.version, req.state) == ("rollback", "1", "queued")
    assert registry.aliases["champion"] == "2"  # nothing ran here: a worker will
    refused = run(env, "rollback", "churn", "--to", "7")
    assert refused.exit_code == 1 and "v7 of churn was never champion" in refused.output
