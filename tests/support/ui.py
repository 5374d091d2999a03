"""The web page under test: a policy that names people, their tokens, a browser without
JavaScript (``Page``), other nodes on the same store, and a request waiting for approval
with the evidence the page shows."""

from __future__ import annotations

import dataclasses
import re

from tests.support.settings import make_settings
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs
from webhook_server.web.app import create_app

TOKENS = ",".join([  # strong tokens: `podium serve` refuses weak ones
    "ana=tok-ana-1234-nsgC6mCt0UnpaxWxjiTJo9Bnnmmdmf88",
    "bob=tok-bob-5678-WnNUAvnc7B7rPUE1zVYd406jBxCLkzn1",
    "eve=tok-eve-9012-ekZItRpK3OD8ltLaQHJcHkSvYf3erxyV",
])
POLICY = {
    "people": {"ana": {"ui": ["ana", "ana@example.com"]}, "bob": {"ui": "bob"},
               "eve": {"ui": "eve"}},
    "default": {"allow_run_holdout": True,
                "approval": {"targets": ["Production"], "approvers": ["ana", "bob"]}},
}
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
# the digest of the evidence shown, carried by the approve and reject forms
EVIDENCE_FIELD = re.compile(r'<input type="hidden" name="evidence" value="([0-9a-f]{64})">')
EVIDENCE = {
    "checks": [
        {"name": "roc_auc", "category": "performance", "passed": True, "value": 0.8123,
         "threshold": 0.75, "reason": "holdout ROC AUC 0.812 >= 0.75"},
        {"name": "latency_p95", "category": "budget", "passed": False, "value": 131.5,
         "threshold": 100, "reason": "single-row p95 131 ms > 100 ms"},
    ],
    "holdout": {"sha256": "ab" * 32, "rows": 2000, "source": "policy"},
    "comparison": {
        "metric": "roc_auc", "rows": 2000, "delta": 0.021, "ci_low": 0.008, "ci_high": 0.034,
        "confidence": 0.9, "bound": 0.0, "rule": "superiority", "alpha": 0.05,
        "p_value": 0.004, "detectable": 0.012, "outcome": "wins", "reasons": [],
        "currency": "EUR", "value_delta": 1.75, "value_low": 0.4,
        "value_rule": "noninferiority", "value_margin": 1.0,
        "challenger": {"version": "3", "metric": 0.8123, "f1": 0.61, "precision": 0.55,
                       "recall": 0.68, "value": 51234.0},
        "champion": {"version": "2", "metric": 0.7913, "f1": 0.58, "precision": 0.52,
                     "recall": 0.66, "value": 47734.0}},
}


def settings_for(db_url: str, **overrides):
    base = dict(mlflow_tracking_uri="http://127.0.0.1:9", named_api_tokens=TOKENS,
                ui_secret="test-ui-secret")
    return make_settings(db_url, **{**base, **overrides})


def other_node(usvc, **overrides):
    """An app on the same store with other settings (another node, another
    configuration), the test policy kept."""
    node = dataclasses.replace(usvc, settings=usvc.settings.replace(**overrides))
    node.policy = usvc.policy
    return create_app(node.settings, services=node)


class Page:
    """A browser without JavaScript: a test client that keeps its session and sends the
    page's CSRF token with every form."""

    def __init__(self, app, **environ) -> None:
        self.client = app.test_client()
        self.environ = environ

    def get(self, url: str, **kw):
        return self.client.get(url, environ_base=self.environ, **kw)

    def text(self, url: str) -> str:
        resp = self.get(url)
        assert resp.status_code == 200, (url, resp.status_code, resp.get_data(as_text=True))
        return resp.get_data(as_text=True)

    def csrf(self, url: str = "/ui/login") -> str:
        html = self.get(url, follow_redirects=True).get_data(as_text=True)
        return CSRF.search(html).group(1)

    def post(self, url: str, csrf: bool = True, **form):
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.client.post(url, data=form, environ_base=self.environ)

    def evidence(self, request_id: int) -> str:
        """The evidence digest the request's page puts in its approve and reject forms."""
        found = EVIDENCE_FIELD.findall(self.text(f"/ui/requests/{request_id}"))
        assert found and len(set(found)) == 1, found
        return found[0]

    def decide(self, request_id: int, action: str, **form):
        """Approve or reject as the page's form does: with the evidence digest it shows."""
        return self.post(f"/ui/requests/{request_id}/{action}",
                         evidence=self.evidence(request_id), **form)

    def login(self, token: str):
        resp = self.post("/ui/login", token=token, next="/ui/")
        assert resp.status_code == 303, resp.get_data(as_text=True)
        return self


def waiting(svc, model: str = "churn", version: str = "3", key: str = "d-1",
            evidence: dict | None = None) -> int:
    """A request waiting for approval, with checks and a comparison stored."""
    result = svc.intake.record(Delivery("api", key, "api.request", "{}", TransitionRequested(
        model, version, "Production", "api", requested_by="api:ci")))
    rid = result.request_id
    with svc.store.tx() as conn:
        for a, b in ((states.QUEUED, states.CHECKING), (states.CHECKING, states.COMPARING)):
            reqs.transition(conn, rid, expect=(a,), to=b, actor="worker")
        reqs.save_evidence(conn, rid, EVIDENCE if evidence is None else evidence)
        reqs.summarise(conn, rid, checks="1/2 passed", comparison="roc_auc +0.021",
                       compared_with="2")
        reqs.transition(conn, rid, expect=(states.COMPARING,), to=states.AWAITING_APPROVAL,
                        actor="policy", reason="waiting for 1 approval(s)")
    return rid


def digest_of(svc, request_id: int) -> str:
    """The request's current evidence digest (what a form would carry)."""
    return state_of(svc, request_id).evidence_digest()


def state_of(svc, request_id: int):
    with svc.store.read() as conn:
        return reqs.get(conn, request_id)
