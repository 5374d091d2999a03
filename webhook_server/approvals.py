"""The ``slack_action`` job: decide a request from a Slack click, answer the clicker.

Authorisation is on Slack ``user.id`` (listed approvers or members of the policy's user
group), never on names; the decision itself is the workflow's compare-and-set, so double
clicks, two approvers at once or a click after the decision change nothing and the clicker
is told who decided and when. Replies are ephemeral, sent through the outbox.
"""

from __future__ import annotations

import logging

from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import Handler
from webhook_server.store import outbox
from webhook_server.store import transition_requests as reqs

log = logging.getLogger(__name__)


def slack_action_handler(svc) -> Handler:
    from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed

    def reply(job: Job, text: str) -> None:
        p = dict(job.payload)
        if not p.get("channel"):  # a modal's submission: answer in the request's channel
            with svc.store.read() as conn:
                thread = outbox.thread(conn, p["request_id"])
            p["channel"] = thread["channel"] if thread else None
        if not p.get("channel"):
            log.info("slack reply to %s (no channel): %s", p["user"], text)
            return
        with svc.store.tx() as conn:
            outbox.emit(conn, key=f"{job.key}:reply", kind="ephemeral",
                        payload={"channel": p["channel"], "user": p["user"], "text": text,
                                 "thread_ts": None})

    def handle(job: Job) -> None:
        p = job.payload
        request_id, actor = p["request_id"], f"slack:{p['user']}"
        with svc.store.read() as conn:
            req = reqs.get(conn, request_id)
        if req is None:
            reply(job, f"Request {request_id} does not exist; nothing was decided.")
            return
        waiting = req.state == "awaiting_approval" and not req.decided_by
        if p["action"] == "reject" and not p.get("reason") and waiting:
            if svc.slack is None or not p.get("trigger_id"):
                reply(job, "Nothing changed: a rejection needs a reason; use `podium reject "
                           f"{request_id} --reason ...`.")
                return
            from webhook_server.notify.modals import reject_reason

            if p.get("evidence") and p["evidence"] != req.evidence_digest():
                reply(job, f"Nothing changed: request {request_id}'s evidence changed since "
                           "this message was posted; look again at the updated message.")
                return
            svc.slack.open_view(trigger_id=p["trigger_id"], view=reject_reason(req))
            return  # the decision comes with the modal's submission
        workflow = svc.workflow
        group = svc.policy.for_model(req.model).approval.slack_usergroup
        members = frozenset()
        if group and svc.slack is not None:
            members = svc.slack.usergroup_members(group)  # SlackError: the job retries
        if not p.get("evidence") and waiting:  # a decided request says so below
            reply(job, f"Nothing changed: this message of request {request_id} carries no "
                       "evidence digest (it was posted before digests); decide on the page or "
                       f"with `podium approve {request_id} --evidence ...`.")
            return
        try:
            result = workflow.decide(request_id, actor, p["action"] == "approve",
                                     p.get("reason"),
                                     detail={"team": p["team"], "via": "slack",
                                             "action_ts": p["action_ts"]},
                                     groups=members, evidence=p.get("evidence"))
        except NotAllowed as exc:
            reply(job, f"Nothing changed: {exc}.")
            return
        except DecisionRefused as exc:
            reply(job, f"Nothing changed: {exc}; use Reject and give one.")
            return
        except DecisionConflict as exc:
            reply(job, f"Nothing changed: {exc}.")
            return
        if result["state"] == "awaiting_approval":
            quorum = svc.policy.for_model(req.model).approval.quorum
            reply(job, f"You approved request {request_id} ({len(result['approvals'])} of "
                       f"{quorum}); waiting for more approvals.")
        elif result["state"] == "approved":
            reply(job, f"You approved request {request_id}: promoting {req.model} "
                       f"v{req.version}.")
        else:
            reply(job, f"You rejected request {request_id}.")

    return handle
