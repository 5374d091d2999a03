"""Approvals from Slack: the request's message carries the buttons, a signed click by an
allowed user decides through the workflow's compare-and-set, the clicker gets an ephemeral
answer, and the message shows who decided. The fake Slack is reached by the real slack_sdk."""

import json
import re

from sqlalchemy import select

from tests.support.slack_rig import ALICE, BOB, EVE, awaiting
from webhook_server.store.schema import audit


def buttons(message):
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return actions[0]["elements"] if actions else []




def test_the_waiting_request_has_one_message_with_approve_and_reject(rig):
    rid = awaiting(rig)
    (parent,) = rig.fake.parents()
    approve, reject = buttons(parent)
    value = f"{rid}:{rig.state(rid).evidence_digest()}"  # a click approves what was shown
    assert (approve["action_id"], approve["style"], approve["value"]) == (
        "podium_approve", "primary", value)
    assert (reject["action_id"], reject["style"], reject["value"]) == (
        "podium_reject", "danger", value)
    assert approve["confirm"]["confirm"]["text"] == "Approve"  # asks before approving
    assert "confirm" not in reject  # Reject opens a modal asking why instead
    assert "churn v3 → Production" in parent["text"] and "awaiting_approval" in parent["text"]
    fields = " ".join(f["text"] for f in parent["blocks"][1]["fields"])
    assert "22/22 passed" in fields
    steps = [m["text"] for m in rig.fake.replies(parent["ts"])]
    assert steps[0].endswith("request received") and "comparison: roc_auc" in steps[-1]


def test_an_allowed_click_promotes_and_the_message_shows_who_decided(rig):
    rid = awaiting(rig)
    assert rig.click(rid, ALICE).status_code == 200
    rig.run_jobs()  # the click's job, then the promotion job
    row = rig.state(rid)
    assert (row.state, row.decided_by) == ("promoted", f"slack:{ALICE}")
    assert rig.registry.aliases["champion"] == "3"
    assert rig.registry.tags["3"]["podium.decided_by"] == f"slack:{ALICE}"
    rig.sender.flush()
    (parent,) = rig.fake.parents()
    assert buttons(parent) == [] and "promoted" in parent["text"]
    assert f"<@{ALICE}>" in json.dumps(parent["blocks"])
    assert rig.fake.ephemerals[-1]["user"] == ALICE
    assert "You approved request" in rig.fake.ephemerals[-1]["text"]
    with rig.svc.store.read() as conn:
        (entry,) = conn.execute(select(audit).where(audit.c.action == "approve")).all()
    assert entry.actor == f"slack:{ALICE}" and json.loads(entry.detail)["team"] == "T0PODIUM"


def test_a_reject_click_ends_the_request_and_the_champion_stays(rig):
    rid = awaiting(rig)
    digest = rig.state(rid).evidence_digest()
    assert rig.reject(rid, BOB, "holdout too small").status_code == 200
    assert rig.fake.views[-1]["view"]["private_metadata"] == f"{rid}:{digest}"
    row = rig.state(rid)
    assert (row.state, row.reason) == ("rejected",
                                       f"rejected by slack:{BOB}: holdout too small")
    assert rig.registry.aliases["champion"] == "1"
    rig.sender.flush()
    assert "You rejected request" in rig.fake.ephemerals[-1]["text"]
    assert buttons(rig.fake.parents()[0]) == []


def test_a_click_by_someone_not_allowed_changes_nothing(rig):
    rid = awaiting(rig)
    rig.click(rid, EVE)
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    (said,) = rig.fake.ephemerals
    assert said["user"] == EVE and said["text"].startswith(
        f"Nothing changed: slack:{EVE} is not an approver of churn (it maps to no person in "
        "the policy's people:, so it may read but never decide or operate) (who may: ")
    with rig.svc.store.read() as conn:
        (denied,) = conn.execute(select(audit).where(audit.c.action == "denied")).all()
    assert denied.actor == f"slack:{EVE}"
    assert len(buttons(rig.fake.parents()[0])) == 2  # still waiting for a real approver


def test_a_click_without_an_evidence_digest_is_answered_and_decides_nothing(rig):
    """A message posted before buttons carried the digest (value: the bare request id)."""
    rid = awaiting(rig)
    rig.click(rid, ALICE, value=str(rid))
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    (said,) = rig.fake.ephemerals
    assert said["user"] == ALICE and said["text"].startswith(
        f"Nothing changed: this message of request {rid} carries no evidence digest")
    with rig.svc.store.read() as conn:
        assert conn.execute(select(audit).where(audit.c.action == "approve")).all() == []


def test_a_double_click_and_a_late_click_say_who_decided_and_when(rig):
    rid = awaiting(rig)
    rig.click(rid, ALICE)
    rig.click(rid, ALICE)  # a double click: a second, distinct interaction
    rig.click(rid, BOB, action="reject")  # still waiting: the modal opens at once
    rig.run_jobs()
    assert rig.state(rid).state == "promoted"
    from tests.support.slack_rig import SIGNING
    from webhook_server.dev.fakes.slack import view_submission
    body, headers = view_submission(SIGNING, rig.fake.views[-1], BOB,
                                    {"reason": {"reason": "too late"}}, team=rig.fake.team_id)
    rig.client.post("/slack/interactions", data=body, headers=headers)  # BOB submits it
    rig.run_jobs()
    rig.sender.flush()
    texts = [e["text"] for e in rig.fake.ephemerals]
    assert texts[0].startswith(f"You approved request {rid}")
    assert all(f"already decided by slack:{ALICE} at" in t for t in texts[1:]), texts
    assert len(texts) == 3


def test_a_quorum_of_two_needs_two_different_people(rig):
    rig.set_policy({"approvers": [ALICE, BOB], "quorum": 2})
    rid = awaiting(rig)
    rig.click(rid, ALICE)
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.click(rid, ALICE)
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.click(rid, BOB)
    rig.run_jobs()
    assert rig.state(rid).state == "promoted"
    rig.sender.flush()
    texts = [e["text"] for e in rig.fake.ephemerals]
    assert texts[0] == f"You approved request {rid} (1 of 2); waiting for more approvals."
    assert "already approved" in texts[1] and "1 more approval" in texts[1]
    (parent,) = rig.fake.parents()
    replies = [m["text"] for m in rig.fake.replies(parent["ts"])]
    assert f"approved by <@{ALICE}> (1 of 2)" in replies


def test_members_of_the_policy_user_group_may_decide(rig):
    rig.set_policy({"approvers": [ALICE], "slack_usergroup": "S0REVIEW"})
    rig.fake.usergroups["S0REVIEW"] = [EVE]
    rid = awaiting(rig)
    rig.click(rid, EVE)
    rig.run_jobs()
    assert rig.state(rid).decided_by == f"slack:{EVE}"
    assert "usergroups.users.list" in rig.fake.calls


def test_a_click_on_an_unknown_request_is_answered_and_changes_nothing(rig):
    rig.click(999, ALICE)
    rig.run_jobs()
    rig.sender.flush()
    assert rig.fake.ephemerals[-1]["text"] == ("Request 999 does not exist; nothing was "
                                                "decided.")


def test_an_expired_approval_ends_rejected_and_the_buttons_go(rig):
    from datetime import timedelta

    from webhook_server.store.schema import utcnow

    rig.set_policy({"approvers": [ALICE], "expiry_hours": 1})
    rid = awaiting(rig)
    assert rig.workflow().expire_approvals(now=utcnow() + timedelta(hours=2)) == [rid]
    rig.run_jobs()
    rig.sender.flush()
    (parent,) = rig.fake.parents()
    assert buttons(parent) == [] and "rejected" in parent["text"]
    assert rig.fake.replies(parent["ts"])[-1]["text"].endswith("approval expired after 1 h")
    rig.click(rid, ALICE)
    rig.run_jobs()
    rig.sender.flush()
    assert re.fullmatch(
        rf"Nothing changed: request {rid} was already decided by policy at \S+ \S+ UTC "
        r"\(rejected: approval expired after 1 h\)\.", rig.fake.ephemerals[-1]["text"])


def test_an_approval_promotes_without_comparing_again_when_the_champion_did_not_move(rig):
    from tests.support.registry import comparison, passing
    from webhook_server.workflow import Gates

    compared = []

    def compare(model, challenger, champion):
        compared.append(champion)
        return comparison(challenger, champion)

    rig.workflow = lambda: rig.svc.use_gates(Gates(passing, compare))
    rid = awaiting(rig)
    assert rig.state(rid).compared_with == "1"
    rig.click(rid, ALICE)
    rig.run_jobs()
    assert rig.state(rid).state == "promoted" and compared == ["1"]
