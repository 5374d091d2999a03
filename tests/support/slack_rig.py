"""Podium wired to a fake Slack (the real slack_sdk client over HTTP) and an in-memory
registry: the people, the signing secret and ``Rig``, the pieces a Slack test drives."""

from __future__ import annotations

from podium_policy.policy import parse_policy
from tests.support.registry import comparison, passing
from webhook_server.dev.fakes.slack import click_request, view_submission
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.worker import Worker
from webhook_server.service.approvals import slack_action_handler
from webhook_server.store import transition_requests as reqs
from webhook_server.web.app import create_app
from webhook_server.workflow import Gates

SIGNING = "test-signing-secret"
TOKEN = "xoxb-test-token"
ALICE, BOB, EVE = "U0ALICE", "U0BOB", "U0EVE"


class Rig:
    """The service pieces a test drives: intake, worker, sender, the HTTP app."""

    def __init__(self, svc, fake, registry):
        self.svc, self.fake, self.registry = svc, fake, registry
        self.client = create_app(svc.settings, services=svc).test_client()
        self.sender = svc.slack_sender(owner="test")

    def set_policy(self, approval: dict) -> None:
        self.svc.policy = parse_policy({"default": {"approval": {
            "targets": ["Production"], **approval}}})

    def workflow(self):
        return self.svc.use_gates(Gates(passing, lambda m, c, k: comparison(c, k)))

    def run_jobs(self) -> int:
        handlers = {"request": self.workflow().handle,
                    "slack_action": slack_action_handler(self.svc)}
        worker = Worker(self.svc.queue, handlers, poll_s=0)
        ran = 0
        while worker.run_once() is not None:
            ran += 1
        return ran

    def request(self, version: str = "3") -> int:
        rid = self.svc.intake.record(Delivery(
            "api", f"d-{version}", "api.request", "{}",
            TransitionRequested("churn", version, "Production", "api"))).request_id
        self.run_jobs()
        return rid

    def state(self, rid: int) -> dict:
        with self.svc.store.read() as conn:
            return reqs.get(conn, rid)

    def button_value(self, rid: int) -> str | None:
        """What a click on the request's buttons sends: the value of the buttons the fake
        Slack shows (``<id>:<evidence digest>``); when no message shows them (Slack was
        down, or they went after a decision: a click on a stale rendering), the value the
        message had, built from the request. None for a request that does not exist."""
        value = self.fake.button_value(rid)
        if value is None and (req := self.state(rid)) is not None:
            value = f"{rid}:{req.evidence_digest()}"
        return value

    def click(self, rid: int, user: str, action: str = "approve", **kw):
        """A signed click; ``value=`` overrides the button's value (e.g. a bare id)."""
        value = kw.pop("value") if "value" in kw else self.button_value(rid)
        body, headers = click_request(SIGNING, rid, user, action=action,
                                      team=kw.pop("team", self.fake.team_id),
                                      channel=self.fake.channel_id, value=value, **kw)
        return self.client.post("/slack/interactions", data=body, headers=headers)

    def reject(self, rid: int, user: str, reason: str):
        """Click Reject, let the job open the modal, type ``reason`` and submit it."""
        opened = len(self.fake.views)
        assert self.click(rid, user, action="reject").status_code == 200
        self.run_jobs()
        assert len(self.fake.views) == opened + 1, "Reject opened no modal"
        body, headers = view_submission(SIGNING, self.fake.views[-1], user,
                                        {"reason": {"reason": reason}},
                                        team=self.fake.team_id)
        answer = self.client.post("/slack/interactions", data=body, headers=headers)
        self.run_jobs()
        return answer


def awaiting(rig, version="3"):
    """A request of ``version`` waiting for approval, its Slack message sent."""
    rid = rig.request(version)
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    return rid
