"""A model's monitoring trends as inline SVG, for its page on the web UI:
``model_trends(conn, model, policy.for_model(model))`` -> ``{"auc", "psi", "churn"}``, each
one ``<svg>`` string to place in the page as is (escaped inside; store reads only, no MLflow
call). ``charts`` does the drawing from data, for tests and other callers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from podium_policy.schema import ModelPolicy
from webhook_server.monitoring import recorded
from webhook_server.monitoring.report import MonitorReport, build, period_of
from webhook_server.monitoring.svg import line_chart

# What the web page draws (and reads): the last 90 days, 26 weeks or 24 months.
WINDOW = {"day": timedelta(days=90), "week": timedelta(weeks=26), "month": timedelta(days=730)}


def model_trends(conn: Connection, model: str, mp: ModelPolicy, *,
                 now: datetime | None = None) -> dict[str, str]:
    """The charts of the periods in the policy period's window before ``now`` (default: the
    current time), so a page view reads a bounded slice of the labels, not all of them."""
    since = (now or datetime.now(UTC)) - WINDOW[mp.monitoring.period]
    report = build(conn, model, mp, since=since)
    return charts(report, recorded.champion_moves(conn, model, mp.aliases.champion),
                  list(reversed(recorded.drift_reports(conn, model, limit=60))))


def charts(report: MonitorReport, moves: list[dict[str, Any]],
           drift_history: list[dict[str, Any]], top: int = 6) -> dict[str, str]:
    """``moves``: the champion's moves, oldest first (at, version); ``drift_history``: drift
    reports oldest first (at, psi, threshold)."""
    rows, model = report.rows, report.model
    marks = [(period_of(m["at"], report.period), f"v{m['version']}") for m in moves]
    periods = sorted({r["period"] for r in rows} | ({p for p, _ in marks} if rows else set()))
    versions = list(dict.fromkeys(r["version"] for r in rows))
    by = {(r["version"], r["period"]): r for r in rows}
    auc = line_chart(
        f"{model}: realised ROC AUC by version and {report.period} (bars: interval; dashed: "
        "champion moves)", periods,
        {f"v{v}": [by.get((v, p), {}).get("auc") for p in periods] for v in versions},
        y_range=(0.5, 1.0), markers=marks, intervals={
            f"v{v}": [by.get((v, p), {}).get("auc_ci") for p in periods] for v in versions})
    return {"auc": auc, "psi": _psi(model, drift_history, top),
            "churn": _churn(model, report.period, periods, rows)}


def _psi(model: str, history: list[dict[str, Any]], top: int) -> str:
    latest = {f"{r['at']:%Y-%m-%d %H:%M}": r for r in history}  # one report a minute
    xs = list(latest)
    features: dict[str, float] = {}
    for r in latest.values():
        for name, value in r["psi"].items():
            features[name] = max(features.get(name, 0.0), value)
    shown = sorted(features, key=lambda k: -features[k])[:top]
    threshold = next((r["threshold"] for r in reversed(history) if r.get("threshold")), None)
    return line_chart(f"{model}: PSI of the {len(shown)} most drifted features (dashed: "
                      "threshold)", xs,
                      {k: [r["psi"].get(k) for r in latest.values()] for k in shown},
                      y_range=(0.0, (threshold or 0.2) * 1.5), threshold=threshold)


def _churn(model: str, period: str, periods: list[str], rows: list[dict[str, Any]]) -> str:
    predicted, observed = [], []
    for p in periods:
        cells = [r for r in rows if r["period"] == p]
        scored = sum(r["scored"] for r in cells)
        labelled = sum(r["labelled"] for r in cells)
        predicted.append(sum((r["predicted_rate"] or 0) * r["scored"] for r in cells) / scored
                         if scored else None)
        observed.append(sum(r["churned"] for r in cells) / labelled if labelled else None)
    return line_chart(f"{model}: churn rate predicted (mean score) and observed, by {period}",
                      periods, {"predicted": predicted, "observed": observed},
                      y_range=(0.0, 0.5), y_format="{:.0%}")
