"""The promotion workflow against a real MLflow server with real webhooks and trained models:
first champion, a better challenger promoted (old champion archived), a worse one rejected,
approval, rollback, compare-and-set, and gate enforcement for every check; the evidence
bundles of those decisions (verify, tampering, policy diff)."""


from pathlib import Path

import mlflow
import pandas as pd
import pytest

from model_tests.checks import REGISTRY, CheckReport, CheckResult
from tests.support.evidence import decide, policy_file
from tests.support.podium_runs import CHECKS, api, cli, me, request, tags_when
from tests.support.settings import DEFAULT_POLICY, make_settings, pg_schema
from tests.support.waiting import wait_for
from tests.support.workflow_versions import final
from webhook_server.service.evidence import verify
from webhook_server.service.services import build

MLFLOW_SEED = "churn-wf"  # the trained versions of tests/support/workflow_versions.py
pytestmark = pytest.mark.integration



@pytest.mark.timeout(600)  # a whole story of process starts: 3-4.5 min beside 3 workers
def test_promotion_rejection_challenger_alias_and_rollback(podium, podium_env, versions,
                                                           mlflow_client, tmp_path, judge):
    # The overfit v2 passes every check here so that it is the comparison that rejects it.
    policy = tmp_path / "podium.yaml"
    # `podium rollback` acts as cli:<OS account>: a person the policy lets roll back
    policy.write_text(f"people:\n  ops: {{cli: {me()}}}\n" + CHECKS + judge
                      + "  rollback: {approvers: [ops]}\n")
    podium_env = {**podium_env, "PODIUM_POLICY": str(policy)}
    server = podium(PODIUM_POLICY=str(policy))
    hook = cli(podium_env, "webhook", "register", "--url", f"{server.url}/webhooks/mlflow",
               "--name", "podium-wf")
    assert hook.returncode == 0, hook.stderr
    m = "churn-wf"

    first = final(server, request(mlflow_client, server, m, versions["v1"]))
    assert (first["state"], first["reason"]) == ("promoted", "first champion")
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
    tags = tags_when(mlflow_client, m, versions["v1"], "promoted")
    assert tags["podium.decided_by"] == "policy"
    assert tags["podium.checks"] == f"{len(REGISTRY)}/{len(REGISTRY)} passed"

    weak = final(server, request(mlflow_client, server, m, versions["v2"]))
    assert weak["state"] == "rejected" and weak["reason"].startswith("loses the comparison")
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
    assert "loses" in mlflow_client.get_model_version(m, versions["v2"]).tags[
        "podium.comparison"]

    mlflow_client.set_registered_model_alias(m, "challenger", versions["v3"])
    rows = wait_for(lambda: [r for r in api(server, f"/requests?model={m}")["requests"]
                             if r["version"] == versions["v3"]], what="alias request")
    better = final(server, rows[0]["id"])
    assert better["state"] == "promoted", better["reason"]
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v3"]
    tags_when(mlflow_client, m, versions["v1"], "archived")
    report = mlflow.artifacts.download_artifacts(
        run_id=mlflow_client.get_model_version(m, versions["v3"]).run_id,
        artifact_path=f"podium/request-{better['id']}.md", dst_path=str(tmp_path))
    with open(report) as f:
        assert "Comparison on" in f.read()

    back = cli(podium_env, "rollback", m)
    assert back.returncode == 0, back.stderr
    assert f"champion v{versions['v3']} -> v{versions['v1']}" in back.stdout
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
    forward = cli(podium_env, "rollback", m, "--to", versions["v3"])
    assert forward.returncode == 0
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v3"]


class OneFailingCheck:
    def __init__(self, failing: str):
        self.failing = failing

    def check(self, model_uri):
        return CheckReport(tuple(
            CheckResult(name, category, name != self.failing, 1, 1,
                        "failed on purpose" if name == self.failing else "ok")
            for name, (category, _) in REGISTRY.items()))

    def compare(self, *args):
        raise AssertionError("a version that failed a check must never be compared")


@pytest.mark.parametrize("failing", sorted(REGISTRY))
def test_a_version_failing_any_one_check_is_rejected_and_the_champion_stays(
        failing, versions, mlflow_server, sqlite_url, mlflow_client):
    from tests.support.settings import make_settings
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery
    from webhook_server.jobs.queue import Job
    from webhook_server.service.services import build
    from webhook_server.workflow import Gates

    svc = build(make_settings(sqlite_url, mlflow_tracking_uri=mlflow_server.url))
    svc.store.migrate()
    m = "churn-wf"
    mlflow_client.set_registered_model_alias(m, "champion", versions["v1"])
    result = svc.intake.record(Delivery("api", f"gate-{failing}", "api.request", "{}",
                                        TransitionRequested(m, versions["v3"], "Production",
                                                            "api")))
    fake = OneFailingCheck(failing)
    workflow = svc.use_gates(Gates(check=fake.check, compare=fake.compare))
    workflow.handle(Job(1, f"request:{result.request_id}", "request",
                        {"request_id": result.request_id}, 1, 6, "test"))
    with svc.store.read() as conn:
        from webhook_server.store import transition_requests as reqs

        row = reqs.get(conn, result.request_id)
    svc.close()
    assert (row.state, row.reason) == ("rejected", f"failed checks: {failing}")
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
    tags = tags_when(mlflow_client, m, versions["v3"], "rejected")
    assert tags[f"podium.check.{failing}"] == "fail"


def test_podium_check_passes_a_good_version_and_fails_one_without_description(
        versions, mlflow_server, mlflow_client):
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url}
    good = cli(env, "check", f"models:/churn-wf/{versions['v1']}", "--policy", DEFAULT_POLICY)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert f"{len(REGISTRY)}/{len(REGISTRY)} passed" in good.stdout
    mlflow_client.update_model_version("churn-wf", versions["v2"], description="")
    bad = cli(env, "check", f"models:/churn-wf/{versions['v2']}", "--json",
              "--policy", DEFAULT_POLICY)
    assert bad.returncode == 1
    import json

    failed = {c["name"] for c in json.loads(bad.stdout)["checks"] if not c["passed"]}
    assert "description" in failed


def test_the_champion_moving_during_the_comparison_is_compared_again_in_mlflow(
        versions, mlflow_server, sqlite_url, mlflow_client):
    """Real aliases: while v3 is compared with v1, someone makes v2 champion; Podium must
    compare v3 with v2 before moving the alias, never promote on the stale comparison."""
    from model_tests.runner import compare_in_process
    from tests.support.settings import make_settings
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery
    from webhook_server.jobs.queue import Job
    from webhook_server.service.services import build
    from webhook_server.store import ledger
    from webhook_server.workflow import Gates

    m = "churn-wf"
    mlflow_client.set_registered_model_alias(m, "champion", versions["v1"])
    compared = []

    def compare(model, challenger, champion):
        compared.append(champion)
        if len(compared) == 1:  # a release engineer promotes v2 by hand meanwhile
            mlflow_client.set_registered_model_alias(m, "champion", versions["v2"])
        return compare_in_process(model, challenger, champion, svc.judge_config(model))

    svc = build(make_settings(sqlite_url, mlflow_tracking_uri=mlflow_server.url))
    svc.store.migrate()
    rid = svc.intake.record(Delivery("api", "cas", "api.request", "{}", TransitionRequested(
        m, versions["v3"], "Production", "api"))).request_id
    passing = OneFailingCheck(failing=None)
    svc.use_gates(Gates(check=passing.check, compare=compare)).handle(
        Job(1, f"request:{rid}", "request", {"request_id": rid}, 1, 6, "test"))
    with svc.store.read() as conn:
        entries = ledger.entries(conn, m)
    svc.close()
    assert compared == [versions["v1"], versions["v2"]]
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v3"]
    # the hand-made move is in the ledger as such, then Podium's own
    assert [(e["kind"], e["to_version"]) for e in entries] == [("external", versions["v2"]),
                                                              ("promote", versions["v3"])]
    assert entries[-1]["from_version"] == versions["v2"]




def test_a_request_run_is_one_span_tree_of_steps_gates_and_mlflow_calls(
        versions, mlflow_server, sqlite_url, mlflow_client):
    from tests.support.settings import make_settings
    from tests.support.tracing import in_memory_spans, parent_of
    from webhook_server.core import tracing
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery
    from webhook_server.jobs.queue import Job
    from webhook_server.service.services import build
    from webhook_server.workflow import Gates

    m, failing = "churn-wf", sorted(REGISTRY)[0]
    mlflow_client.set_registered_model_alias(m, "champion", versions["v1"])
    with in_memory_spans() as exported:
        svc = build(make_settings(sqlite_url, mlflow_tracking_uri=mlflow_server.url))
        svc.store.migrate()
        result = svc.intake.record(Delivery("api", "traced-1", "api.request", "{}",
                                            TransitionRequested(m, versions["v3"],
                                                                "Production", "api")))
        fake = OneFailingCheck(failing)
        workflow = svc.use_gates(Gates(check=fake.check, compare=fake.compare))
        with tracing.span("job request", kind="consumer"):  # as the worker runs it
            workflow.handle(Job(1, f"request:{result.request_id}", "request",
                                {"request_id": result.request_id}, 1, 6, "test"))
        svc.close()
    spans = exported.get_finished_spans()
    named = {s.name: s for s in spans}
    job, queued, checking = named["job request"], named["step queued"], named["step checking"]
    assert {s.context.trace_id for s in spans} == {job.context.trace_id}
    assert parent_of(queued) == parent_of(checking) == job.context.span_id
    assert parent_of(named["sandbox check"]) == checking.context.span_id
    assert dict(checking.attributes) == {
        "podium.request_id": result.request_id, "podium.model": m,
        "podium.version": versions["v3"], "podium.target": "Production",
        "podium.state_after": "rejected"}
    calls = [s for s in spans if s.name.startswith("mlflow ")]
    lookup = next(s for s in calls if s.name == "mlflow get_model_version")
    assert parent_of(lookup) == queued.context.span_id and lookup.kind.name == "CLIENT"
    assert (lookup.attributes["podium.model"], lookup.attributes["podium.version"]) == (
        m, versions["v3"])
    # each state written on the version by the step that moved it: one span per tag
    tags = [s for s in calls if s.name == "mlflow set_model_version_tag"]
    assert tags and {parent_of(s) for s in tags} <= {
        job.context.span_id, queued.context.span_id, checking.context.span_id}


# --- evidence bundles (issue 26): the real decisions above kept as bundles, verified from
# the bundle alone on SQLite and PostgreSQL, a changed score found as tampered, and
# `podium policy diff` over them. In this module so that they share its trained versions.

M = "churn-wf"


def _service(url, mlflow_server, policy):
    svc = build(make_settings(url, mlflow_tracking_uri=mlflow_server.url, policy_path=policy))
    svc.store.migrate()
    return svc


@pytest.fixture(scope="module")
def decided(versions, judge, mlflow_server, tmp_path_factory):
    """On SQLite: v3 beats the champion v1 (promoted), then the overfit v2 loses to v3
    (rejected)."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("evidence")
    policy = policy_file(root / "podium.yaml", CHECKS + judge)
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    client.set_registered_model_alias(M, "champion", versions["v1"])
    url = f"sqlite:///{root / 'podium.db'}"
    svc = _service(url, mlflow_server, policy)
    promoted, rejected = decide(svc, M, versions["v3"]), decide(svc, M, versions["v2"])
    yield {"svc": svc, "promoted": promoted, "rejected": rejected, "policy": policy,
           "root": root, "client": client,
           "env": {"PODIUM_DATABASE_URL": url, "MLFLOW_TRACKING_URI": mlflow_server.url,
                   "PODIUM_POLICY": policy}}
    svc.close()


def test_a_promotion_and_a_rejection_verify_from_their_bundles_alone(decided):
    promoted, rejected = decided["promoted"], decided["rejected"]
    assert (promoted.state, rejected.state) == ("promoted", "rejected"), rejected.reason
    for req in (promoted, rejected):
        assert req.bundle_uri.endswith(
            f"podium/evidence/request-{req.id}/{req.bundle_sha256[:16]}")
        assert req.bundle_sha256 in req.evidence_digest() or req.approval_evidence()[
            "bundle_sha256"] == req.bundle_sha256
    svc = decided["svc"]
    with svc.store.read() as conn:
        from webhook_server.store import ledger

        moved = ledger.applied_for(conn, promoted.id)
    assert moved["bundle_sha256"] == promoted.bundle_sha256  # the ledger row references it
    run_id = rejected.bundle_uri[len("runs:/"):].split("/", 1)[0]
    listed = [f.path for f in decided["client"].list_artifacts(run_id, "podium/evidence")]
    with svc.store.read() as conn:
        from webhook_server.store import transition_requests as reqs

        row_before = reqs.get(conn, rejected.id)
    result = verify(svc.store, svc.registry, rejected.id)
    assert result.verified, result.differences
    with svc.store.read() as conn:  # nothing written: the request row, the artifacts
        assert reqs.get(conn, rejected.id) == row_before
    assert [f.path for f in decided["client"].list_artifacts(run_id, "podium/evidence")] \
        == listed
    assert "latency_p95" in result.recorded_checks  # not recomputable: kept, and said so
    out = cli(decided["env"], "verify", str(promoted.id))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"verified: request {promoted.id}")


def test_a_bundle_with_one_score_changed_is_reported_as_tampered(decided, tmp_path):
    import mlflow

    svc, req, client = decided["svc"], decided["rejected"], decided["client"]
    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=req.bundle_uri, dst_path=str(tmp_path / "got"),
        tracking_uri=svc.registry.tracking_uri))
    scores = pd.read_parquet(local / "scores.parquet")
    original = local / "original.parquet"
    scores.to_parquet(original, index=False)
    run_id, path = req.bundle_uri[len("runs:/"):].split("/", 1)
    scores.loc[0, "challenger"] = 1.0 - scores.loc[0, "challenger"]
    changed = tmp_path / "scores.parquet"
    scores.to_parquet(changed, index=False)
    client.log_artifact(run_id, str(changed), path)
    try:
        result = verify(svc.store, svc.registry, req.id, cache=str(tmp_path / "cache"))
        out = cli(decided["env"], "verify", str(req.id))
    finally:
        client.log_artifact(run_id, str(local / "scores.parquet"), path)
    assert (result.verified, result.tampered) == (False, True)
    assert result.differences[0].startswith("tampered: scores.parquet changed")
    assert out.returncode == 1 and out.stdout.startswith(f"tampered: request {req.id}")


def test_policy_diff_replays_the_real_decisions(decided, tmp_path):
    """In process (the command's exit codes and table: tests/unit/service/test_policy_diff)."""
    from podium_policy.check import load_policy
    from webhook_server.service.policy_diff import diff

    svc, policy = decided["svc"], load_policy(decided["policy"], warn=False)
    same = diff(svc.store, svc.registry, policy, policy, model=M)
    assert len(same) == 2 and not any(r.changed for r in same)
    assert {r.then for r in same} == {"promote", "reject"}
    floor = policy_file(tmp_path / "floor.yaml", Path(decided["policy"]).read_text().replace(
        "checks: {", "checks: {roc_auc: 0.99, "))
    rows = {r.request: r for r in diff(svc.store, svc.registry, policy,
                                       load_policy(floor, warn=False), model=M)}
    row = rows[decided["promoted"].id]
    assert (row.then, row.now, row.changed) == ("promote", "reject", True)
    assert row.figure.startswith("check roc_auc: holdout roc_auc")
    assert "latency_p95" in row.recorded_checks
    assert not rows[decided["rejected"].id].changed


@pytest.mark.postgres
def test_a_decision_verifies_from_its_bundle_on_postgresql(versions, judge, mlflow_server,
                                                           tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    client.set_registered_model_alias(M, "champion", versions["v3"])
    policy = policy_file(tmp_path / "podium.yaml", CHECKS + judge)
    with pg_schema() as url:
        svc = _service(url, mlflow_server, policy)
        try:
            req = decide(svc, M, versions["v2"])
            result = verify(svc.store, svc.registry, req.id)
        finally:
            svc.close()
    assert req.state == "rejected" and req.bundle_sha256
    assert result.verified, result.differences
