"""Champion/challenger pairs with known true quality, for measuring the decision rule's error
rates (``bench/decision_quality.py``, and a short run in the tests).

A binormal latent-score model: a customer's score is ``mu * y + e`` with ``e`` standard
normal, so a model's true ROC AUC is ``Phi(mu / sqrt(2))``; the two models' noises are
correlated with ``rho`` (retrains of one pipeline on similar data rank alike). Holdouts are
stratified (a fixed count of churners). Scores become probabilities through a logistic link,
so the threshold metrics and business value behave as with a real model.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from podium_policy.policy import Comparison as ComparisonRule


def mu_for(auc: float) -> float:
    return math.sqrt(2.0) * float(norm.ppf(auc))


def pair(n: int, auc_champion: float, delta: float, rho: float, rng: np.random.Generator,
         prevalence: float = 0.265) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, challenger probabilities, champion probabilities) on one holdout of ``n``
    rows, the challenger's true AUC ``auc_champion + delta``."""
    positives = int(round(prevalence * n))
    y = np.zeros(n, dtype=int)
    y[:positives] = 1
    e = rng.standard_normal((2, n))
    e_champion = e[0]
    e_challenger = rho * e[0] + math.sqrt(max(0.0, 1 - rho * rho)) * e[1]
    s_champion = mu_for(auc_champion) * y + e_champion
    s_challenger = mu_for(auc_champion + delta) * y + e_challenger
    offset = 1.0  # about a quarter of customers above 0.5, as the churn model contacts

    def link(s):
        return 1.0 / (1.0 + np.exp(-(s - offset) * 1.5))

    return y, link(s_challenger), link(s_champion)


def promotion_rate(trials: int, n: int, delta: float, rho: float,
                   comparison: ComparisonRule | None, seed: int = 0,
                   auc_champion: float = 0.84) -> tuple[int, int]:
    """(promoted, trials) of challengers ``delta`` better than the champion under the rule
    ``comparison`` (the policy's section; None: its defaults), through the real
    ``compare()``."""
    from model_tests.compare import compare

    rng = np.random.default_rng(seed)
    promoted = 0
    for t in range(trials):
        y, c, k = pair(n, auc_champion, delta, rho, rng)
        r = compare(y, c, k, challenger_version=str(t + 2), champion_version="1",
                    comparison=comparison, seed_from=("simulation", seed, t))
        promoted += bool(r.wins)
    return promoted, trials


def live_promotion_rate(trials: int, n: int, delta: float, rho: float, *, batches: int = 10,
                        alpha: float = 0.05, tau: float = 0.02, seed: int = 0,
                        auc_champion: float = 0.84) -> tuple[int, int, int]:
    """(promoted by the confidence sequence, promoted by the naive repeated test, trials):
    ``n`` labelled pairs arrive in ``batches`` equal batches and the comparison is looked
    at after each; a trial counts as promoted when any look promotes (the sequence: its
    lower end above 0, ``model_tests.sequential``; the naive test: the fixed-sample
    one-sided DeLong bound at ``alpha`` above 0, as if each look were the only one)."""
    from model_tests import sequential, stats

    rng = np.random.default_rng(seed)
    q = stats.z(1 - alpha)
    ends = np.linspace(n // batches, n, batches).astype(int)
    seq = naive = 0
    for _ in range(trials):
        y, c, k = pair(n, auc_champion, delta, rho, rng)
        order = rng.permutation(n)  # labels arrive in no particular order of class
        y, c, k = y[order], c[order], k[order]
        s_hit = n_hit = False
        for end in ends:
            a, b, var = stats.delong(y[:end], c[:end], k[:end])
            d, se = a - b, math.sqrt(var)
            s_hit = s_hit or sequential.interval(d, se, alpha, tau)[0] > 0
            n_hit = n_hit or d - q * se > 0
        seq += s_hit
        naive += n_hit
    return seq, naive, trials


def se_per_pair(rho: float, *, delta: float = 0.0, n: int = 200_000, seed: int = 0,
                auc_champion: float = 0.84) -> float:
    """DeLong's standard error of the AUC difference times sqrt(pairs): se at n pairs is
    this / sqrt(n) (one large simulated sample)."""
    from model_tests import stats

    y, c, k = pair(n, auc_champion, delta, rho, np.random.default_rng(seed))
    return math.sqrt(stats.delong(y, c, k)[2] * n)
