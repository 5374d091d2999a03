"""The approval paths against a real MLflow server with real webhooks and trained models:
approval and deciding twice, Slack approval and rejection through a Slack outage, and an
approval nobody gives expiring (its own module, so it runs beside test_workflow.py)."""

import pytest

from tests.support.podium_runs import CHECKS, api, cli, me, request, tags_when
from tests.support.waiting import wait_for
from tests.support.workflow_versions import final, reset_registry

MLFLOW_SEED = "churn-wf"  # the trained versions of tests/support/workflow_versions.py
pytestmark = pytest.mark.integration



@pytest.mark.timeout(600)  # a whole story of process starts: 3-4.5 min beside 3 workers
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
