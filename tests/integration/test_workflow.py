"""The promotion workflow against a real MLflow server with real webhooks and trained models:
first champion, a better challenger promoted (old champion archived), a worse one rejected,
approval, rollback, compare-and-set, and gate enforcement for every check."""


import mlflow
import pytest

from model_tests.checks import REGISTRY, CheckReport, CheckResult
from tests.support.podium_runs import CHECKS, api, cli, me, request, tags_when
from tests.support.settings import DEFAULT_POLICY
from tests.support.waiting import wait_for
from training.train import Dataset, TrainConfig, train

pytestmark = pytest.mark.integration
GOOD = {"num_leaves": 15, "learning_rate": 0.05, "n_estimators": 200, "min_child_samples": 50}
MODEST = {"num_leaves": 3, "learning_rate": 0.1, "n_estimators": 15, "min_child_samples": 100}
WEAK = {"num_leaves": 63, "learning_rate": 0.3, "n_estimators": 300, "min_child_samples": 5}


@pytest.fixture(scope="module")
def versions(mlflow_server):
    """churn-wf v1 (modest), v2 (overfit: worse), v3 (good, more data: better); trained once
    for the module."""
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    out = {}
    for key, n, seed, params in (("v1", 4000, 1, MODEST), ("v2", 4000, 1, WEAK),
                                 ("v3", 12000, 1, GOOD)):
        result = train(Dataset.synthetic(n, seed), TrainConfig(model_name="churn-wf",
                                                               params=params, seed=seed),
                       tracking_uri=mlflow_server.url)
        out[key] = result.version
    return out




@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """The policy's holdout, pinned: 2,000 customers no version trained on (as in the demo).
    The policies here also relax the single-row latency budget: these tests are about the
    workflow, and a loaded 2-core CI machine is not a latency benchmark."""
    from model_tests.holdout import sha256_of
    from training.data import generate

    path = tmp_path_factory.mktemp("judge") / "judge.csv"
    generate(2000, seed=4242)[0].to_csv(path, index=False)
    return f"  holdout: {path}\n  holdout_sha256: {sha256_of(path)}\n"


def reset_registry(client, model, versions):
    """A clean registry, v1 champion: no request left for the reconciler to pick up."""
    for v in versions.values():
        if "transition_request" in client.get_model_version(model, v).tags:
            client.delete_model_version_tag(model, v, "transition_request")
    if "challenger" in client.get_registered_model(model).aliases:
        client.delete_registered_model_alias(model, "challenger")
    client.set_registered_model_alias(model, "champion", versions["v1"])


def final(server, request_id):
    return wait_for(lambda: (r := api(server, f"/requests/{request_id}"))["state"]
                    in ("promoted", "rejected", "failed", "staged", "awaiting_approval")
                    and r, timeout=240, what=f"request {request_id} to settle")


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


def test_approval_path_and_deciding_twice(podium, podium_env, versions, mlflow_client,
                                          tmp_path, judge):
    m = "churn-wf"
    reset_registry(mlflow_client, m, versions)
    policy = tmp_path / "podium.yaml"
    # `podium approve` acts as cli:<OS account>
    policy.write_text(f"people:\n  ops: {{cli: {me()}}}\n"
                      + CHECKS + judge
                      + "models:\n  churn-wf:\n    approval: {targets: [Production], "
                      "approvers: [ops], allow_self_approval: true}\n")
    env = {**podium_env, "PODIUM_POLICY": str(policy)}
    server = podium(PODIUM_POLICY=str(policy))
    hook = cli(env, "webhook", "register", "--url", f"{server.url}/webhooks/mlflow",
               "--name", "podium-wf")
    assert hook.returncode == 0
    waiting = final(server, request(mlflow_client, server, m, versions["v3"], "production"))
    assert waiting["state"] == "awaiting_approval"
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
    seen = waiting["evidence_sha256"]  # what the approver looked at (podium show prints it)
    assert f"evidence: {seen}" in cli(env, "show", str(waiting["id"])).stdout
    ok = cli(env, "approve", str(waiting["id"]), "--evidence", seen)
    assert ok.returncode == 0, ok.stderr
    done = wait_for(lambda: (r := api(server, f"/requests/{waiting['id']}"))["state"]
                    == "promoted" and r, timeout=60, what="promotion after approval")
    assert done["decided_by"].startswith("cli:")
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v3"]
    again = cli(env, "approve", str(waiting["id"]), "--evidence", seen)
    assert again.returncode == 1
    assert f"request {waiting['id']} was already decided by cli:" in again.stderr
    assert "(promoted: champion v" in again.stderr


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


SLACK_SIGNING = "e2e-signing-secret"
ALICE, BOB = "U0ALICE", "U0BOB"


def slack_settings(slack, policy, **extra) -> dict[str, str]:
    """`podium serve`'s environment for the fake Slack ``slack`` and a policy file."""
    return {"PODIUM_POLICY": str(policy), "SLACK_BOT_TOKEN": slack.token,
            "SLACK_CHANNEL": slack.channel_id, "SLACK_SIGNING_SECRET": SLACK_SIGNING,
            "SLACK_TEAM_ID": slack.team_id,
            "PODIUM_SLACK_API_URL": slack.api_url, **extra}


def test_slack_approval_and_rejection_end_to_end_through_a_slack_outage(
        podium, podium_env, versions, mlflow_client, tmp_path, judge):
    """Real MLflow, real webhooks, `podium serve` and a fake Slack spoken to by slack_sdk.
    Slack is down while the request is checked and compared; once it is back, every message
    arrives once and in order; a signed click by an allowed user promotes, the message
    shows who decided. Then a second request is rejected from Slack and the champion stays."""
    from webhook_server.dev.fakes.slack import FakeSlack

    m = "churn-wf"
    reset_registry(mlflow_client, m, versions)
    policy = tmp_path / "podium.yaml"
    policy.write_text(f"people:\n  ops: {{cli: {me()}}}\n" + CHECKS + judge
                      + "models:\n  churn-wf:\n    approval:\n      targets: [Production]\n"
                      f"      approvers: [{ALICE}, {BOB}]\n      quorum: 2\n"
                      "    rollback: {approvers: [ops]}\n")  # `podium rollback` below
    with FakeSlack(token="xoxb-e2e") as slack:
        slack.down = True
        slack_env = slack_settings(slack, policy, PODIUM_NOTIFY_MAX_BACKOFF="1")
        env = {**podium_env, **slack_env}
        server = podium(**slack_env)
        assert cli(env, "webhook", "register", "--url", f"{server.url}/webhooks/mlflow",
                   "--name", "podium-slack").returncode == 0
        rid = request(mlflow_client, server, m, versions["v3"], "Production")
        assert final(server, rid)["state"] == "awaiting_approval"
        assert slack.messages == []  # nothing reached Slack while it was down
        slack.down = False
        parent = wait_for(lambda: [p for p in slack.parents()
                                   if any(b["type"] == "actions" for b in p["blocks"])],
                          timeout=60, what="the request message with buttons")[0]
        click = slack.click(server.url, SLACK_SIGNING, rid, ALICE, message_ts=parent["ts"])
        assert click.status_code == 200, click.text
        wait_for(lambda: any("(1 of 2); waiting" in e["text"] for e in slack.ephemerals),
                 timeout=30, what="Alice's approval counted, one more needed")
        assert api(server, f"/requests/{rid}")["state"] == "awaiting_approval"
        slack.click(server.url, SLACK_SIGNING, rid, ALICE, message_ts=parent["ts"])  # again
        wait_for(lambda: any("already approved" in e["text"] for e in slack.ephemerals),
                 timeout=30, what="Alice's second click refused")
        slack.click(server.url, SLACK_SIGNING, rid, BOB, message_ts=parent["ts"])
        done = wait_for(lambda: (r := api(server, f"/requests/{rid}"))["state"] == "promoted"
                        and r, timeout=60, what="promotion after the Slack click")
        assert done["decided_by"] == f"slack:{BOB}"  # the approval that made the quorum
        assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v3"]
        assert tags_when(mlflow_client, m, versions["v3"], "promoted")[
            "podium.decided_by"] == f"slack:{BOB}"
        wait_for(lambda: "promoted" in parent["text"] and not any(
            b["type"] == "actions" for b in parent["blocks"]), timeout=30,
            what="the message updated to promoted, without buttons")
        wait_for(lambda: any("You approved request" in e["text"] and "promoting" in e["text"]
                             for e in slack.ephemerals), timeout=30, what="Bob's answer")
        replies = wait_for(lambda: (r := [x["text"] for x in slack.replies(parent["ts"])])
                           and "promoted" in r[-1] and r, timeout=30, what="the last reply")
        keys = [msg["metadata"]["event_payload"]["key"] for msg in slack.messages]
        assert len(keys) == len(set(keys))  # every message once
        steps = ["request received", "running the model checks", "checks passed",
                 "comparison: roc_auc", f"approved by <@{ALICE}> (1 of 2)",
                 f"moving the alias (decided by <@{BOB}>)", "promoted by"]
        positions = [next(i for i, text in enumerate(replies) if step in text)
                     for step in steps]
        assert positions == sorted(positions), replies  # in the order it happened
        assert len(slack.parents()) == 1

        # A second request, rejected from Slack: the champion stays.
        assert cli(env, "rollback", m, "--to", versions["v1"]).returncode == 0
        rid2 = request(mlflow_client, server, m, versions["v3"], "production")
        assert final(server, rid2)["state"] == "awaiting_approval"
        second = wait_for(lambda: [p for p in slack.parents()[1:]
                                   if any(b["type"] == "actions" for b in p["blocks"])],
                          timeout=60, what="the second request's message")[0]
        slack.click(server.url, SLACK_SIGNING, rid2, BOB, action="reject",
                    message_ts=second["ts"])
        modal = wait_for(lambda: slack.views and slack.views[-1], timeout=30,
                         what="the modal asking why")  # Reject asks for a reason first
        assert modal["view"]["private_metadata"] == \
            f"{rid2}:{api(server, f'/requests/{rid2}')['evidence_sha256']}"
        assert slack.submit_view(server.url, SLACK_SIGNING, BOB,
                                 {"reason": {"reason": "not before the audit"}}).status_code == 200
        wait_for(lambda: api(server, f"/requests/{rid2}")["state"] == "rejected",
                 timeout=60, what="rejection from Slack")
        assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
        wait_for(lambda: "rejected" in second["text"], timeout=30, what="message updated")


def test_an_approval_nobody_gives_expires_and_the_slack_message_says_so(
        podium, podium_env, versions, mlflow_client, tmp_path, judge):
    """Real MLflow and `podium serve`: the policy's expiry (here 2 s) ends the request
    rejected, the buttons go, a late click is told so, and the champion stays."""
    from webhook_server.dev.fakes.slack import FakeSlack

    m = "churn-wf"
    reset_registry(mlflow_client, m, versions)
    policy = tmp_path / "podium.yaml"
    policy.write_text(CHECKS + judge
                      + "models:\n  churn-wf:\n    approval:\n      targets: [Production]\n"
                      f"      approvers: [{ALICE}]\n      expiry_hours: 0.0006\n")
    with FakeSlack(token="xoxb-e2e") as slack:
        slack_env = slack_settings(slack, policy, PODIUM_APPROVAL_CHECK_INTERVAL="1")
        server = podium(**slack_env)
        assert cli({**podium_env, **slack_env}, "webhook", "register", "--url",
                   f"{server.url}/webhooks/mlflow", "--name", "podium-expiry").returncode == 0
        rid = request(mlflow_client, server, m, versions["v3"], "Production")
        done = wait_for(lambda: (r := api(server, f"/requests/{rid}"))["state"] == "rejected"
                        and r, timeout=240, what="the approval to expire")
        assert done["reason"] == "approval expired after 0.0006 h"
        assert "awaiting_approval" in [h["to"] for h in done["history"]]
        assert mlflow_client.get_model_version_by_alias(m, "champion").version == versions["v1"]
        assert tags_when(mlflow_client, m, versions["v3"], "rejected")[
            "podium.reason"] == "approval expired after 0.0006 h"
        (parent,) = wait_for(lambda: [p for p in slack.parents() if "rejected" in p["text"]],
                             timeout=30, what="the message updated to rejected")
        assert not any(b["type"] == "actions" for b in parent["blocks"])
        # a late click on the buttons as they were shown (with their evidence digest)
        import requests

        from webhook_server.dev.fakes.slack import click_request

        body, headers = click_request(SLACK_SIGNING, rid, ALICE, team=slack.team_id,
                                      channel=slack.channel_id, message_ts=parent["ts"],
                                      value=f"{rid}:{done['evidence_sha256']}")
        assert requests.post(f"{server.url}/slack/interactions", data=body, headers=headers,
                             timeout=10).status_code == 200
        wait_for(lambda: any("(rejected: approval expired" in e["text"]
                             for e in slack.ephemerals), timeout=30, what="the late click")
