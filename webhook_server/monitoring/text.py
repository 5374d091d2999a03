"""The monitoring report as text: the table ``podium monitor`` prints, the drift line and the
one-line verdict the CLI, the Slack alert and the demo share."""

from __future__ import annotations

from webhook_server.core.text_table import render
from webhook_server.monitoring.report import MonitorReport

# [x]: the figure recorded at promotion; (lo-hi): the interval
HEADERS = ["version", "period", "scored", "labelled", "ROC AUC", "[promotion]",
           "precision [promotion]", "recall [promotion]", "churn pred / obs", "score PSI",
           "decay"]


def table(report: MonitorReport) -> str:
    """Every version and period, then the drift line and the verdict."""
    rows = []
    for r in report.rows:
        holdout = r["holdout"] or {}
        rows.append([f"v{r['version']}", r["period"], f"{r['scored']:,}", f"{r['labelled']:,}",
                     _with(r["auc"], r["auc_ci"], 3), _num(holdout.get("auc"), 3, "[{}]"),
                     _with(r["precision"], r["precision_ci"], 2)
                     + _at(holdout.get("precision")),
                     _with(r["recall"], r["recall_ci"], 2) + _at(holdout.get("recall")),
                     f"{_pct(r['predicted_rate'])} / {_pct(r['observed_rate'])}",
                     "-" if r.get("psi") is None else f"{r['psi']:.3f}",
                     "YES" if r["verdict"]["decayed"] else
                     ("-" if r["verdict"]["judged"] else "not judged")])
    rule = report.rule
    head = (f"{report.model} by {report.period}; threshold {report.threshold:g}; champion "
            f"{'v' + report.champion if report.champion else '(none)'}; decay: ROC AUC more "
            f"than {rule['max_auc_drop']:g} below [promotion], on {rule['min_labels']}+ labels; "
            f"(lo-hi): {rule['confidence']:.0%} interval")
    return "\n".join([head, render(HEADERS, rows, max_width=40), drift_line(report),
                      verdict_line(report)])


def drift_line(report: MonitorReport, top: int = 6) -> str:
    d = report.drift
    if not d:
        return "drift: no drift report yet (the drift job writes them)"
    psi = sorted(d["psi"].items(), key=lambda kv: -kv[1])[:top]
    shown = ", ".join(f"{k} {v:.2f}{'*' if k in d['drifted'] else ''}" for k, v in psi)
    return (f"drift ({d['model_version']}, {d['at']:%Y-%m-%d %H:%M} UTC; * PSI at or above "
            f"{d['threshold']:g}): {shown}")


def verdict_line(report: MonitorReport) -> str:
    d = report.decay
    if d is None:
        return "decay: not judged yet (no labelled period of the champion with enough labels)"
    where = f"{report.model} v{d['version']} in {d['period']}"
    return f"{'DECAY' if d['decayed'] else 'no decay'}: {where}: {d['reason']}"


def _num(value: float | None, digits: int, shape: str = "{}") -> str:
    return "-" if value is None else shape.format(f"{value:.{digits}f}")


def _with(value: float | None, ci, digits: int) -> str:
    if value is None:
        return "-"
    return _num(value, digits) + (f" ({ci[0]:.{digits}f}-{ci[1]:.{digits}f})" if ci else "")


def _at(value: float | None) -> str:
    return "" if value is None else f" [{value:.2f}]"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
