"""Champion vs challenger on the same holdout: a one-sided test of the improvement, business
value with its own interval, power, and the policy's decision rule.

The rule (``rule: superiority``, the default): the challenger wins when the one-sided
lower confidence bound of its improvement, at level ``alpha`` (0.05), is above
``min_improvement`` (0) — an equal challenger is promoted by chance at most ``alpha`` of the
time — and its business value is not worse by more than ``value_margin`` per customer at
the same level. ``rule: noninferiority`` asks only that the improvement's bound be above
``-margin``: an equal challenger then wins most of the time (that is its purpose).

The improvement of ROC AUC is tested with DeLong's test for correlated AUCs (no resampling,
no seed); PR AUC with a paired bootstrap whose seed is derived from the inputs and whose
rows are put in a canonical order first (reordered rows, same decision); log loss, Brier
score and business value are means of per-row paired differences (a normal interval). A
comparison that cannot be computed loses; one that is unfair (holdout rows used to train
either model) or too small to detect ``max_detectable_improvement`` is ``inconclusive``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from model_tests import stats
from podium_policy.policy import Business
from podium_policy.policy import Comparison as ComparisonRule

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
LOSSES = ("log_loss", "brier")  # lower is better: the improvement is champion - challenger
WINS, LOSES, INCONCLUSIVE = "wins", "loses", "inconclusive"
NAN = float("nan")


@dataclass(frozen=True)
class Side:
    version: str
    metric: float
    f1: float
    precision: float
    recall: float
    value: float  # business value on the holdout, in currency


@dataclass(frozen=True)
class Comparison:
    metric: str
    rows: int
    challenger: Side
    champion: Side
    delta: float  # the improvement (positive: the challenger is better)
    ci_low: float  # one-sided lower confidence bound of the improvement, level 1 - alpha
    ci_high: float  # upper bound at the same level: [low, high] is a (1 - 2 alpha) interval
    confidence: float  # 1 - 2 alpha
    resamples: int  # 0 for closed-form tests
    wins: bool
    reasons: list[str]
    currency: str
    holdout: dict | None = None  # uri, sha256, source, rows: the data it was judged on
    rule: str = "superiority"
    alpha: float = 0.05
    bound: float = 0.0  # what ci_low must exceed: min_improvement, or -margin
    se: float = NAN
    p_value: float = NAN  # one-sided, H0: improvement <= bound
    method: str = "delong"
    detectable: float = NAN  # the true improvement found with 80 % power on this holdout
    outcome: str = WINS  # wins | loses | inconclusive
    value_delta: float = NAN  # business value improvement per customer
    value_low: float = NAN  # its one-sided lower bound
    value_rule: str = "noninferiority"
    value_margin: float = 0.0
    seed: int | None = None
    overlap: dict | None = field(default=None)  # rows of the holdout each model trained on

    def line(self) -> str:
        """One line for the ``podium.comparison`` tag, the report and Slack."""
        on = (f" on holdout {self.holdout['sha256'][:12]}" if self.holdout
              and self.holdout.get("sha256") else "")
        if not self.computed:
            return (f"{self.metric}: not computed on {self.rows} rows{on}; {self.outcome}: "
                    + "; ".join(self.reasons))[:500]
        detect = (f"; detects +{self.detectable:.3f} at 80% power"
                  if math.isfinite(self.detectable) else "")
        return (f"{self.metric} {self.challenger.metric:.4f} vs {self.champion.metric:.4f} "
                f"(v{self.champion.version}): {self.delta:+.4f}, lower bound "
                f"{self.ci_low:+.4f} vs {self.bound:+.4f} ({self.rule}, alpha {self.alpha:g}, "
                f"p {self.p_value:.3g}){detect}; value {self.value_delta:+.2f} "
                f"{self.currency}/customer{on}; {self.outcome}")[:500]

    @property
    def computed(self) -> bool:
        return all(math.isfinite(x) for x in (self.challenger.metric, self.champion.metric,
                                              self.delta, self.ci_low))

    def as_json(self) -> dict:
        """Plain JSON: a number that could not be computed is null, never NaN."""
        return _finite(asdict(self))


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# --- per-side figures ----------------------------------------------------------------------

def row_values(y: np.ndarray, proba: np.ndarray, threshold: float, business: Business):
    """Business value of each row: a contacted churner saved with the success rate, minus
    the contact's cost."""
    contacted = proba >= threshold
    return (contacted & (y == 1)) * (business.contact_success_rate
                                     * business.value_saved_churner) \
        - contacted * business.contact_cost


def _metric(name: str, y: np.ndarray, proba: np.ndarray) -> float:
    if name == "roc_auc":
        return stats.delong(y, proba, proba)[0]
    if name == "pr_auc":
        return float(stats.weighted_average_precision(proba, y, np.ones((1, len(y))))[0])
    return float(np.mean(_losses(name, y, proba)))


def _losses(name: str, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    if name == "brier":
        return (proba - y) ** 2
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _side(version: str, metric: str, y: np.ndarray, proba: np.ndarray, threshold: float,
          business: Business) -> Side:
    """The side's figures, from counts (scikit-learn's argument checks cost more than the
    whole comparison)."""
    pred = proba >= threshold
    tp = int((pred & (y == 1)).sum())
    contacted, churners = int(pred.sum()), int(y.sum())
    precision = tp / contacted if contacted else 0.0
    recall = tp / churners if churners else 0.0
    f1 = 2 * tp / (contacted + churners) if contacted + churners else 0.0
    return Side(version, _metric(metric, y, proba), float(f1), float(precision),
                float(recall), float(row_values(y, proba, threshold, business).sum()))


# --- the improvement and its uncertainty -----------------------------------------------------

def improvement(metric: str, y: np.ndarray, c: np.ndarray, k: np.ndarray, *, alpha: float,
                bound: float, resamples: int, seed: int):
    """(delta, se, lower bound, upper bound, p, method, resamples used) of the improvement of
    ``c`` over ``k``."""
    q = stats.z(1 - alpha)
    if metric == "roc_auc":
        auc_c, auc_k, var = stats.delong(y, c, k)
        delta, se = auc_c - auc_k, math.sqrt(var)
        return delta, se, delta - q * se, delta + q * se, stats.p_value(delta, bound, se), \
            "delong", 0
    if metric in LOSSES:
        delta, se = stats.paired_mean(_losses(metric, y, k) - _losses(metric, y, c))
        return delta, se, delta - q * se, delta + q * se, stats.p_value(delta, bound, se), \
            "paired normal", 0
    # pr_auc: a paired bootstrap, rows in a canonical order so their order changes nothing
    order = np.lexsort((k, c, y))
    y, c, k = y[order], c[order], k[order]
    w = stats.bootstrap_counts(len(y), resamples, seed)
    deltas = (stats.weighted_average_precision(c, y, w)
              - stats.weighted_average_precision(k, y, w))
    deltas = deltas[np.isfinite(deltas)]
    delta = _metric(metric, y, c) - _metric(metric, y, k)
    if len(deltas) < resamples // 2:
        return delta, NAN, NAN, NAN, NAN, "paired bootstrap", resamples
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    p = float((np.sum(deltas <= bound) + 1) / (len(deltas) + 1))
    return delta, float(deltas.std(ddof=1)), float(low), float(high), p, "paired bootstrap", \
        resamples


# --- the decision ----------------------------------------------------------------------------

def _cannot_compare(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray,
                    min_rows: int) -> str | None:
    """Why no comparison can be computed on these scores, or None."""
    if len(y) < min_rows:
        return f"the holdout has {len(y)} rows, fewer than min_rows {min_rows}"
    if len(challenger) != len(y) or len(champion) != len(y):
        return "the scores do not have one value per holdout row"
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return f"the holdout has only one class ({positives} churners in {len(y)} rows)"
    for who, scores in (("challenger", challenger), ("champion", champion)):
        if not np.isfinite(scores).all():
            return f"the {who}'s scores contain NaN or infinite values"
    return None


def compare(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, *,
            challenger_version: str, champion_version: str, threshold: float = 0.5,
            comparison: ComparisonRule | None = None, business: Business | None = None,
            seed_from: tuple = (), overlap: dict | None = None) -> Comparison:
    """The policy's decision on two score vectors over the same holdout rows, under its
    ``comparison`` and ``business`` sections (None: the policy's defaults).
    ``seed_from``: what the bootstrap seed is derived from (model, holdout digest); the
    versions are always part of it. ``overlap``: holdout rows each model trained on."""
    cfg = comparison if comparison is not None else ComparisonRule()
    biz = business if business is not None else Business()
    metric, rule, alpha = cfg.metric, cfg.rule, float(cfg.alpha)
    if metric not in METRICS:
        raise ValueError(f"comparison metric {metric!r} is not one of {', '.join(METRICS)}")
    bound = float(cfg.min_improvement) if rule == "superiority" else -float(cfg.margin)
    y = np.asarray(y).astype(int)
    challenger = np.asarray(challenger, dtype=float)
    champion = np.asarray(champion, dtype=float)
    common = {"rule": rule, "alpha": alpha, "bound": bound, "value_rule": cfg.value_rule,
              "value_margin": float(cfg.value_margin), "overlap": overlap}
    problem = _cannot_compare(y, challenger, champion, int(cfg.min_rows))
    if problem:  # no verdict can be computed: the challenger does not win on it
        blank = (NAN,) * 5
        return Comparison(metric, len(y), Side(challenger_version, *blank),
                          Side(champion_version, *blank), NAN, NAN, NAN, 1 - 2 * alpha, 0,
                          False, [f"cannot compare: {problem}"], biz.currency,
                          outcome=LOSES, **common)
    seed = stats.derive_seed(*seed_from, challenger_version, champion_version)
    c = _side(challenger_version, metric, y, challenger, threshold, biz)
    k = _side(champion_version, metric, y, champion, threshold, biz)
    delta, se, low, high, p, method, used = improvement(
        metric, y, challenger, champion, alpha=alpha, bound=bound,
        resamples=int(cfg.bootstrap), seed=seed)
    detectable = bound + stats.detectable(se, alpha) if math.isfinite(se) else NAN
    value_delta, value_se = stats.paired_mean(
        row_values(y, challenger, threshold, biz) - row_values(y, champion, threshold, biz))
    value_low = value_delta - stats.z(1 - alpha) * value_se

    reasons, unsure = [], []
    if not math.isfinite(low):
        reasons.append("cannot compare: the interval could not be computed (too few rows of "
                       "one class in the resamples)")
    elif low <= bound:
        what = (f"better by more than {bound:g}" if rule == "superiority"
                else f"worse by less than {-bound:g} (non-inferiority margin)")
        reasons.append(f"not shown {what}: {metric} improvement {delta:+.4f}, one-sided "
                       f"{1 - alpha:.0%} lower bound {low:+.4f} (p {p:.3g}, alpha {alpha:g})")
    value_rule, margin = cfg.value_rule, float(cfg.value_margin)
    if value_rule != "ignore":
        need = -margin if value_rule == "noninferiority" else margin
        if not value_low > need:
            reasons.append(f"business value not shown {'not worse' if need < 0 else 'better'}"
                           f" by {abs(need):g} {biz.currency}/customer: "
                           f"{value_delta:+.2f}, lower bound {value_low:+.2f}")
    for who, rows in (overlap or {}).items():
        if rows:
            unsure.append(f"{rows} holdout rows were used to train the {who} (the holdout "
                          "must be unseen by both models)")
    limit = cfg.max_detectable_improvement
    if (reasons and limit is not None and math.isfinite(detectable) and detectable > limit
            and high > bound):  # a clear loss is a loss, however small the holdout
        unsure.append(f"holdout too small: can detect only {detectable:+.3f} at 80% power "
                      f"(max_detectable_improvement {limit:g})")
    outcome = INCONCLUSIVE if unsure else (LOSES if reasons else WINS)
    return Comparison(metric, len(y), c, k, float(delta), float(low), float(high),
                      1 - 2 * alpha, used, outcome == WINS, unsure + reasons, biz.currency,
                      se=float(se), p_value=float(p), method=method,
                      detectable=float(detectable), outcome=outcome,
                      value_delta=float(value_delta), value_low=float(value_low), seed=seed,
                      **common)
