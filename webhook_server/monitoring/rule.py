"""The decay rule (policy ``monitoring``): a version has decayed in a period when, with at
least ``min_labels`` labelled predictions, its realised ROC AUC is below the AUC recorded at
promotion by more than ``max_auc_drop`` and the interval of the drop lies above zero."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    decayed: bool
    judged: bool  # enough labels and figures to apply the rule at all
    reason: str
    drop: float | None = None
    drop_ci: tuple[float, float] | None = None

    def as_json(self) -> dict:
        return {"decayed": self.decayed, "judged": self.judged, "reason": self.reason,
                "drop": self.drop, "drop_ci": self.drop_ci}


def judge(labelled: int, auc: float | None, auc_ci: tuple[float, float] | None,
          promotion_auc: float | None, *, max_auc_drop: float, min_labels: int) -> Verdict:
    """The rule on one version and period. The promotion AUC is taken as recorded (a fixed
    reference), so the drop's interval is the realised AUC's, reflected."""
    if labelled < min_labels:
        return Verdict(False, False, f"{labelled} labelled, fewer than min_labels "
                                     f"{min_labels}")
    if promotion_auc is None:
        return Verdict(False, False, "no ROC AUC recorded at promotion")
    if auc is None or auc_ci is None:
        return Verdict(False, False, "realised ROC AUC cannot be computed (one class)")
    drop = promotion_auc - auc
    ci = (promotion_auc - auc_ci[1], promotion_auc - auc_ci[0])
    if drop > max_auc_drop and ci[0] > 0:
        return Verdict(True, True, f"ROC AUC {auc:.3f} vs {promotion_auc:.3f} at promotion: "
                       f"drop {drop:.3f}, more than {max_auc_drop:g} (interval {ci[0]:.3f} "
                       f"to {ci[1]:.3f})", drop, ci)
    why = (f"drop {drop:.3f}, within {max_auc_drop:g}" if drop <= max_auc_drop
           else f"drop {drop:.3f}, but its interval reaches {ci[0]:.3f}")
    return Verdict(False, True, f"ROC AUC {auc:.3f} vs {promotion_auc:.3f} at promotion: "
                   f"{why}", drop, ci)
