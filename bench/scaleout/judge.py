"""The drill's judge: decides by the versions' registry tags instead of scoring models.

The drill measures coordination (claims, leases, outbox, ledger) under chaos, not model
quality (the checks and the comparison have their own tests and benchmarks), and 200 real
decisions would cost minutes of sandboxes on a small machine. So a version carries its
quality as the tag ``drill.quality``; the check reads it back from MLflow (an MLflow outage
stops this judge as it stops the real one) and the comparison wins when the challenger's
quality is above the champion's. Everything around it is the real workflow.
"""

from __future__ import annotations

from model_tests.checks import CheckReport, CheckResult
from model_tests.compare import LOSES, WINS, Comparison, Side
from webhook_server.adapters.registry import Registry
from webhook_server.workflow import Gates

QUALITY = "drill.quality"


class TagJudge:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def gates(self) -> Gates:
        return Gates(check=self.check, compare=self.compare)

    def quality(self, model: str, version: str) -> float | None:
        raw = self.registry.version_tags(model, version).get(QUALITY)
        return float(raw) if raw is not None else None

    def check(self, model_uri: str) -> CheckReport:
        model, version = model_uri.removeprefix("models:/").rsplit("/", 1)
        quality = self.quality(model, version)
        return CheckReport((
            CheckResult("drill_registered", "metadata", True, version, None, "in MLflow"),
            CheckResult("drill_quality", "metadata", quality is not None, quality, None,
                        f"tag {QUALITY}" + ("" if quality is not None else " missing"))))

    def compare(self, model: str, challenger: str, champion: str) -> Comparison:
        ours = self.quality(model, challenger)
        theirs = self.quality(model, champion)
        ours = float("-inf") if ours is None else ours
        theirs = float("-inf") if theirs is None else theirs
        wins = ours > theirs
        delta = ours - theirs if theirs != float("-inf") else 1.0
        return Comparison(
            "drill_quality", 1000, Side(challenger, ours, 0.5, 0.5, 0.5, 0.0),
            Side(champion, theirs, 0.5, 0.5, 0.5, 0.0), delta, delta, delta, 0.9, 0, wins,
            [] if wins else [f"quality {ours:g} is not above the champion's {theirs:g}"],
            "EUR", p_value=0.0 if wins else 1.0, value_delta=0.0, value_low=0.0,
            outcome=WINS if wins else LOSES)
