"""A model's monitoring trends as inline SVG, for its page on the web UI:
``model_trends(conn, model, policy.for_model(model))`` -> ``{"auc", "psi", "churn",
"live"}``, each one ``<svg>`` string to place in the page as is (escaped inside; store reads
only, no MLflow call). ``charts`` does the drawing from data, for tests and other callers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from podium_policy.schema import ModelPolicy
from webhook_server.monitoring import recorded
from webhook_server.monitoring.live import (
    LiveComparison,
    compare_live,
    paired_labels,
    shadowed,
)
from webhook_server.monitoring.report import MonitorReport, build, period_of
from webhook_server.monitoring.svg import interval_rows, line_chart

# What the web page draws (and reads): the last 90 days, 26 weeks or 24 months.
WINDOW = {"day": timedelta(days=90), "week": timedelta(weeks=26), "month": timedelta(days=730)}


def model_trends(conn: Connection, model: str, mp: ModelPolicy, *,
                 now: datetime | None = None) -> dict[str, str]:
    """The charts of the periods in the policy period's window before ``now`` (default: the
    current time), so a page view reads a bounded slice of the labels, not all of them."""
    since = (now or datetime.now(UTC)) - WINDOW[mp.monitoring.period]
    report = build(conn, model, mp, since=since)
    return charts(report, recorded.champion_moves(conn, model, mp.aliases.champion),
                  list(reversed(recorded.drift_reports(conn, model, limit=60))),
                  live=live_in_window(conn, model, mp, since))


def live_in_window(conn: Connection, model: str, mp: ModelPolicy,
                   since: datetime) -> list[LiveComparison]:
    """Each version logged in shadow against the champion, on the outcomes both predicted
    at ``since`` or later (``live.live_comparisons`` on the page's window)."""
    champion, shadows = shadowed(conn, model)
    if champion is None:
        return []
    return [compare_live(*paired_labels(conn, model, v, champion, since=since), model=model,
                         shadow_version=v, champion_version=champion, mp=mp)
            for v in shadows]


def charts(report: MonitorReport, moves: list[dict[str, Any]],
           drift_history: list[dict[str, Any]], top: int = 6,
           live: list[LiveComparison] = ()) -> dict[str, str]:
    """``moves``: the champion's moves, oldest first (at, version); ``drift_history``: drift
    reports oldest first (at, psi, threshold); ``live``: the shadows' live comparisons (a
    shadow's legend says its labelled pairs)."""
    rows, model = report.rows, report.model
    marks = [(period_of(m["at"], report.period), f"v{m['version']}") for m in moves]
    periods = sorted({r["period"] for r in rows} | ({p for p, _ in marks} if rows else set()))
    versions = list(dict.fromkeys(r["version"] for r in rows))
    by = {(r["version"], r["period"]): r for r in rows}
    pairs = {lc.shadow_version: lc.pairs for lc in live}
    name = {v: f"v{v} shadow, {pairs[v]:,} pairs" if v in pairs else f"v{v}" for v in versions}
    auc = line_chart(
        f"{model}: realised ROC AUC by version and {report.period} (bars: interval; dashed: "
        "champion moves)", periods,
        {name[v]: [by.get((v, p), {}).get("auc") for p in periods] for v in versions},
        y_range=(0.5, 1.0), markers=marks, intervals={
            name[v]: [by.get((v, p), {}).get("auc_ci") for p in periods] for v in versions})
    return {"auc": auc, "psi": _psi(model, drift_history, top),
            "churn": _churn(model, report.period, periods, rows), "live": _live(model, live)}


def _live(model: str, live: list[LiveComparison]) -> str:
    """Each shadow's live ROC AUC gain over the champion with its always-valid interval."""
    shown = [lc for lc in live if lc.delta is not None]
    alpha = live[0].alpha if live else 0.05
    return interval_rows(
        f"{model}: live ROC AUC gain over the champion, same outcomes (always-valid "
        f"{1 - alpha:.0%} interval)",
        [(f"v{lc.shadow_version} vs v{lc.champion_version}, {lc.pairs:,} pairs", lc.delta,
          lc.lower, lc.upper) for lc in shown],
        bound=live[0].bound if live else 0.0,
        empty=("no data yet" if not live else
               "too few labelled pairs yet: " + ", ".join(
                   f"v{lc.shadow_version} {lc.pairs:,}" for lc in live)))


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
