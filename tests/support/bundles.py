"""Evidence bundles made without MLflow or a model: scores drawn for a holdout, judged the
way the service judges them (``figures``, ``compare``, ``verdict``), written with
``model_tests.bundle.write``; and a store holding decided requests that point at them."""

from __future__ import annotations

import numpy as np
from sqlalchemy import update

from model_tests import bundle as bundles
from model_tests import figures
from model_tests.compare import compare
from podium_policy.policy import Business, Checks
from podium_policy.policy import Comparison as ComparisonRule
from podium_policy.verdict import decide
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import requests

HOLDOUT_SHA = "ab" * 32
STATE_OF = {"promote": "promoted", "reject": "rejected", "stage": "staged",
            "ask": "awaiting_approval"}


def scores(n: int = 1500, gain: float = 0.0, seed: int = 0):
    """Labels, a champion's scores and a challenger's (``gain``: how much more signal)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    noise = rng.normal(size=n)
    champion = 1 / (1 + np.exp(-(1.2 * (y - 0.3) * 2 + noise)))
    challenger = 1 / (1 + np.exp(-((1.2 + gain) * (y - 0.3) * 2 + noise
                                   + 0.3 * rng.normal(size=n))))
    contract = np.where(rng.random(n) < 0.5, "Month-to-month", "Two year")
    return y, challenger, champion, contract


def make(directory, y, challenger, champion, *, contract, model="churn", version="3",
         champion_version="2", target="Production", checks=None, rule=None,
         business=None):
    """Judge the scores as the service does and write the bundle: (digest, files, verdict)."""
    t = checks or Checks(slice_columns=("Contract",), slice_roc_auc=0.5, slice_gap=0.5)
    rule, business = rule or ComparisonRule(), business or Business()
    columns = {"Contract": np.asarray(contract, dtype=object)}
    recorded = [{"name": n, "category": "performance", "passed": p, "value": v,
                 "threshold": th, "reason": r}
                for n in figures.FLOORS
                for p, v, th, r in [figures.floor(n, y, challenger, t)]]
    ok, value, th, reason = figures.slices(y, challenger, columns, t)
    recorded.append({"name": "slices", "category": "slices", "passed": ok, "value": value,
                     "threshold": th, "reason": reason})
    recorded.append({"name": "latency_p95", "category": "budgets", "passed": True,
                     "value": 4.2, "threshold": 100.0, "reason": "single-row p95 4.2 ms"})
    comparison = None
    if champion is not None:
        comparison = compare(y, challenger, champion, challenger_version=version,
                             champion_version=champion_version,
                             threshold=t.decision_threshold, comparison=rule,
                             business=business, seed_from=(model, HOLDOUT_SHA))
    verdict = decide([c["name"] for c in recorded if not c["passed"]], target,
                     comparison.outcome if comparison else None,
                     comparison.reasons if comparison else (), rule)
    doc = {"request": {"id": 0, "model": model, "version": version, "target": target,
                       "champion": champion_version if champion is not None else None},
           "podium_version": "test", "holdout": {"sha256": HOLDOUT_SHA, "rows": len(y)},
           "models": {"challenger": {"version": version, "sha256": "cd" * 32}},
           "policy": {"sha256": None, "source": None,
                      "section": bundles.section(t, rule, business)},
           "checks": recorded,
           "comparison": comparison.as_json() if comparison else None,
           "decision": verdict.as_json(), "seed_from": [model, HOLDOUT_SHA]}
    frame = bundles.scores_frame([f"c{i}" for i in range(len(y))], y, challenger, champion,
                                 {"Contract": contract})
    digest, files = bundles.write(directory, doc, frame)
    return digest, files, verdict


def decided(svc, directory, *, model="churn", version="3", **judged):
    """A request of ``svc``'s store decided by the policy on the bundle written into
    ``directory`` (``judged``: ``make``'s arguments): its id."""
    digest, files, verdict = make(directory, model=model, version=version, **judged)
    result = svc.intake.record(Delivery("api", f"bundle-{directory}", "api.request", "{}",
                                        TransitionRequested(model, version, "Production",
                                                            "api")))
    with svc.store.tx() as conn:
        conn.execute(update(requests).where(requests.c.id == result.request_id).values(
            state=STATE_OF[verdict.kind], decided_by="policy"))
        reqs.set_bundle(conn, result.request_id, str(directory), digest)
        reqs.save_evidence(conn, result.request_id, {
            "holdout": {"sha256": HOLDOUT_SHA},
            "bundle": {"uri": str(directory), "sha256": digest, "files": files}})
    return result.request_id


def decided_on_disk(svc, directory):
    """A clear promotion decided on a bundle in ``directory``, with ``svc``'s registry one
    that reads local paths (no MLflow): its request id."""
    from webhook_server.adapters.registry import Registry

    svc.registry = Registry(None)
    y, c, k, contract = scores(gain=0.5)
    return decided(svc, directory, y=y, challenger=c, champion=k, contract=contract)
