"""A decision computed again from its evidence bundle alone: no model is loaded, nothing
is written. ``rederive`` applies a policy section (the bundle's own, for ``podium verify``;
another file's, for ``podium policy diff``) to the bundle's scores with the same functions
the live path uses: ``figures`` for the checks judged on holdout scores, ``compare`` for
the comparison, ``podium_policy.verdict`` for the decision rule. Checks whose inputs are
not in the bundle (latency, load time, behaviour probes, metadata) keep their recorded
results, and say so (``recorded``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from model_tests import figures
from model_tests.bundle import Bundle, section_from
from model_tests.compare import Comparison, compare
from podium_policy.policy import Business, Checks
from podium_policy.policy import Comparison as ComparisonRule
from podium_policy.verdict import Verdict, decide

TOLERANCE = 1e-9  # recomputed floats: the same code on the same numbers


@dataclass(frozen=True)
class Rederived:
    """Every check (``recorded`` lists those taken as recorded), the comparison (None: no
    champion), the verdict."""

    checks: list[dict[str, Any]]
    comparison: Comparison | None
    verdict: Verdict
    recorded: list[str] = field(default_factory=list)

    def failed(self) -> list[str]:
        return [c["name"] for c in self.checks if not c["passed"]]


def _check(name: str, category: str, figure: figures.Figure) -> dict[str, Any]:
    passed, value, threshold, reason = figure
    return {"name": name, "category": category, "passed": bool(passed), "value": value,
            "threshold": threshold, "reason": reason}


def _recheck(bundle: Bundle, recorded: dict, t: Checks) -> dict | None:
    """The check computed again from the scores, or None when its inputs are missing."""
    scores, name = bundle.vector("challenger"), recorded["name"]
    if scores is None or recorded.get("value") is None:  # it never saw scores
        return None
    if name in figures.FLOORS:
        return _check(name, recorded["category"], figures.floor(name, bundle.labels,
                                                                scores, t))
    columns = bundle.slice_columns()
    if name == "slices" and all(c in columns for c in t.slice_columns):
        return _check(name, recorded["category"],
                      figures.slices(bundle.labels, scores, columns, t))
    return None


def rederive(bundle: Bundle, checks: Checks | None = None,
             rule: ComparisonRule | None = None, business: Business | None = None
             ) -> Rederived:
    """The decision under the given policy sections (None: the bundle's own)."""
    own = section_from(bundle.doc)
    t = checks or own[0]
    rule, business = rule or own[1], business or own[2]
    out, kept = [], []
    for recorded in bundle.doc.get("checks") or []:
        again = _recheck(bundle, recorded, t) if recorded["name"] in figures.FROM_SCORES \
            else None
        if again is None:
            kept.append(recorded["name"])
        out.append(again or dict(recorded))
    comparison = None
    recorded_cmp = bundle.doc.get("comparison")
    champion = bundle.vector("champion")
    if recorded_cmp is not None and champion is not None:
        request = bundle.doc["request"]
        comparison = compare(bundle.labels, bundle.vector("challenger"), champion,
                             challenger_version=str(request["version"]),
                             champion_version=str(request["champion"]),
                             threshold=t.decision_threshold, comparison=rule,
                             business=business, seed_from=tuple(bundle.doc["seed_from"]),
                             overlap=recorded_cmp.get("overlap"))
    failed = [c["name"] for c in out if not c["passed"]]
    verdict = decide(failed, bundle.doc["request"].get("target"),
                     comparison.outcome if comparison else None,
                     comparison.reasons if comparison else (), rule)
    return Rederived(out, comparison, verdict, kept)


# --- verify: the recomputation against what was recorded ------------------------------------

COMPARED = ("outcome", "wins", "rows", "delta", "ci_low", "ci_high", "p_value", "se",
            "detectable", "value_delta", "value_low", "seed")
SIDES = ("metric", "f1", "precision", "recall", "value")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if not (math.isfinite(a) and math.isfinite(b)):
            return math.isnan(a) and math.isnan(b) or a == b
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b


def differences(bundle: Bundle, again: Rederived) -> list[str]:
    """Each way the recomputation differs from what the bundle recorded (empty: verified)."""
    out = []
    recorded = {c["name"]: c for c in bundle.doc.get("checks") or []}
    for check in again.checks:
        was = recorded.get(check["name"], {})
        if check["name"] in again.recorded:
            continue
        if was.get("passed") != check["passed"] or not _same(was.get("value"),
                                                              check["value"]):
            out.append(f"check {check['name']}: recorded {_word(was.get('passed'))} "
                       f"{was.get('value')!r}, recomputed {_word(check['passed'])} "
                       f"{check['value']!r}")
    was_cmp = bundle.doc.get("comparison")
    if was_cmp is not None and again.comparison is not None:
        now = again.comparison.as_json()
        for key in COMPARED:
            if not _same(_none_nan(was_cmp.get(key)), _none_nan(now.get(key))):
                out.append(f"comparison {key}: recorded {was_cmp.get(key)!r}, recomputed "
                           f"{now.get(key)!r}")
        for side in ("challenger", "champion"):
            for key in SIDES:
                a, b = (was_cmp.get(side) or {}).get(key), (now.get(side) or {}).get(key)
                if not _same(_none_nan(a), _none_nan(b)):
                    out.append(f"comparison {side} {key}: recorded {a!r}, recomputed {b!r}")
    elif was_cmp is not None:
        out.append("comparison: recorded, but the bundle has no champion scores to "
                   "compute it from")
    decision = (bundle.doc.get("decision") or {}).get("verdict")
    if decision != again.verdict.kind:
        out.append(f"decision: recorded {decision!r}, the rule now gives "
                   f"{again.verdict.kind!r} ({again.verdict.reason or 'passes'})")
    return out


def _word(passed: Any) -> str:
    return {True: "pass", False: "fail"}.get(passed, "nothing")


def _none_nan(value: Any) -> Any:
    return float("nan") if value is None else value
