"""Realised quality of labelled predictions: ROC AUC with its DeLong interval, precision and
recall at the policy's threshold and the observed churn rate with Wilson intervals, and the
predicted churn rate (the mean score). Pure numpy; ``None`` where a figure cannot be computed
(one class only, nothing flagged), never NaN."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata

from model_tests.stats import wilson

Interval = tuple[float, float]


def auc_interval(y: np.ndarray, scores: np.ndarray,
                 confidence: float = 0.95) -> tuple[float | None, Interval | None]:
    """ROC AUC and its normal interval from DeLong's variance (placement values from
    mid-ranks, as ``model_tests.stats.delong``); (None, None) with one class, no interval
    with fewer than two rows of a class."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=float)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if not m or not n:
        return None, None
    tz = rankdata(np.concatenate([pos, neg]))
    auc = float((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
    if m < 2 or n < 2:
        return auc, None
    v01 = (tz[:m] - rankdata(pos)) / n  # per positive: share of negatives below it
    v10 = 1.0 - (tz[m:] - rankdata(neg)) / m  # per negative: share of positives above it
    se = math.sqrt(v01.var(ddof=1) / m + v10.var(ddof=1) / n)
    half = float(norm.ppf(1 - (1 - confidence) / 2)) * se
    return auc, (max(0.0, auc - half), min(1.0, auc + half))


def rate(k: int, n: int, confidence: float = 0.95) -> tuple[float | None, Interval | None]:
    """k / n with its Wilson interval; (None, None) when n is 0."""
    if not n:
        return None, None
    lo, hi = wilson(int(k), int(n), confidence)
    return k / n, (float(lo), float(hi))


def realised(y: np.ndarray, scores: np.ndarray, threshold: float,
             confidence: float = 0.95) -> dict:
    """The figures of one version and period (``y``: 1 churned, 0 stayed)."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=float)
    flagged = s >= threshold
    tp = int((flagged & y).sum())
    auc, auc_ci = auc_interval(y, s, confidence)
    precision, precision_ci = rate(tp, int(flagged.sum()), confidence)
    recall, recall_ci = rate(tp, int(y.sum()), confidence)
    observed, observed_ci = rate(int(y.sum()), len(y), confidence)
    return {"labelled": len(y), "churned": int(y.sum()),
            "predicted_rate": float(s.mean()) if len(s) else None,
            "observed_rate": observed, "observed_rate_ci": observed_ci,
            "auc": auc, "auc_ci": auc_ci, "precision": precision, "precision_ci": precision_ci,
            "recall": recall, "recall_ci": recall_ci}
