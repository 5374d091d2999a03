"""The monitoring report of one model (``podium monitor``, the monitoring job, the trends):
per version and period, rows scored and labelled, realised quality with intervals beside the
figures recorded at promotion, predicted against observed churn; the latest drift report;
and the decay verdict on the champion's latest period with enough labels."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection

from podium_policy.schema import ModelPolicy
from webhook_server.monitoring import recorded
from webhook_server.monitoring.realised import realised
from webhook_server.monitoring.rule import judge
from webhook_server.store import monitoring as rows


def period_of(at: datetime, period: str) -> str:
    """``2026-06-03`` (day), ``2026-W23`` (ISO week) or ``2026-06`` (month)."""
    if period == "day":
        return f"{at:%Y-%m-%d}"
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{at:%Y-%m}"


# (period, threshold, confidence) -> {(version, period label): realised()'s figures}
Engine = Callable[[str, float, float], dict[tuple, dict]]


@dataclass(frozen=True)
class MonitorReport:
    model: str
    period: str
    threshold: float
    champion: str | None
    rule: dict[str, Any]
    rows: list[dict[str, Any]]  # one per version and period, oldest period first
    drift: dict[str, Any] | None  # the latest drift report
    decay: dict[str, Any] | None  # the verdict that counts (None: nothing judged yet)

    @property
    def decayed(self) -> bool:
        return bool(self.decay and self.decay["decayed"])

    def as_json(self) -> dict[str, Any]:
        drift = self.drift and {**self.drift, "at": self.drift["at"].isoformat()}
        return {"model": self.model, "period": self.period, "threshold": self.threshold,
                "champion": self.champion, "rule": self.rule, "rows": self.rows,
                "drift": drift, "decay": self.decay, "decayed": self.decayed}


def build(conn: Connection, model: str, mp: ModelPolicy, *, period: str | None = None,
          holdout_of: Callable[[str], dict | None] | None = None,
          since: datetime | None = None, engine: Engine | None = None,
          psi: Callable[[str], dict[tuple, float | None]] | None = None) -> MonitorReport:
    """``holdout_of(version)``: the holdout figures when the store has no promotion checks
    for a version (``recorded.run_figures`` on MLflow); None leaves them out. ``since``:
    only predictions made then or later (the web page's window). ``engine``: computes the
    realised figures of every labelled (version, period) elsewhere (Spark); default here.
    ``psi(period)``: the scores' PSI per (version, period) (``score_psi``); None: no PSI."""
    cfg, threshold = mp.monitoring, mp.checks.decision_threshold
    period = period or cfg.period
    scored: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    for b in rows.batches(conn, model, since):
        cell = scored[(b["version"], period_of(b["scored_at"], period))]
        cell[0] += b["rows"]
        cell[1] += (b["mean_score"] or 0.0) * b["rows"]
    labelled: dict[tuple, Any] = defaultdict(list)
    if engine is not None:
        labelled.update(engine(period, threshold, cfg.confidence))
    else:
        for version, scored_at, score, churn in rows.labelled(conn, model, since):
            labelled[(version, period_of(scored_at, period))].append((score, churn))
    psi_at = psi(period) if psi is not None else {}
    figures = {v: recorded.promotion_figures(conn, model, v) for v, _ in scored | labelled}
    for v, found in figures.items():
        if found is None and holdout_of is not None:
            figures[v] = holdout_of(v)
    out = []
    for version, label in sorted(scored | labelled, key=lambda k: (k[1], _number(k[0]))):
        n, total = scored.get((version, label), (0, 0.0))
        found = labelled.get((version, label), [])
        if isinstance(found, dict):  # the engine's figures
            figures_at = found
        else:
            pairs = np.array(found, dtype=float).reshape(-1, 2)
            figures_at = realised(pairs[:, 1], pairs[:, 0], threshold, cfg.confidence)
        holdout = figures[version]
        verdict = judge(figures_at["labelled"], figures_at["auc"], figures_at["auc_ci"],
                        holdout and holdout["auc"], max_auc_drop=cfg.max_auc_drop,
                        min_labels=cfg.min_labels)
        out.append({"version": version, "period": label, "scored": n,
                    "predicted_rate": total / n if n else None,
                    **{("labelled_predicted_rate" if k == "predicted_rate" else k): v
                       for k, v in figures_at.items()},
                    "psi": psi_at.get((version, label)), "holdout": holdout,
                    "verdict": verdict.as_json()})
    champion = recorded.champion(conn, model, mp.aliases.champion)
    drift = recorded.drift_reports(conn, model, limit=1)
    return MonitorReport(model, period, threshold, champion, {
        "max_auc_drop": cfg.max_auc_drop, "min_labels": cfg.min_labels,
        "confidence": cfg.confidence}, out, drift[0] if drift else None,
        _decay(out, champion, rows.shadow_only_versions(conn, model)))


def _decay(out: list[dict], champion: str | None,
           shadows: set[str] = frozenset()) -> dict | None:
    """The verdict on the judged version's latest judged period: the champion's (the newest
    labelled version when no champion is known, never one only ever scored in shadow)."""
    labelled = [r for r in out if r["labelled"] and r["version"] not in shadows]
    if not labelled:
        return None
    version = champion if any(r["version"] == champion for r in labelled) else (
        labelled[-1]["version"] if champion is None else None)
    judged = [r for r in labelled if r["version"] == version and r["verdict"]["judged"]]
    if not judged:
        return None
    last = judged[-1]
    return {"version": last["version"], "period": last["period"], **last["verdict"]}


def _number(version: str) -> tuple:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)
