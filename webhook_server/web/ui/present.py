"""Stored values made fit to show: the evidence (checks, comparison) read defensively (a
field of the wrong type shows as text, never a 500), durations, ages, digests."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from webhook_server.core import scrub
from webhook_server.web.ui import charts


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any, limit: int = 300) -> str:
    """Stored text (often a model's) to show: secrets redacted, controls dropped, capped."""
    if value is None:
        return ""
    return scrub.clean(value if isinstance(value, str) else json.dumps(value, default=str),
                       limit)


def value(v: Any) -> str:
    """A check's value or threshold: numbers to 4 significant digits, the rest as text."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if (n := _num(v)) is not None:
        return str(int(n)) if n.is_integer() and abs(n) < 1e15 else f"{n:.4g}"
    return _text(v, 120)


def signed(v: Any, places: int = 4) -> str:
    """An improvement or a bound: ``+0.0123``; anything else as ``value`` shows it."""
    n = _num(v)
    return f"{n:+.{places}f}" if n is not None else value(v)


def percent(v: Any) -> str:
    n = _num(v)
    return f"{n * 100:g} %" if n is not None and 0 <= n <= 1 else value(v)


def evidence(req) -> dict:
    try:
        doc = req.evidence_json()
    except (ValueError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def checks(doc: dict) -> list[dict]:
    rows = doc.get("checks")
    out = []
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict):
            out.append({"name": _text(r.get("name"), 80), "category": _text(r.get("category"), 40),
                        "passed": r.get("passed") is True, "value": value(r.get("value")),
                        "threshold": value(r.get("threshold")),
                        "reason": _text(r.get("reason"))})
    return out


def comparison(doc: dict) -> dict | None:
    c = doc.get("comparison")
    if not isinstance(c, dict):
        return None
    sides = {k: c.get(k) if isinstance(c.get(k), dict) else {}
             for k in ("challenger", "champion")}
    rule, alpha = _text(c.get("rule"), 40) or "superiority", _num(c.get("alpha"))
    currency = _text(c.get("currency"), 8)
    value_rule, value_margin = _text(c.get("value_rule"), 40), _num(c.get("value_margin"))
    value_bound = None
    if value_margin is not None and value_rule in ("noninferiority", "superiority"):
        value_bound = -value_margin if value_rule == "noninferiority" else value_margin
    delta, v_delta, v_low = _num(c.get("delta")), _num(c.get("value_delta")), \
        _num(c.get("value_low"))
    v_high = 2 * v_delta - v_low if v_delta is not None and v_low is not None else None
    return {
        "metric": _text(c.get("metric"), 40), "rows": value(c.get("rows")),
        "challenger": {k: value(sides["challenger"].get(k))
                       for k in ("version", "metric", "f1", "precision", "recall", "value")},
        "champion": {k: value(sides["champion"].get(k))
                     for k in ("version", "metric", "f1", "precision", "recall", "value")},
        "delta": signed(delta), "ci_low": signed(c.get("ci_low")),
        "ci_high": signed(c.get("ci_high")), "confidence": percent(c.get("confidence")),
        "bound": signed(c.get("bound")), "rule": rule, "alpha": value(alpha),
        "p_value": value(c.get("p_value")), "detectable": signed(c.get("detectable")),
        "outcome": _text(c.get("outcome"), 20),
        "reasons": [_text(r) for r in c.get("reasons") or [] if r][:10]
        if isinstance(c.get("reasons"), list) else [],
        "value_delta": signed(v_delta, 2), "value_low": signed(v_low, 2), "currency": currency,
        "value_rule": value_rule, "value_margin": signed(value_bound, 2),
        "chart": charts.interval(c.get("ci_low"), c.get("ci_high"), delta, c.get("bound")),
        "value_chart": charts.interval(v_low, v_high, v_delta, value_bound,
                                       label="margin", fmt="{:+.2f}"),
    }


def decay(doc: dict) -> dict | None:
    """The live evidence of a rollback the monitoring job asked for (``monitoring.on_decay``):
    the former champion against the decayed one on the same labelled outcomes."""
    d = doc.get("decay")
    live = d.get("live") if isinstance(d, dict) else None
    if not isinstance(live, dict):
        return None
    delta, low, high = _num(live.get("delta")), _num(live.get("lower")), _num(live.get("upper"))
    bound, alpha = max(_num(live.get("bound")) or 0.0, 0.0), _num(live.get("alpha"))
    return {"former": value(live.get("shadow_version")),
            "champion": value(live.get("champion_version")), "pairs": value(live.get("pairs")),
            "auc_former": value(live.get("auc_shadow")),
            "auc_champion": value(live.get("auc_champion")), "delta": signed(delta),
            "low": signed(low), "high": signed(high), "bound": signed(bound),
            "level": percent(1 - alpha) if alpha is not None else "?",
            "verdict": _text(live.get("verdict"), 20), "job": _text(d.get("job"), 120),
            "chart": charts.interval(low, high, delta, bound)}


def live(doc: dict) -> dict | None:
    """The live evidence's last look (comparison.live), shown field by field; None before
    the first look."""
    lv = doc.get("live")
    if not isinstance(lv, dict) or not lv.get("looked_at"):
        return None
    alpha = _num(lv.get("alpha"))
    return {"pairs": value(lv.get("pairs")), "min_pairs": value(lv.get("min_pairs")),
            "shadow": _text(lv.get("shadow_version"), 40),
            "champion": _text(lv.get("champion_version"), 40),
            "auc_shadow": value(lv.get("auc_shadow")),
            "auc_champion": value(lv.get("auc_champion")),
            "delta": signed(lv.get("delta")), "lower": signed(lv.get("lower")),
            "upper": signed(lv.get("upper")), "bound": signed(lv.get("bound")),
            "level": percent(1 - alpha) if alpha is not None else "—",
            "alpha": value(lv.get("alpha")), "power": percent(lv.get("power")),
            "effect": value(lv.get("effect")), "verdict": _text(lv.get("verdict"), 40),
            "decision": _text(lv.get("decision") or "waiting", 40),
            "rule": _text(lv.get("rule"), 40), "alias": _text(lv.get("alias"), 80),
            "max_days": value(lv.get("max_days")), "looked_at": _text(lv.get("looked_at"), 40),
            "chart": charts.interval(lv.get("lower"), lv.get("upper"), _num(lv.get("delta")),
                                     lv.get("bound"))}


def holdout(doc: dict) -> dict | None:
    h = doc.get("holdout")
    if not isinstance(h, dict):
        return None
    return {"sha256": _text(h.get("sha256"), 64), "rows": value(h.get("rows")),
            "source": _text(h.get("source") or h.get("uri"), 200)}


def digest(req, evidence_digest) -> str:
    """sha256 of what an approval approves (``decisions.evidence_digest``: version, champion
    compared with, checks, comparison, holdout, model files): two people approving see the
    same digest, and the form carries it. Empty when the stored evidence cannot be read."""
    try:
        return evidence_digest(req)
    except (ValueError, TypeError, AttributeError):
        return ""


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def age(at: datetime | None, now: datetime | None = None) -> str:
    if at is None:
        return ""
    return duration(max(((now or datetime.now(UTC)) - at).total_seconds(), 0.0))


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def drift(row: dict | None) -> dict | None:
    """The last drift report (an audit row's detail), its 20 largest PSI values."""
    if not row:
        return None
    d = row.get("detail") if isinstance(row.get("detail"), dict) else {}
    psi = d.get("psi") if isinstance(d.get("psi"), dict) else {}
    pairs = sorted(((str(k)[:80], n) for k, v in psi.items() if (n := _num(v)) is not None),
                   key=lambda kv: -kv[1])[:20]
    drifted = d.get("drifted") if isinstance(d.get("drifted"), list) else []
    return {"at": row.get("at"), "version": _text(d.get("model_version"), 120),
            "rows": value(d.get("rows")), "threshold": value(d.get("threshold")),
            "drifted": [_text(x, 80) for x in drifted][:50],
            "psi": [(k, value(v)) for k, v in pairs]}
