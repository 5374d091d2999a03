"""The statistics of a paired comparison, vectorised: DeLong's test for two correlated ROC
AUCs, a paired bootstrap for metrics without a closed form, the normal interval of a mean of
paired per-row differences, power, and Wilson intervals for reported rates.

DeLong, DeLong & Clarke-Pearson (1988), computed as in Sun & Xu (2014): the placement values
come from mid-ranks (``scipy.stats.rankdata``), so two models on ``n`` rows cost a few sorts,
not an ``n_pos x n_neg`` matrix.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from scipy.stats import norm, rankdata


def delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(AUC of ``a``, AUC of ``b``, variance of AUC(a) - AUC(b)) on the same rows."""
    y = np.asarray(y).astype(bool)
    scores = np.vstack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    pos, neg = scores[:, y], scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.hstack([pos, neg]), axis=1)
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1) / (2 * n)
    v01 = (tz[:, :m] - tx) / n  # per positive: share of negatives below it
    v10 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives above it
    s = np.cov(v01) / m + np.cov(v10) / n
    var = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return float(aucs[0]), float(aucs[1]), max(var, 0.0)


def paired_mean(d: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of per-row paired differences: the interval of a mean of
    independent rows (what a bootstrap of a mean converges to, without a seed)."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float(d.mean()) if len(d) else 0.0, math.inf
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def derive_seed(*parts: object) -> int:
    """A bootstrap seed from the inputs (model, versions, holdout digest): the same inputs
    give the same decision, and nobody can re-roll it."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def bootstrap_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) counts of each row in each resample (shared by both models: paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n)


def weighted_average_precision(scores: np.ndarray, y: np.ndarray,
                               weights: np.ndarray) -> np.ndarray:
    """Average precision (PR AUC, step-wise as scikit-learn) per row of ``weights``."""
    order = np.argsort(-scores, kind="mergesort")
    s, yy, w = scores[order], y[order].astype(float), weights[:, order].astype(np.float64)
    # group tied scores: precision and recall move once per distinct score
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(w * yy, axis=1)[:, last]
    fp = np.cumsum(w * (1 - yy), axis=1)[:, last]
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = tp / total
    steps = np.diff(np.hstack([np.zeros((len(w), 1)), recall]), axis=1)
    return (steps * precision).sum(axis=1)


def z(p: float) -> float:
    return float(norm.ppf(p))


def p_value(estimate: float, bound: float, se: float) -> float:
    """One-sided p of H0: effect <= bound."""
    if se <= 0 or not math.isfinite(se):
        return 0.0 if estimate > bound and se == 0 else 1.0
    return float(norm.sf((estimate - bound) / se))


def detectable(se: float, alpha: float, power: float = 0.8) -> float:
    """The smallest true improvement (over the test's bound) found with ``power`` at
    one-sided ``alpha`` when the standard error is ``se``."""
    return (z(1 - alpha) + z(power)) * se


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate k/n."""
    if n == 0:
        return 0.0, 1.0
    q = z(1 - (1 - confidence) / 2)
    p = k / n
    centre = (p + q * q / (2 * n)) / (1 + q * q / n)
    half = q * math.sqrt(p * (1 - p) / n + q * q / (4 * n * n)) / (1 + q * q / n)
    return max(0.0, centre - half), min(1.0, centre + half)
