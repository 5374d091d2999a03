"""POST /slack/interactions: only a correctly signed, fresh, well-formed click from the
configured workspace is stored (with its job); everything else gets a precise error and
leaves no job and no decision behind."""

import json
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import Clock

from tests.support.slack_rig import ALICE, SIGNING
from webhook_server.dev.fakes.slack import click_payload, sign
from webhook_server.intake.sources import SignatureError
from webhook_server.intake.sources.slack import SlackSource
from webhook_server.jobs.queue import list_jobs

# Slack's published example ("Verifying requests from Slack", also in slack_sdk's tests).
EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EXAMPLE_TS = "1531420618"
EXAMPLE_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
    "00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d"
    "10d2c447fce8b6703c")
EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def example_headers():
    return {"X-Slack-Request-Timestamp": EXAMPLE_TS, "X-Slack-Signature": EXAMPLE_SIGNATURE,
            "Content-Type": "application/x-www-form-urlencoded"}


def test_slacks_published_example_verifies_with_a_fixed_clock():
    source = SlackSource(EXAMPLE_SECRET, clock=FixedClock(int(EXAMPLE_TS) + 10))
    source.verify(EXAMPLE_BODY.encode(), example_headers())  # no exception: authentic
    with pytest.raises(SignatureError, match="does not match"):
        source.verify((EXAMPLE_BODY + "x").encode(), example_headers())
    late = SlackSource(EXAMPLE_SECRET, clock=FixedClock(int(EXAMPLE_TS) + 301))
    with pytest.raises(SignatureError, match=r"stale request: timestamp is 301 s from now"):
        late.verify(EXAMPLE_BODY.encode(), example_headers())


def test_slacks_published_example_passes_the_endpoints_verifier(rig):
    """Through the route: the signature is accepted (no 401); the slash-command body is
    then refused for what it is, and nothing is stored."""
    rig.svc.slack_source = SlackSource(EXAMPLE_SECRET,
                                       clock=FixedClock(int(EXAMPLE_TS) + 10))
    resp = rig.client.post("/slack/interactions", data=EXAMPLE_BODY, headers=example_headers())
    assert resp.status_code == 400
    assert "form field 'payload' is missing" in resp.json["error"]
    assert jobs(rig) == []


def jobs(rig):
    with rig.svc.store.read() as conn:
        return [j for j in list_jobs(conn) if j["kind"] == "slack_action"]


def post(rig, body: str, headers: dict):
    return rig.client.post("/slack/interactions", data=body, headers=headers)


def form(payload) -> str:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


@pytest.mark.parametrize("case, status, message", [
    ("no signature", 401, "missing X-Slack-Signature header"),
    ("no timestamp", 401, "missing X-Slack-Request-Timestamp header"),
    ("wrong signature", 401, "X-Slack-Signature does not match the body"),
    ("wrong secret", 401, "X-Slack-Signature does not match the body"),
    ("stale", 401, "stale request: timestamp is"),
    ("future", 401, "stale request: timestamp is"),
    ("text timestamp", 401, "is not a Unix timestamp"),
    ("unicode digits", 401, "is not a Unix timestamp"),
    ("not v0", 401, "is not a v0 signature"),
])
def test_unsigned_or_stale_clicks_are_refused(rig, case, status, message):
    body = form(click_payload(1, ALICE))
    headers = sign(SIGNING, body)
    if case == "no signature":
        del headers["X-Slack-Signature"]
    elif case == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "wrong signature":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif case == "wrong secret":
        headers = sign("another-secret", body)
    elif case == "stale":
        headers = sign(SIGNING, body, timestamp=int(headers["X-Slack-Request-Timestamp"]) - 301)
    elif case == "future":
        headers = sign(SIGNING, body, timestamp=int(headers["X-Slack-Request-Timestamp"]) + 400)
    elif case == "text timestamp":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    elif case == "unicode digits":
        headers["X-Slack-Request-Timestamp"] = "17000000²"
    elif case == "not v0":
        headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"][3:]
    resp = post(rig, body, headers)
    assert (resp.status_code, message in resp.json["error"]) == (status, True), resp.json
    assert jobs(rig) == []


def test_without_a_signing_secret_every_click_is_refused(rig):
    rig.svc.slack_source = SlackSource(None)
    body = form(click_payload(1, ALICE))
    resp = post(rig, body, sign(SIGNING, body))
    assert resp.status_code == 401 and "SLACK_SIGNING_SECRET is not set" in resp.json["error"]


def _payload(**changes):
    p = click_payload(7, ALICE, team="T0PODIUM")
    for key, value in changes.items():
        if key == "action_id":
            p["actions"][0]["action_id"] = value
        elif key == "value":
            p["actions"][0]["value"] = value
        elif value is None:
            p.pop(key)
        else:
            p[key] = value
    return p


@pytest.mark.parametrize("payload, status, message", [
    ("{not json", 400, "payload is not valid JSON"),
    ("[1, 2]", 400, "payload must be a JSON object"),
    (_payload(type="view_submission"), 400, "unknown modal: Podium only opens the "
                                            "reject-reason modal"),
    (_payload(type="shortcut"), 400, "unsupported interaction type 'shortcut'"),
    (_payload(actions=[]), 400, "payload.actions must hold the clicked action"),
    (_payload(action_id="podium_delete"), 400, "unknown action 'podium_delete'"),
    (_payload(value="seven"), 400, "action value 'seven' is not a request id"),
    (_payload(user=None), 400, "payload.user.id is missing"),
    (_payload(team=None, user={"id": ALICE}), 400, "payload.team.id is missing"),
    (_payload(team={"id": "T0OTHER"}), 403, "workspace T0OTHER is not allowed"),
])
def test_malformed_or_foreign_payloads_are_refused(rig, payload, status, message):
    body = form(payload)
    resp = post(rig, body, sign(SIGNING, body))
    assert resp.status_code == status and message in resp.json["error"], resp.json
    assert jobs(rig) == []


def test_a_body_that_is_not_a_form_is_refused(rig):
    body = "payload"  # a bare word: not key=value
    resp = post(rig, body, sign(SIGNING, body))
    assert resp.status_code == 400 and "not a URL-encoded form" in resp.json["error"]
    json_body = json.dumps(click_payload(1, ALICE))
    headers = {**sign(SIGNING, json_body), "Content-Type": "application/json"}
    resp = post(rig, json_body, headers)
    assert resp.status_code == 415 and "x-www-form-urlencoded" in resp.json["error"]


def test_a_replayed_click_is_stored_once_and_queues_one_job(rig):
    body = form(click_payload(7, ALICE))
    headers = sign(SIGNING, body)
    first, again = post(rig, body, headers), post(rig, body, headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.data == b""  # Slack shows nothing; the job answers ephemerally
    (job,) = jobs(rig)
    assert json.loads(job["payload"])["request_id"] == 7
    from sqlalchemy import select

    from webhook_server.store.schema import deliveries

    with rig.svc.store.read() as conn:
        (row,) = conn.execute(select(deliveries).where(deliveries.c.source == "slack")).all()
    assert row.duplicates == 1 and row.event == "slack.approve"
