"""The Reject modal opens within the click's own request: Slack's trigger_id is good for 3 s
after the click, too short for a job behind a busy worker. The click is stored first; when
the modal cannot be opened there, the stored job tells the clicker how to reject instead."""

import time

from tests.support.slack_rig import BOB, SIGNING, awaiting
from webhook_server.dev.fakes.slack import click_request
from webhook_server.jobs.queue import job_state
from webhook_server.store.schema import deliveries, jobs, utcnow


def click_job(rig):
    with rig.svc.store.read() as conn:
        (pk,) = conn.execute(deliveries.select().with_only_columns(deliveries.c.id)
                             .where(deliveries.c.event == "slack.reject")).one()
        return f"slack:{pk}", job_state(conn, f"slack:{pk}")


def make_due(rig):
    with rig.svc.store.tx() as conn:
        conn.execute(jobs.update().where(jobs.c.state == "queued").values(run_after=utcnow()))


def views_open_calls(rig):
    return sum(c.endswith("views.open") for c in rig.fake.calls)


def test_the_modal_is_open_before_the_answer_with_no_worker_running(rig):
    rid = awaiting(rig)
    assert rig.click(rid, BOB, action="reject").status_code == 200
    (view,) = rig.fake.views  # no job ran: the request itself opened it
    assert view["view"]["private_metadata"] == f"{rid}:{rig.state(rid).evidence_digest()}"
    assert click_job(rig)[1] == "done"  # the click is stored, its job settled
    assert rig.run_jobs() == 0 and views_open_calls(rig) == 1
    assert rig.state(rid).state == "awaiting_approval"


def test_the_stored_click_still_falls_back_when_slack_refuses_in_the_request(rig):
    rid = awaiting(rig)
    rig.fake.fail_next(2, error="expired_trigger_id")  # the request's try, the job's
    assert rig.click(rid, BOB, action="reject").status_code == 200
    assert rig.fake.views == [] and click_job(rig)[1] == "queued"
    assert rig.run_jobs() == 0  # the job waits: the request had the first go
    make_due(rig)
    assert rig.run_jobs() == 1
    rig.sender.flush()
    (reply,) = rig.fake.ephemerals
    assert reply["user"] == BOB and "could not be opened in time" in reply["text"]
    assert f"podium reject {rid} --reason" in reply["text"]
    assert rig.state(rid).state == "awaiting_approval"  # nothing decided, nothing lost


def test_a_late_job_never_tries_an_expired_trigger(rig):
    rid = awaiting(rig)
    # the click happened 10 s ago (a slow proxy): the request's try is refused as expired
    body, headers = click_request(SIGNING, rid, BOB, action="reject", team=rig.fake.team_id,
                                  channel=rig.fake.channel_id, clicked_at=time.time() - 10)
    assert rig.client.post("/slack/interactions", data=body, headers=headers).status_code == 200
    assert rig.fake.views == [] and views_open_calls(rig) == 1
    make_due(rig)
    rig.run_jobs()
    assert views_open_calls(rig) == 1  # the job knew the trigger was stale
    rig.sender.flush()
    assert "could not be opened in time" in rig.fake.ephemerals[-1]["text"]


def test_a_replayed_click_opens_no_second_modal(rig):
    rid = awaiting(rig)
    body, headers = click_request(SIGNING, rid, BOB, action="reject", team=rig.fake.team_id,
                                  channel=rig.fake.channel_id)
    for _ in range(2):
        assert rig.client.post("/slack/interactions", data=body,
                               headers=headers).status_code == 200
    assert len(rig.fake.views) == 1
