"""Live evidence: a shadow version against the champion on real outcomes.

The pairs are the outcomes both versions' predictions were joined to (``podium labels``
stores one label per version and outcome: the same customer and outcome on two rows), the
predictions of one run of ``podium score``: the shadow's scored beside the champion's on the
same row (``shadow.shadow_batch_id``). On them: each version's ROC AUC, DeLong's paired
difference (``model_tests.stats``, as at promotion) and the always-valid confidence sequence
of ``model_tests.sequential``, whose verdict may be read after every batch of labels without
raising the false-promotion rate above ``alpha``. ``live_comparison`` is what a workflow
step can call (a request waiting in ``shadowing``, a decay that proposes a rollback);
``podium monitor`` shows one per shadow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from podium_policy.schema import ModelPolicy
from webhook_server.monitoring.shadow import shadow_batch_id
from webhook_server.store import Store, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import inference_batches, labels, requests

MIN_PAIRS = 20  # fewer labelled pairs (or one class only): no figures, just the count


@dataclass(frozen=True)
class LiveComparison:
    model: str
    shadow_version: str
    champion_version: str
    pairs: int  # labelled outcomes both versions predicted
    churners: int
    auc_shadow: float | None
    auc_champion: float | None
    delta: float | None  # shadow minus champion
    se: float | None  # DeLong
    lower: float | None  # the confidence sequence at level 1 - alpha
    upper: float | None
    fixed_lower: float | None  # the fixed-sample one-sided bound (valid at one look only)
    bound: float  # what the lower end must clear (the comparison rule's)
    alpha: float
    effect: float  # the gain the power is for (policy shadow.effect)
    power: float | None  # chance this look finds a true gain of ``effect``
    pairs_needed: int | None  # pairs at which ``effect`` is found with 80 % power
    verdict: str  # better | not better | undecided | too few pairs
    # the request waiting in shadowing for this version, whose looks judge only the pairs
    # predicted since it entered (``since``, ISO); None: every pair ever logged
    request_id: int | None = None
    since: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def live_comparison(store: Store, model: str, shadow_version: str, champion_version: str,
                    mp: ModelPolicy | None = None, *,
                    since: datetime | None = None) -> LiveComparison:
    """The paired comparison of ``shadow_version`` with ``champion_version`` of ``model`` on
    every outcome both predicted (``since``: of predictions made then or later), under
    ``mp``'s comparison rule and shadow section."""
    mp = mp or ModelPolicy()
    with store.read() as conn:
        y, s, c = paired_labels(conn, model, shadow_version, champion_version, since=since)
    return compare_live(y, s, c, model=model, shadow_version=shadow_version,
                        champion_version=champion_version, mp=mp)


def paired_labels(conn: Connection, model: str, shadow_version: str, champion_version: str,
                  *, since: datetime | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(outcomes, shadow scores, champion scores) of the outcomes both versions' labels
    judge (predicted at ``since`` or later), in a stable order (customer, outcome). Only
    predictions of one run pair: the shadow's batch is the one scored beside the champion's
    (``shadow_batch_id``); a version scored on its own (its own input, its own time) or the
    champion scored again without it judges nothing against the other."""
    q = (select(labels.c.version, labels.c.customer_id, labels.c.outcome, labels.c.churn,
                labels.c.score, labels.c.batch_id)
         .where(labels.c.model == model,
                labels.c.version.in_([shadow_version, champion_version])))
    if since is not None:
        q = q.where(labels.c.scored_at >= since)
    shadow: dict[tuple, tuple[str, float]] = {}
    champion: dict[tuple, tuple[int, float, str]] = {}
    for version, customer, outcome, churn, score, batch in conn.execute(q):
        if version == shadow_version:
            shadow[(customer, outcome)] = (batch, score)
        else:
            champion[(customer, outcome)] = (churn, score, batch)
    keys = sorted(k for k in shadow.keys() & champion.keys()
                  if shadow[k][0] == shadow_batch_id(champion[k][2], shadow_version))
    y = np.array([champion[k][0] for k in keys], dtype=int)
    return y, np.array([shadow[k][1] for k in keys], dtype=float), \
        np.array([champion[k][1] for k in keys], dtype=float)


def compare_live(y: np.ndarray, s: np.ndarray, c: np.ndarray, *, model: str,
                 shadow_version: str, champion_version: str,
                 mp: ModelPolicy) -> LiveComparison:
    """The live comparison on given pairs (what ``live_comparison`` reads from the store),
    under ``comparison.live``'s rule and alpha when the policy sets it."""
    from model_tests import sequential, stats

    rule, effect = mp.comparison, mp.shadow.effect
    live = rule.live  # comparison.live: its own rule and alpha, else the comparison's
    kind, alpha = (live.rule, live.alpha) if live is not None else (rule.rule, rule.alpha)
    bound = rule.min_improvement if kind == "superiority" else -rule.margin
    n, churners = len(y), int(np.sum(y))
    base = {"model": model, "shadow_version": shadow_version,
            "champion_version": champion_version, "pairs": n, "churners": churners,
            "bound": bound, "alpha": alpha, "effect": effect}
    if n < MIN_PAIRS or churners in (0, n):
        return LiveComparison(**base, auc_shadow=None, auc_champion=None, delta=None,
                              se=None, lower=None, upper=None, fixed_lower=None, power=None,
                              pairs_needed=None, verdict="too few pairs")
    auc_s, auc_c, var = stats.delong(y, s, c)
    delta, se = auc_s - auc_c, math.sqrt(var)
    lower, upper = sequential.interval(delta, se, alpha, effect)
    needed = (sequential.pairs_needed(effect, se * math.sqrt(n), alpha, effect)
              if se > 0 else None)
    return LiveComparison(**base, auc_shadow=auc_s, auc_champion=auc_c, delta=delta, se=se,
                          lower=lower, upper=upper,
                          fixed_lower=delta - stats.z(1 - alpha) * se,
                          power=sequential.power(se, effect, alpha, effect, bound),
                          pairs_needed=needed,
                          verdict=sequential.verdict(lower, upper, bound))


def shadowed(conn: Connection, model: str) -> tuple[str | None, list[str]]:
    """(the champion's version: the one of its latest logged batch, the versions logged in
    shadow, in version order) of ``model``."""
    champion = conn.execute(
        select(inference_batches.c.version)
        .where(inference_batches.c.model == model, inference_batches.c.role == "champion")
        .order_by(inference_batches.c.scored_at.desc(), inference_batches.c.id.desc())
        .limit(1)).scalar()
    shadows = conn.execute(
        select(inference_batches.c.version).distinct()
        .where(inference_batches.c.model == model, inference_batches.c.role == "shadow")
    ).scalars()
    return champion, sorted((v for v in shadows if v != champion),
                            key=lambda v: (len(v), v))


def live_comparisons(store: Store, model: str, mp: ModelPolicy) -> list[LiveComparison]:
    """One live comparison per version logged in shadow, against the current champion: the
    ledger's (as the shadowing requests' looks take it), else the latest scored batch's. A
    version with a request waiting in ``shadowing`` is shown on that request's pairs (those
    predicted since it entered: what its looks judge), the others on every pair logged."""
    with store.read() as conn:
        logged, shadows = shadowed(conn, model)
        champion = ledger.current(conn, model, mp.aliases.champion) or logged
        waiting = _waiting(conn, model)
    shadows = [v for v in shadows if v != champion]
    if champion is None:
        return []
    out = []
    for v in shadows:
        request_id, since = waiting.get(v, (None, None))
        found = live_comparison(store, model, v, champion, mp, since=since)
        out.append(found if since is None else
                   replace(found, request_id=request_id, since=since.isoformat()))
    return out


def _waiting(conn: Connection, model: str) -> dict[str, tuple[int, datetime]]:
    """version -> (its request waiting in shadowing, when the request last entered it)."""
    out = {}
    for request_id, version, updated in conn.execute(
            select(requests.c.id, requests.c.version, requests.c.updated_at)
            .where(requests.c.model == model, requests.c.state == states.SHADOWING)):
        entered = reqs.last_event_into(conn, request_id, states.SHADOWING)
        out[version] = (request_id, entered.at if entered else updated)
    return out


def live_table(rows: list[LiveComparison]) -> str:
    """The live comparisons for a person (``podium monitor``)."""
    from webhook_server.core.text_table import render

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    body = [[f"v{r.shadow_version} vs v{r.champion_version}",
             f"request {r.request_id} (since {r.since[:16].replace('T', ' ')})"
             if r.since else "all logged", f"{r.pairs:,}",
             f(r.auc_shadow, ".4f"), f(r.auc_champion, ".4f"), f(r.delta, "+.4f"),
             "-" if r.lower is None else f"[{r.lower:+.4f}, {r.upper:+.4f}]",
             f(r.power, ".0%"), f(r.pairs_needed, ","), r.verdict] for r in rows]
    alpha = rows[0].alpha if rows else 0.05
    effect = rows[0].effect if rows else 0.02
    return ("live evidence (shadow vs champion on the same labelled outcomes; interval: "
            f"always-valid at {1 - alpha:.0%}; power for +{effect:g} AUC):\n"
            + render(["shadow", "pairs of", "pairs", "AUC shadow", "AUC champion", "difference",
                      "interval", "power", "pairs for 80%", "verdict"], body))
