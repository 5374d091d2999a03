"""The decision rule: what the policy says of a request's evidence (its checks, and its
comparison with the champion), before any person has a say.

One function, read by the request job when it decides (``webhook_server/workflow/steps.py``)
and by ``podium verify`` / ``podium policy diff`` when they decide again from an evidence
bundle (``model_tests/evidence.py``), so the rule cannot drift between them. Plain values
in (check names that failed, the comparison's outcome and reasons), a ``Verdict`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from podium_policy.schema import Comparison

PROMOTE, STAGE, REJECT, ASK = "promote", "stage", "reject", "ask"


@dataclass(frozen=True)
class Verdict:
    """``promote`` / ``stage`` (the evidence passes; approval may still be needed),
    ``reject``, or ``ask`` (inconclusive, and the policy lets a person decide); ``reason``
    in words, empty for a pass."""

    kind: str
    reason: str = ""

    def as_json(self) -> dict[str, str]:
        return {"verdict": self.kind, "reason": self.reason}


def of_checks(failed: Sequence[str], target: str | None) -> Verdict | None:
    """The checks' word: a rejection when any failed, else None (go on; for Staging the
    checks are the whole decision)."""
    if failed:
        return Verdict(REJECT, f"failed checks: {', '.join(failed)}")
    if target == "Staging":
        return Verdict(STAGE)
    return None


def of_comparison(outcome: str | None, reasons: Sequence[str], rule: Comparison) -> Verdict:
    """The comparison's word (``outcome`` None: no champion to compare with, so the first
    champion passes): wins promotes, loses rejects, inconclusive rejects or asks a person
    (``comparison.inconclusive``)."""
    why = "; ".join(reasons)
    if outcome is None or outcome == "wins":
        return Verdict(PROMOTE)
    if outcome == "inconclusive":
        return Verdict(ASK if rule.inconclusive == "approval" else REJECT,
                       f"inconclusive comparison: {why}")
    return Verdict(REJECT, f"loses the comparison: {why}")


def decide(failed: Sequence[str], target: str | None, outcome: str | None,
           reasons: Sequence[str], rule: Comparison) -> Verdict:
    """The whole rule: the checks first, then (Production) the comparison."""
    return of_checks(failed, target) or of_comparison(outcome, reasons, rule)
