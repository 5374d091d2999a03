"""The live comparison's confidence sequence: an equal challenger looked at after each of ten
batches of labels is promoted at most alpha of the time (the naive repeated test: far more),
a better one is found; the power and the pairs needed agree with each other."""

import math

import numpy as np

from model_tests import sequential, stats
from model_tests.simulation import pair
from model_tests.stats import wilson


def looks(rng, delta: float, n: int = 1500, batches: int = 10, rho: float = 0.8):
    """(promoted by the sequence, promoted by the naive repeated test) over ``batches`` looks
    at one stream of ``n`` labelled pairs."""
    y, c, k = pair(n, 0.84, delta, rho, rng)
    order = rng.permutation(n)
    y, c, k = y[order], c[order], k[order]
    seq = naive = False
    for end in np.linspace(n // batches, n, batches).astype(int):
        a, b, var = stats.delong(y[:end], c[:end], k[:end])
        d, se = a - b, math.sqrt(var)
        lower, upper = sequential.interval(d, se, 0.05, 0.02)
        seq |= sequential.verdict(lower, upper, 0.0) == "better"
        naive |= d - stats.z(0.95) * se > 0
    return seq, naive


def test_an_equal_challenger_looked_at_ten_times_is_promoted_at_most_alpha_of_the_time():
    rng = np.random.default_rng(30)
    runs = [looks(rng, 0.0) for _ in range(300)]
    seq = sum(s for s, _ in runs)
    naive = sum(n for _, n in runs)
    assert wilson(seq, len(runs))[0] <= 0.05  # within alpha (in fact far under)
    assert wilson(naive, len(runs))[0] > 0.05  # the naive repeated test is not
    assert seq < naive


def test_a_clearly_better_challenger_is_found():
    rng = np.random.default_rng(31)
    runs = [looks(rng, 0.05, n=3000) for _ in range(40)]
    assert sum(s for s, _ in runs) >= 30


def test_the_pairs_needed_give_the_power_asked_for_and_the_sequence_costs_more():
    se_one = 0.9  # about a churn model's: se 0.0233 at 1,500 pairs
    n = sequential.pairs_needed(0.02, se_one, 0.05, 0.02)
    assert sequential.power(se_one / math.sqrt(n), 0.02, 0.05, 0.02) >= 0.8
    assert sequential.power(se_one / math.sqrt(n - 1), 0.02, 0.05, 0.02) < 0.8
    fixed = sequential.pairs_needed(0.02, se_one, 0.05, 0.02, sequential=False)
    assert fixed < n < 4 * fixed


def test_the_sequence_is_wider_than_the_fixed_interval_and_shrinks_with_more_pairs():
    wide = sequential.halfwidth(0.02, 0.05, 0.02)
    assert wide > stats.z(0.975) * 0.02
    assert sequential.halfwidth(0.01, 0.05, 0.02) < wide
    assert sequential.halfwidth(math.inf, 0.05, 0.02) == math.inf
