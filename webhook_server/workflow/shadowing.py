"""Promotion on live evidence (policy ``comparison.live``): the rule of the ``shadowing`` state.

A Production request whose version passed the holdout checks and the comparison waits in
``shadowing``, its version on the policy's first ``shadow.aliases`` alias, so ``podium
score`` logs its predictions beside the champion's. Each look (the request's job, queued by
the scheduler's ``check_shadowing``) compares it with the ledger's champion on the labelled
outcomes both predicted (``Gates.live``: DeLong's difference with an always-valid confidence
sequence, so looking after every batch of labels keeps the false-promotion rate at or under
``alpha``). With ``min_pairs`` pairs the sequence decides as soon as it clears the bound
(promote: on to approval or the move, as after a holdout comparison) or falls below it
(reject); undecided after ``max_days`` the request ends ``inconclusive``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from podium_policy.schema import ModelPolicy
from webhook_server.store import Store, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request, live_line
from webhook_server.workflow.fenced import FencedRegistry

PROMOTE, REJECT, INCONCLUSIVE = "promote", "reject", "inconclusive"
ENDS = {REJECT: states.REJECTED, INCONCLUSIVE: states.INCONCLUSIVE}  # the decisions that end it


def alias_of(cfg: ModelPolicy) -> str | None:
    """The alias a version waiting for live evidence is put on (None: the policy asks for
    no live evidence)."""
    if cfg.comparison.live is None or not cfg.shadow.aliases:
        return None
    return cfg.shadow.aliases[0]


def waiting_line(cfg: ModelPolicy, champion: str) -> str:
    live = cfg.comparison.live
    return (f"passed the holdout against the champion v{champion}; waiting for live evidence "
            f"on alias {alias_of(cfg)!r}: {live.min_pairs:,} labelled pairs, at most "
            f"{live.max_days:g} days")


def decide(cfg: ModelPolicy, figures: dict[str, Any], since: datetime,
           now: datetime) -> tuple[str | None, str]:
    """(decision or None: keep waiting, the reason in words) for one look."""
    live = cfg.comparison.live
    line = live_line(figures)
    enough = figures.get("pairs", 0) >= live.min_pairs
    if enough and figures.get("verdict") == "better":
        return PROMOTE, f"better than the champion on live outcomes: {line}"
    if enough and figures.get("verdict") == "not better":
        return REJECT, f"not better than the champion on live outcomes: {line}"
    if now - since >= timedelta(days=live.max_days):
        return INCONCLUSIVE, (f"no live decision within {live.max_days:g} days (max_days): "
                              f"{line}")
    return None, line


def put_on_alias(store: Store, registry: FencedRegistry, req: Request) -> str | None:
    """The version on the alias its evidence names: the first look sets it (after the request
    is recorded ``shadowing``, so MLflow's alias webhook finds it waiting and asks for
    nothing new) and records ``on_alias`` once it is there. Afterwards the alias naming
    another version (or none) means a person moved it: the reason to withdraw the request."""
    live = req.evidence_json().get("live") or {}
    alias = live["alias"]
    seen = registry.alias_version(req.model, alias)
    if seen != req.version:
        if live.get("on_alias"):
            return (f"the shadow alias {alias!r} was "
                    + (f"moved to v{seen}" if seen else "removed") + " outside Podium: no "
                    "longer waiting for live evidence")
        registry.set_alias(req.model, alias, req.version)  # to a value: a retry repeats it
    if not live.get("on_alias"):
        with store.tx() as conn:
            reqs.save_evidence(conn, req.id, {**req.evidence_json(),
                                              "live": {**live, "on_alias": True}})
    return None


def recorded(cfg: ModelPolicy, req: Request, figures: dict[str, Any], decision: str | None,
             now: datetime) -> dict[str, Any]:
    """What the request's evidence keeps of a look (``evidence["live"]``): the alias, the
    figures, the policy's live section, the decision and when. Recorded, not recomputable
    from the bundle: the labels are in the store, not in the evidence bundle."""
    live = cfg.comparison.live
    return {**(req.evidence_json().get("live") or {}), **figures,
            "min_pairs": live.min_pairs, "max_days": live.max_days, "rule": live.rule,
            "decision": decision, "looked_at": now.isoformat()}
