"""Champion vs challenger on the same holdout: paired bootstrap on the ROC AUC delta,
threshold metrics and business value, and the policy's decision rule."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from model_tests.defaults import BUSINESS as DEFAULT_BUSINESS
from model_tests.defaults import COMPARISON as DEFAULT_COMPARISON


@dataclass(frozen=True)
class Side:
    version: str
    metric: float
    f1: float
    precision: float
    recall: float
    value: float


@dataclass(frozen=True)
class Comparison:
    metric: str
    rows: int
    challenger: Side
    champion: Side
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    wins: bool
    reasons: list[str]
    currency: str
    holdout: dict | None = None  # uri, sha256, source, rows: the data it was judged on

    def line(self) -> str:
        """One line for the ``podium.comparison`` tag."""
        on = (f" on holdout {self.holdout['sha256'][:12]}" if self.holdout
              and self.holdout.get("sha256") else "")
        if not self.computed:
            return (f"{self.metric}: not computed on {self.rows} rows{on}; loses: "
                    + "; ".join(self.reasons))[:500]
        return (f"{self.metric} {self.challenger.metric:.4f} vs {self.champion.metric:.4f} "
                f"(v{self.champion.version}): {self.delta:+.4f} "
                f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}] {self.confidence:.0%} CI; "
                f"value {self.challenger.value:,.0f} vs {self.champion.value:,.0f} "
                f"{self.currency}{on}; {'wins' if self.wins else 'loses'}")

    @property
    def computed(self) -> bool:
        return all(math.isfinite(x) for x in (self.challenger.metric, self.champion.metric,
                                              self.delta, self.ci_low, self.ci_high))

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


def bootstrap_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) counts of each row in each resample (paired: shared by both models)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n)


def weighted_auc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC per row of ``weights`` (ties count one half), all resamples at once."""
    order = np.argsort(scores, kind="mergesort")
    s, yy, w = scores[order], y[order], weights[:, order].astype(np.float64)
    _, starts = np.unique(s, return_index=True)
    neg = np.add.reduceat(w * (yy == 0), starts, axis=1)
    pos = np.add.reduceat(w * (yy == 1), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    return num / np.where(den == 0, np.nan, den)


def _side(version: str, y: np.ndarray, proba: np.ndarray, threshold: float,
          business: dict) -> Side:
    pred = (proba >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    value = (tp * business["contact_success_rate"] * business["value_saved_churner"]
             - int(pred.sum()) * business["contact_cost"])
    return Side(version, float(roc_auc_score(y, proba)),
                float(f1_score(y, pred, zero_division=0)),
                float(precision_score(y, pred, zero_division=0)),
                float(recall_score(y, pred, zero_division=0)), float(value))


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
            comparison: dict | None = None, business: dict | None = None) -> Comparison:
    cfg = {**DEFAULT_COMPARISON, **(comparison or {})}
    biz = {**DEFAULT_BUSINESS, **(business or {})}
    if cfg["metric"] != "roc_auc":
        raise ValueError(f"comparison metric {cfg['metric']!r} is not supported (roc_auc)")
    y = np.asarray(y).astype(int)
    challenger = np.asarray(challenger, dtype=float)
    champion = np.asarray(champion, dtype=float)
    problem = _cannot_compare(y, challenger, champion, int(cfg.get("min_rows", 1)))
    if problem:  # no verdict can be computed: the challenger does not win on it
        nan = float("nan")
        return Comparison(cfg["metric"], len(y), Side(challenger_version, nan, nan, nan, nan,
                                                      nan),
                          Side(champion_version, nan, nan, nan, nan, nan), nan, nan, nan,
                          cfg["confidence"], cfg["bootstrap"], False,
                          [f"cannot compare: {problem}"], biz["currency"])
    c = _side(challenger_version, y, challenger, threshold, biz)
    k = _side(champion_version, y, champion, threshold, biz)
    w = bootstrap_weights(len(y), cfg["bootstrap"], cfg["seed"])
    deltas = weighted_auc(challenger, y, w) - weighted_auc(champion, y, w)
    alpha = (1 - cfg["confidence"]) / 2
    with warnings.catch_warnings():  # every resample one-class: NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(deltas, [alpha, 1 - alpha])
    delta = c.metric - k.metric
    reasons = []
    if not (math.isfinite(low) and math.isfinite(high)):
        reasons.append("cannot compare: the interval could not be computed (too few rows "
                       "of one class in the resamples)")
    if low <= -cfg["margin"]:
        reasons.append(f"interval lower bound {low:+.4f} is not above -{cfg['margin']} "
                       "(non-inferiority margin)")
    if delta < cfg["min_gain"]:
        reasons.append(f"delta {delta:+.4f} is below the minimum gain {cfg['min_gain']}")
    if c.value < k.value:
        reasons.append(f"business value drops ({c.value:,.0f} < {k.value:,.0f} "
                       f"{biz['currency']})")
    return Comparison(cfg["metric"], len(y), c, k, float(delta), float(low), float(high),
                      cfg["confidence"], cfg["bootstrap"], not reasons, reasons,
                      biz["currency"])
