"""The ``slack_action`` job: decide a request from a Slack click, answer the clicker.

A Reject click without a reason opens the reason modal within the interaction request
itself (``open_modal_now``: Slack's trigger is valid for 3 s, too short for a busy worker);
its job is queued ``MODAL_GRACE_S`` later and settled once the modal is open, so it runs only
when opening failed: then it tries once more if the click is still fresh, else tells the
clicker how to reject instead.

Authorisation is on Slack ``user.id`` (listed approvers or members of the policy's user
group), never on names; the decision itself is the workflow's compare-and-set, so double
clicks, two approvers at once or a click after the decision change nothing and the clicker
is told who decided and when. Replies are ephemeral, sent through the outbox: what to say
and its figures, worded by the Slack sender (``notify/messages.reply``).
"""

from __future__ import annotations

import logging
import time

from webhook_server.jobs.queue import Job, settle_queued
from webhook_server.jobs.worker import Handler
from webhook_server.store import outbox
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed

log = logging.getLogger(__name__)
MODAL_GRACE_S = 10.0  # a Reject click's job waits this long: the request opens the modal
TRIGGER_WINDOW_S = 2.5  # a trigger_id is good for 3 s after the click; keep a margin


def wants_modal(svc, action) -> bool:
    """A Reject click that needs a reason, and a Slack bot to ask it with."""
    return (action.action == "reject" and not action.reason and bool(action.trigger_id)
            and svc.slack is not None)


def open_modal_now(svc, job_key: str, payload: dict) -> bool:
    """Within the click's request: open the reject-reason modal (one short try), then
    settle the click's queued job. False, with the job left to fall back, on any failure;
    a request no longer waiting needs no modal (the job tells the clicker)."""
    from webhook_server.adapters.notify.modals import reject_reason
    from webhook_server.adapters.notify.slack import SlackError

    try:
        with svc.store.read() as conn:
            req = reqs.get(conn, payload["request_id"])
        if req is None or req.state != "awaiting_approval" or req.decided_by:
            return False
        if payload.get("evidence") and payload["evidence"] != req.evidence_digest():
            return False  # the message is stale: the job says what changed
        svc.slack.open_view(trigger_id=payload["trigger_id"], view=reject_reason(req))
    except (SlackError, OSError) as exc:
        log.warning("reject modal of request %s not opened in the request: %s",
                    payload["request_id"], exc)
        return False
    try:
        with svc.store.tx() as conn:
            settle_queued(conn, job_key)
    except Exception as exc:  # the modal is open; at worst the job says so again
        log.warning("click job %s not settled: %s", job_key, exc)
    return True


def _fresh(action_ts: str | None) -> bool:
    """The click happened less than ``TRIGGER_WINDOW_S`` ago (Slack's ``action_ts``)."""
    try:
        return time.time() - float(action_ts or "") < TRIGGER_WINDOW_S
    except ValueError:
        return False


def slack_action_handler(svc) -> Handler:
    def reply(job: Job, say: str, **figures) -> None:
        """Answer the clicker: what to say (``notify/messages.reply`` words it) and its
        figures; the request's id goes with every answer."""
        p = dict(job.payload)
        if not p.get("channel"):  # a modal's submission: answer in the request's channel
            with svc.store.read() as conn:
                thread = outbox.thread(conn, p["request_id"])
            p["channel"] = thread["channel"] if thread else None
        answer = {"say": say, "request_id": p["request_id"], **figures}
        if not p.get("channel"):
            log.info("slack reply to %s (no channel): %s", p["user"], answer)
            return
        with svc.store.tx() as conn:
            outbox.emit(conn, key=f"{job.key}:reply", kind="ephemeral",
                        payload={"channel": p["channel"], "user": p["user"],
                                 "thread_ts": None, **answer})

    def handle(job: Job) -> None:
        p = job.payload
        request_id, actor = p["request_id"], f"slack:{p['user']}"
        with svc.store.read() as conn:
            req = reqs.get(conn, request_id)
        if req is None:
            reply(job, "no_request")
            return
        waiting = req.state == "awaiting_approval" and not req.decided_by
        if p["action"] == "reject" and not p.get("reason") and waiting:
            if svc.slack is None or not p.get("trigger_id"):
                reply(job, "needs_reason")
            elif p.get("evidence") and p["evidence"] != req.evidence_digest():
                reply(job, "stale")
            elif not (_fresh(p.get("action_ts"))
                      and open_modal_now(svc, job.key, p)):  # the request could not
                reply(job, "no_form")
            return  # the decision comes with the modal's submission
        workflow = svc.workflow
        group = svc.policy.for_model(req.model).approval.slack_usergroup
        members = frozenset()
        if group and svc.slack is not None:
            members = svc.slack.usergroup_members(group)  # SlackError: the job retries
        if not p.get("evidence") and waiting:  # a decided request says so below
            reply(job, "no_digest")
            return
        try:
            result = workflow.decide(request_id, actor, p["action"] == "approve",
                                     p.get("reason"),
                                     detail={"team": p["team"], "via": "slack",
                                             "action_ts": p["action_ts"]},
                                     groups=members, evidence=p.get("evidence"))
        except (NotAllowed, DecisionConflict) as exc:
            reply(job, "refused", why=str(exc))
            return
        except DecisionRefused as exc:
            reply(job, "give_reason", why=str(exc))
            return
        if result["state"] == "awaiting_approval":
            cfg = svc.policy.for_model(req.model)
            quorum = (cfg.rollback if req.origin == "rollback" else cfg.approval).quorum
            reply(job, "approved_short", approvals=len(result["approvals"]), quorum=quorum)
        elif result["state"] == "approved":
            reply(job, "approved", model=req.model, version=req.version,
                  rollback=req.origin == "rollback")
        else:
            reply(job, "rejected")

    return handle
