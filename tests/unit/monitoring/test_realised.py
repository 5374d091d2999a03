"""Realised metrics against a direct computation: scikit-learn for the figures, the pairwise
definition of DeLong's variance for the AUC interval."""

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from webhook_server.monitoring.realised import auc_interval, rate, realised


def data(n=600, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = np.clip(0.3 + 0.25 * y + rng.normal(0, 0.2, n), 0, 1)
    return y.astype(int), (np.round(s, 1) if ties else s)


@pytest.mark.parametrize("ties", [False, True])
def test_the_figures_equal_scikit_learns(ties):
    y, s = data(ties=ties)
    out = realised(y, s, threshold=0.5)
    flagged = (s >= 0.5).astype(int)
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["precision"] == pytest.approx(precision_score(y, flagged))
    assert out["recall"] == pytest.approx(recall_score(y, flagged))
    assert out["observed_rate"] == pytest.approx(y.mean())
    assert out["predicted_rate"] == pytest.approx(s.mean())
    assert (out["labelled"], out["churned"]) == (600, int(y.sum()))


@pytest.mark.parametrize("ties", [False, True])
def test_the_auc_interval_is_delongs_computed_pair_by_pair(ties):
    y, s = data(200, seed=3, ties=ties)
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)  # per positive, per negative
    se = math.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    auc, (lo, hi) = auc_interval(y, s, 0.9)
    assert auc == pytest.approx(psi.mean())
    assert (lo, hi) == pytest.approx((auc - norm.ppf(0.95) * se, auc + norm.ppf(0.95) * se))


def test_what_cannot_be_computed_is_none_never_nan():
    one_class = realised(np.zeros(50), np.linspace(0, 1, 50), 0.5)
    assert one_class["auc"] is None and one_class["auc_ci"] is None
    assert one_class["recall"] is None and one_class["precision"] == 0.0
    nothing_flagged = realised(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]), 0.5)
    assert nothing_flagged["precision"] is None and nothing_flagged["recall"] == 0.0
    empty = realised(np.array([]), np.array([]), 0.5)
    assert empty["labelled"] == 0 and empty["predicted_rate"] is None
    assert auc_interval(np.array([1, 0, 0]), np.array([0.9, 0.1, 0.2]))[1] is None
    assert rate(0, 0) == (None, None)
    k, (lo, hi) = rate(30, 100)
    assert k == 0.3 and lo < 0.3 < hi
