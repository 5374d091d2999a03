"""Only the configured workspace decides (``team.id`` and ``user.team_id`` both), and text
from outside never becomes Slack markup: ``<!channel>`` or a disguised link in a
``transition_request`` value is posted escaped, while Podium's own links and mentions work."""

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from tests.support.signing import mlflow_headers, tag_set
from tests.support.slack_rig import ALICE, SIGNING
from webhook_server.adapters.notify import blocks
from webhook_server.dev.fakes.slack import click_payload, sign
from webhook_server.intake.sources.slack import SlackSource
from webhook_server.jobs.queue import list_jobs
from webhook_server.store import outbox as ob
from webhook_server.store.counters import read
from webhook_server.store.records import Request

EVIL = "<!channel> <https://evil.example|Approve here>"
ESCAPED = "&lt;!channel&gt; &lt;https://evil.example|Approve here&gt;"


def slack_jobs(rig):
    with rig.svc.store.read() as conn:
        return [j for j in list_jobs(conn) if j["kind"] == "slack_action"]


def click(rig, payload):
    body = urlencode({"payload": json.dumps(payload)})
    return rig.client.post("/slack/interactions", data=body, headers=sign(SIGNING, body))


# --- the workspace -----------------------------------------------------------------------

@pytest.mark.parametrize("team, user_team, message", [
    ("T0EVIL", "T0EVIL", "workspace T0EVIL is not allowed to decide here"),
    ("T0EVIL", None, "workspace T0EVIL is not allowed to decide here"),
    ("T0PODIUM", "T0EVIL",
     f"user {ALICE} belongs to workspace T0EVIL, which is not allowed to decide here"),
])
def test_clicks_from_another_workspace_or_by_its_users_are_refused(rig, team, user_team,
                                                                   message):
    payload = click_payload(1, ALICE, team=team)
    if user_team is None:
        payload["user"].pop("team_id")
    else:
        payload["user"]["team_id"] = user_team
    resp = click(rig, payload)
    assert (resp.status_code, resp.json) == (403, {"error": message})
    assert slack_jobs(rig) == []
    with rig.svc.store.read() as conn:
        assert read(conn, "rejected_signatures") == {"slack|unknown_workspace": 1}


def test_a_click_with_both_ids_of_the_workspace_is_taken(rig):
    assert click(rig, click_payload(1, ALICE, team=rig.fake.team_id)).status_code == 200
    assert len(slack_jobs(rig)) == 1


def test_without_a_configured_workspace_no_click_is_taken(rig):
    rig.svc.slack_source = SlackSource(SIGNING, team_id=None)
    resp = click(rig, click_payload(1, ALICE, team=rig.fake.team_id))
    assert resp.status_code == 403
    assert resp.json["error"].startswith("SLACK_TEAM_ID is not set")
    assert slack_jobs(rig) == []


# --- escaping ----------------------------------------------------------------------------

def mrkdwn_texts(message) -> list[str]:
    """Every string Slack reads as mrkdwn in a posted message: the top-level text and
    every mrkdwn text object in its blocks (plain_text is never parsed)."""
    out = [message["text"]]

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return out


def test_a_transition_request_value_with_slack_markup_is_posted_escaped(rig):
    body = tag_set(value=EVIL)
    resp = rig.client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    assert resp.status_code == 200, resp.json
    rig.run_jobs()
    assert rig.state(resp.json["request_id"]).state == "rejected"
    rig.sender.flush()
    texts = [t for m in rig.fake.messages for t in mrkdwn_texts(m)]
    assert texts and not any("<!channel>" in t or "<https://evil" in t for t in texts), texts
    (parent,) = rig.fake.parents()
    assert ESCAPED in parent["text"]
    assert any(ESCAPED in t for t in texts if t.startswith("*Reason*"))
    assert any(ESCAPED in m["text"] for m in rig.fake.replies(parent["ts"]))


def test_escaping_keeps_podiums_links_and_mentions():
    now = datetime.now(UTC)
    req = Request(id=7, model="a<b>&c", version="3", target=None, raw_target=EVIL,
                  state="rejected", origin="tag", requested_by="gitlab:<!here>",
                  decided_by=f"slack:{ALICE}", reason=f"no: {EVIL} (slack:{ALICE})",
                  comparison="auc 0.9 > 0.8 & better", checks="22/22 passed",
                  created_at=now, updated_at=now)
    text, body = blocks.parent(req, tracking_uri="http://mlflow:5000",
                               public_url="https://podium.example")
    flat = json.dumps(body)
    assert text == f":no_entry: a&lt;b&gt;&amp;c v3 → {ESCAPED}: rejected"
    assert "gitlab:&lt;!here&gt;" in flat and f"<@{ALICE}>" in flat
    assert f"*Reason* no: {ESCAPED} (<@{ALICE}>)" in flat
    assert "*Comparison* auc 0.9 &gt; 0.8 &amp; better" in flat
    # our links: the model name is %-quoted inside the URL, the link itself is markup
    assert "<http://mlflow:5000/#/models/a%3Cb%3E%26c/versions/3|MLflow version>" in flat
    assert "<https://podium.example/api/v1/requests/7|request 7 (report)>" in flat


def test_step_and_message_texts_are_escaped_then_mentioned():
    assert blocks.step({"text": f"approved by slack:{ALICE} <b>"}) == (
        f"approved by <@{ALICE}> &lt;b&gt;")
    assert blocks.step({"to": "rejected", "actor": "cli:<!here>", "reason": "a & b"}) == (
        ":no_entry: rejected by cli:&lt;!here&gt;: a &amp; b")
    assert blocks.step({"to": "comparing", "checks": "<x>"}) == (
        ":scales: checks passed (&lt;x&gt;); comparing with the champion")
    assert blocks.who("slack:U1>evil") == "slack:U1&gt;evil"  # not a Slack id: no mention
    text, body = blocks.message({"text": f":new: {EVIL} v4 registered"})
    assert text == f":new: {ESCAPED} v4 registered" and body[0]["text"]["text"] == text
    assert blocks.clip("a&amp;b", 3) == "a" and blocks.clip("a&amp;b", 6) == "a&amp;"


def test_webhook_mode_and_ephemeral_replies_are_escaped(rig):
    from webhook_server.adapters.notify.sender import SlackSender
    from webhook_server.adapters.notify.slack import SlackHook

    with rig.svc.store.tx() as conn:
        ob.emit(conn, key="m:1", kind="message", payload={"text": f"hello {EVIL}"})
        ob.emit(conn, key="e:1", kind="ephemeral",
                payload={"channel": rig.fake.channel_id, "user": ALICE,
                         "text": f"Nothing changed: {EVIL}"})
    SlackSender(rig.svc.store, hook=SlackHook(f"{rig.fake.url}/hooks/T1/B1/x"),
                bot=None, owner="test").flush()  # the rig sender's lease owner
    (post,) = rig.fake.hook_posts
    assert post["text"] == f"hello {ESCAPED}"
    assert post["blocks"][0]["text"]["text"] == f"hello {ESCAPED}"
    with rig.svc.store.tx() as conn:
        ob.emit(conn, key="e:2", kind="ephemeral",
                payload={"channel": rig.fake.channel_id, "user": ALICE,
                         "text": f"Nothing changed: {EVIL}"})
    rig.sender.flush()
    assert rig.fake.ephemerals[-1]["text"] == f"Nothing changed: {ESCAPED}"
