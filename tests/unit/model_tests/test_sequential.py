"""The live comparison's confidence sequence: an equal challenger looked at after each of ten
batches of labels is promoted at most alpha of the time (the naive repeated test: far more),
a better one is found; the power and the pairs needed agree with each other."""

import math

import numpy as np

from model_tests import sequential, stats
from model_tests.simulation import live_promotion_rate, se_per_pair
from model_tests.stats import wilson


def test_an_equal_challenger_looked_at_ten_times_is_promoted_at_most_alpha_of_the_time():
    seq, naive, trials = live_promotion_rate(200, 1000, 0.0, 0.8, seed=30)
    assert wilson(seq, trials)[0] <= 0.05  # within alpha (in fact far under)
    assert wilson(naive, trials)[0] > 0.05  # the naive repeated test is not
    assert seq < naive


def test_a_clearly_better_challenger_is_found():
    seq, _, trials = live_promotion_rate(40, 3000, 0.05, 0.8, seed=31)
    assert seq >= 30


def test_the_se_per_pair_predicts_the_se_at_a_smaller_sample():
    from model_tests.simulation import pair

    one = se_per_pair(0.8, n=100_000)
    y, c, k = pair(2000, 0.84, 0.0, 0.8, np.random.default_rng(5))
    assert abs(math.sqrt(stats.delong(y, c, k)[2]) * math.sqrt(2000) / one - 1) < 0.15


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
