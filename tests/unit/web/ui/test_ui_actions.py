"""What the page changes, and only through the workflow: Approve and Reject (allowed
people, a reason for a rejection), Rollback (a former champion, after a confirmation),
Replay and Resend; a POST without the CSRF token changes nothing."""

import pytest

from tests.support.ui import Page, digest_of, other_node, state_of, waiting
from webhook_server.jobs.queue import list_jobs
from webhook_server.store import audit, ledger, states
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs


def _audit(svc, rid):
    with svc.store.read() as conn:
        return [(r["actor"], r["action"]) for r in audit.entries(conn, subject=f"request:{rid}")]


def test_an_allowed_person_approves_and_the_promotion_is_queued(usvc, as_person):
    rid = waiting(usvc)
    page = as_person("ana")
    html = page.text(f"/ui/requests/{rid}")
    assert 'id="approve-form"' in html and 'id="reject-form"' in html
    resp = page.decide(rid, "approve", note="looks good")
    assert resp.status_code == 303 and resp.headers["Location"] == f"/ui/requests/{rid}"
    req = state_of(usvc, rid)
    assert (req.state, req.decided_by) == (states.PROMOTING, "ui:ana")
    with usvc.store.read() as conn:
        assert ledger.intent_for(conn, rid)["actor"] == "ui:ana"
        assert any(j["key"].startswith(f"request:{rid}:promote") for j in list_jobs(conn))
    assert _audit(usvc, rid) == [("ui:ana", "approve")]
    after = page.text(f"/ui/requests/{rid}")
    assert "approved as ui:ana: request is now approved" in after
    assert 'id="approve-form"' not in after


def test_a_person_the_policy_does_not_allow_sees_who_may_decide_and_no_buttons(usvc,
                                                                              as_person):
    rid = waiting(usvc)
    html = as_person("eve").text(f"/ui/requests/{rid}")
    assert 'id="approve-form"' not in html and 'id="reject-form"' not in html
    assert "You (ui:eve) may not decide this request. Who may decide: ana, bob." in html


@pytest.mark.parametrize("action,form", [("approve", {}), ("reject", {"reason": "no"})])
def test_a_person_not_allowed_who_posts_anyway_changes_nothing(usvc, as_person, action, form):
    rid = waiting(usvc)
    resp = as_person("eve").post(f"/ui/requests/{rid}/{action}",
                                 evidence=digest_of(usvc, rid), **form)
    assert resp.status_code == 403
    assert "ui:eve is not an approver of churn" in resp.get_data(as_text=True)
    req = state_of(usvc, rid)
    assert (req.state, req.decided_by) == (states.AWAITING_APPROVAL, None)
    assert _audit(usvc, rid) == [("ui:eve", "denied")]  # recorded like a Slack click


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_a_rejection_without_a_reason_is_refused(usvc, as_person, reason):
    rid = waiting(usvc)
    resp = as_person("ana").decide(rid, "reject", reason=reason)
    assert resp.status_code == 422
    assert "a rejection needs a reason" in resp.get_data(as_text=True)
    assert state_of(usvc, rid).state == states.AWAITING_APPROVAL
    assert _audit(usvc, rid) == []


def test_a_rejection_with_a_reason_ends_the_request(usvc, as_person):
    rid = waiting(usvc)
    resp = as_person("bob").decide(rid, "reject", reason="latency over budget")
    assert resp.status_code == 303
    req = state_of(usvc, rid)
    assert (req.state, req.decided_by) == (states.REJECTED, "ui:bob")
    assert req.reason == "rejected by ui:bob: latency over budget"


@pytest.mark.parametrize("evidence", [None, "", "not-a-digest"])
def test_a_decision_without_the_forms_evidence_digest_is_refused(usvc, as_person, evidence):
    rid = waiting(usvc)
    form = {} if evidence is None else {"evidence": evidence}
    resp = as_person("ana").post(f"/ui/requests/{rid}/approve", **form)
    assert resp.status_code == 400
    assert "the form carries no evidence digest" in resp.get_data(as_text=True)
    assert state_of(usvc, rid).state == states.AWAITING_APPROVAL
    assert _audit(usvc, rid) == []


def test_an_approval_of_evidence_shown_before_it_changed_is_refused_and_not_counted(
        usvc, as_person):
    rid = waiting(usvc)
    page = as_person("ana")
    seen = page.evidence(rid)
    with usvc.store.tx() as conn:  # the comparison was made again meanwhile
        reqs.summarise(conn, rid, checks="1/2 passed", comparison="roc_auc -0.004",
                       compared_with="2")
    resp = page.post(f"/ui/requests/{rid}/approve", evidence=seen)
    assert resp.status_code == 409
    assert "is no longer current" in resp.get_data(as_text=True)
    assert state_of(usvc, rid).state == states.AWAITING_APPROVAL
    assert _audit(usvc, rid) == []
    assert page.decide(rid, "approve").status_code == 303  # on what the page shows now


@pytest.mark.parametrize("token", [None, "", "forged-token-" + "x" * 40])
def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
        usvc, as_person, token):
    rid = waiting(usvc)
    page = as_person("ana")
    form = {} if token is None else {"csrf_token": token}
    resp = page.client.post(f"/ui/requests/{rid}/approve", data=form)
    assert resp.status_code == 403
    assert "no valid CSRF token" in resp.get_data(as_text=True)
    req = state_of(usvc, rid)
    assert (req.state, req.decided_by) == (states.AWAITING_APPROVAL, None)
    assert _audit(usvc, rid) == []


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example.com"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain that planted its own cookie
    {"Sec-Fetch-Site": "cross-site"},
])
def test_a_post_from_another_site_is_refused_even_with_a_valid_token(usvc, as_person, headers):
    """The token lives in the cookie; a site that can set cookies for this one (a sibling
    subdomain) could plant a session with a token it knows, while the single-sign-on proxy
    stamps the victim's identity: the browser's own word on where the form came from
    decides."""
    rid = waiting(usvc)
    page = as_person("ana")
    form = {"csrf_token": page.csrf()}
    resp = page.client.post(f"/ui/requests/{rid}/approve", data=form, headers=headers,
                            environ_base=page.environ)
    assert resp.status_code == 403
    assert "from another site" in resp.get_data(as_text=True)
    req = state_of(usvc, rid)
    assert (req.state, req.decided_by) == (states.AWAITING_APPROVAL, None)


def test_a_post_from_this_site_passes(usvc, as_person):
    rid = waiting(usvc)
    page = as_person("ana")
    form = {"csrf_token": page.csrf(), "evidence": page.evidence(rid)}
    resp = page.client.post(f"/ui/requests/{rid}/approve", data=form,
                            headers={"Origin": "http://localhost", "Sec-Fetch-Site":
                                     "same-origin"}, environ_base=page.environ)
    assert resp.status_code == 303


def test_a_login_without_the_csrf_token_is_refused(ui_app):
    resp = Page(ui_app).post("/ui/login", csrf=False, token="tok-ana-1234")
    assert resp.status_code == 403


def test_deciding_an_unknown_request_is_404_and_deciding_twice_is_409(usvc, as_person):
    page = as_person("ana")
    assert page.post("/ui/requests/999/approve", evidence="0" * 64).status_code == 404
    rid = waiting(usvc)
    seen = page.evidence(rid)
    assert page.post(f"/ui/requests/{rid}/approve", evidence=seen).status_code == 303
    again = page.post(f"/ui/requests/{rid}/reject", evidence=seen, reason="changed my mind")
    assert again.status_code == 409
    assert f"request {rid} was already decided by ui:ana" in again.get_data(as_text=True)


def test_without_mlflow_the_page_says_nobody_can_decide_here(usvc, as_person):
    rid = waiting(usvc)
    app = other_node(usvc, mlflow_tracking_uri=None)
    app.extensions["podium"].registry = None
    page = as_person("ana", app)
    assert "Deciding is off here: MLFLOW_TRACKING_URI is not set" in \
        page.text(f"/ui/requests/{rid}")
    assert page.post(f"/ui/requests/{rid}/approve",
                     evidence=digest_of(usvc, rid)).status_code == 503
    assert state_of(usvc, rid).state == states.AWAITING_APPROVAL


# --- rollback ----------------------------------------------------------------------------

def _two_champions(svc, model="churn"):
    with svc.store.tx() as conn:
        ledger.record(conn, model=model, alias="champion", from_version=None, to_version="1",
                      kind=ledger.PROMOTE, actor="policy")
        ledger.record(conn, model=model, alias="champion", from_version="1", to_version="2",
                      kind=ledger.PROMOTE, actor="ui:ana")


def test_rollback_to_a_former_champion_after_a_confirmation(usvc, as_person):
    _two_champions(usvc)
    page = as_person("ana")
    html = page.text("/ui/models/churn")
    assert '<dd id="champion">v2</dd>' in html and "Roll back to v1…" in html
    confirm = page.text("/ui/models/churn/rollback?to=1")
    assert "Yes, roll back to v1" in confirm
    resp = page.post("/ui/models/churn/rollback", to="1")
    assert resp.status_code == 303
    rid = int(resp.headers["Location"].rsplit("/", 1)[1])
    req = state_of(usvc, rid)
    assert (req.origin, req.version, req.state, req.requested_by) == (
        "rollback", "1", states.QUEUED, "ui:ana")


def test_rollback_is_refused_to_people_not_allowed_and_to_versions_never_champion(
        usvc, as_person):
    _two_champions(usvc)
    eve = as_person("eve")
    assert "You (ui:eve) may not roll back churn. Who may: ana, bob." in \
        eve.text("/ui/models/churn")
    assert eve.get("/ui/models/churn/rollback?to=1").status_code == 403
    assert eve.post("/ui/models/churn/rollback", to="1").status_code == 403
    ana = as_person("ana")
    never = ana.post("/ui/models/churn/rollback", to="7")
    assert never.status_code == 422 and "v7 of churn was never champion" in \
        never.get_data(as_text=True)
    assert ana.post("/ui/models/churn/rollback", to="x").status_code == 400
    assert ana.post("/ui/models/churn/rollback", csrf=False, to="1").status_code == 403
    with usvc.store.read() as conn:
        assert ledger.current(conn, "churn", "champion") == "2"
        assert list_jobs(conn) == []


# --- operations --------------------------------------------------------------------------

def test_replay_of_a_dead_request_job_brings_the_request_back(usvc, as_person):
    rid = waiting(usvc)
    with usvc.store.tx() as conn:
        reqs.transition(conn, rid, expect=(states.AWAITING_APPROVAL,), to=states.CHECKING,
                        actor="test")
    job = usvc.queue.claim("w")
    assert usvc.queue.fail(job, "MLflow down", permanent=True) == "dead"
    assert as_person("eve").post(f"/ui/operations/jobs/{job.id}/replay").status_code == 403
    page = as_person("ana")
    assert "Replay</button>" in page.text("/ui/operations")
    resp = page.post(f"/ui/operations/jobs/{job.id}/replay")
    assert resp.status_code == 303
    assert usvc.queue.claim("w").key == f"request:{rid}"
    assert page.post(f"/ui/operations/jobs/{job.id}/replay").status_code == 409
    assert page.post("/ui/operations/jobs/999/replay").status_code == 404


def test_resend_puts_a_dead_notification_back_in_the_outbox(usvc, as_person):
    waiting(usvc)
    with usvc.store.tx() as conn:
        row = ob.next_batch(conn, "slack", limit=1)[0]
        ob.mark_failed(conn, row["id"], "channel_not_found", 60, dead=True)
    page = as_person("bob")
    assert "channel_not_found" in page.text("/ui/operations")
    assert page.post(f"/ui/operations/outbox/{row['id']}/resend").status_code == 303
    with usvc.store.read() as conn:
        assert [r["id"] for r in ob.list_(conn, state=ob.DEAD)] == []
        assert audit.entries(conn, action="resend")[0]["actor"] == "ui:bob"
    assert page.post("/ui/operations/outbox/99999/resend").status_code == 409


# --- a rollback the monitoring job proposes ------------------------------------------------

def _proposed(svc) -> int:
    """churn's champion v3 decayed, v2 (the champion it replaced, shadowed) better live;
    ``monitoring.on_decay: propose``: the monitoring job's proposal, its request id."""
    from datetime import UTC, datetime

    from podium_policy.policy import parse_policy
    from tests.support.ui import POLICY
    from tests.unit.monitoring.logdata import decayed_beside_former
    from webhook_server.jobs.queue import Job
    from webhook_server.monitoring.report import period_of
    from webhook_server.service.handlers import for_services

    svc.policy = parse_policy({**POLICY, "default": {
        **POLICY["default"], "monitoring": {"min_labels": 200, "on_decay": "propose",
                                            "shadow_former": True}}})
    now = datetime.now(UTC)
    decayed_beside_former(svc.store, now)
    period = period_of(now, "week")
    for_services(svc)["monitor"](Job(id=0, kind="monitor", key=f"monitor:churn:{period}",
                                     payload={"model": "churn", "period": period},
                                     attempts=1, max_attempts=5, lease_owner="test"))
    with svc.store.read() as conn:
        (req,) = [r for r in reqs.list_(conn, model="churn") if r.origin == "rollback"]
    return req.id


def test_a_proposed_rollback_shows_its_live_evidence_and_rollback_or_dismiss(usvc, as_person):
    rid = _proposed(usvc)
    html = as_person("ana").text(f"/ui/requests/{rid}")
    assert 'id="approve">Rollback</button>' in html and 'id="reject">Dismiss</button>' in html
    assert "1 agreement(s) to roll back needed" in html
    assert 'id="live-evidence"' in html and "champion v2 ROC AUC 0.9" in html
    assert "live ROC AUC gain of the former champion" in html and "<svg" in html
    assert 'id="approve-form"' not in as_person("eve").text(f"/ui/requests/{rid}")


def test_a_proposed_rollback_agreed_on_the_page_is_queued(usvc, as_person):
    rid = _proposed(usvc)
    resp = as_person("bob").decide(rid, "approve")
    assert resp.status_code == 303
    assert state_of(usvc, rid).state == states.QUEUED
    assert _audit(usvc, rid) == [("ui:bob", "approve")]
    with usvc.store.read() as conn:  # the rollback's job runs under the model lock
        assert any(j["key"] == f"request:{rid}:agreed" for j in list_jobs(conn))


def test_a_proposed_rollback_dismissed_on_the_page_ends_and_the_champion_stays(usvc,
                                                                            as_person):
    rid = _proposed(usvc)
    assert as_person("ana").decide(rid, "reject", reason="labels are late").status_code == 303
    req = state_of(usvc, rid)
    assert (req.state, req.reason) == (states.REJECTED, "rejected by ui:ana: labels are late")
    with usvc.store.read() as conn:
        assert ledger.current(conn, "churn", "champion") == "3"
