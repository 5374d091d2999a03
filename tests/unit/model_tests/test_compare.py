"""The comparison's statistics and decision rule (no models needed: scores are given)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from model_tests import stats
from model_tests.compare import compare
from model_tests.simulation import pair, promotion_rate
from podium_policy.policy import Business
from podium_policy.policy import Comparison as Rule


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random(1400) < 0.27).astype(int)
    strong = np.round(rng.random(1400) * 0.5 + y * 0.35, 2)  # rounded: ties on purpose
    weak = rng.random(1400) * 0.5 + y * 0.2
    return y, strong, weak


def _delong_by_definition(y, a, b):
    """DeLong's variance from the placement values computed pair by pair (O(m n)): an
    independent implementation of the same published formula."""
    pos = y == 1

    def components(s):
        psi = (s[pos][:, None] > s[~pos][None, :]) + 0.5 * (s[pos][:, None] == s[~pos][None, :])
        return psi.mean(axis=1), psi.mean(axis=0)

    a10, a01 = components(a)
    b10, b01 = components(b)
    s = np.cov(np.vstack([a10, b10])) / pos.sum() + np.cov(np.vstack([a01, b01])) / (~pos).sum()
    return s[0, 0] + s[1, 1] - 2 * s[0, 1]


def test_delong_matches_the_definition_and_sklearn_with_ties(data):
    y, strong, weak = data
    auc_a, auc_b, var = stats.delong(y, strong, weak)
    assert auc_a == pytest.approx(roc_auc_score(y, strong), abs=1e-12)
    assert auc_b == pytest.approx(roc_auc_score(y, weak), abs=1e-12)
    assert var == pytest.approx(_delong_by_definition(y, strong, weak), rel=1e-10)


def test_delong_reproduces_a_worked_example():
    """Hand-checkable: 3 churners, 3 others. A ranks 8 of 9 pairs right (AUC 8/9), B 6 of 9
    (AUC 2/3); the variance follows from the placement values by hand."""
    y = np.array([1, 1, 1, 0, 0, 0])
    a = np.array([0.9, 0.8, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.9, 0.3, 0.6, 0.7, 0.5, 0.1])
    auc_a, auc_b, var = stats.delong(y, a, b)
    assert (auc_a, auc_b) == (pytest.approx(8 / 9), pytest.approx(2 / 3))
    # by hand: A's placements (1, 1, 2/3) and (2/3, 1, 1), B's (1, 1/3, 2/3) and
    # (1/3, 2/3, 1); var A 2/81, var B 2/27, cov 1/54: var(A - B) = 2/81 + 6/81 - 3/81
    assert var == pytest.approx(5 / 81, rel=1e-12)
    assert var == pytest.approx(_delong_by_definition(y, a, b), rel=1e-12)


def test_weighted_average_precision_equals_sklearn_on_resamples_including_ties(data):
    y, strong, _ = data
    w = stats.bootstrap_counts(len(y), 5, seed=1)
    got = stats.weighted_average_precision(strong, y, w)
    for row in range(5):
        idx = np.repeat(np.arange(len(y)), w[row])
        assert got[row] == pytest.approx(average_precision_score(y[idx], strong[idx]),
                                         abs=1e-12)


def test_a_clearly_better_challenger_wins_with_a_p_value_and_its_power(data):
    y, strong, weak = data
    r = compare(y, strong, weak, challenger_version="2", champion_version="1")
    assert r.wins and r.outcome == "wins" and r.reasons == []
    assert r.method == "delong" and r.resamples == 0 and r.p_value < 0.05
    assert r.ci_low > 0 == r.bound and 0 < r.detectable < 0.1
    assert "wins" in r.line() and "v1" in r.line() and "detects +" in r.line()


def test_a_worse_challenger_loses_with_the_reasons(data):
    y, strong, weak = data
    r = compare(y, weak, strong, challenger_version="2", champion_version="1")
    assert not r.wins and r.outcome == "loses"
    assert r.reasons[0].startswith("not shown better by more than 0: roc_auc improvement -")


def test_an_equal_challenger_is_not_promoted_under_superiority_but_is_under_noninferiority(
        data):
    y, strong, _ = data
    same = compare(y, strong, strong, challenger_version="2", champion_version="1")
    assert not same.wins and same.delta == 0
    fresh = compare(y, strong, strong, challenger_version="2", champion_version="1",
                    comparison=Rule(rule="noninferiority", margin=0.005))
    assert fresh.wins and fresh.bound == -0.005


def test_min_improvement_raises_the_bar(data):
    y, strong, weak = data
    assert not compare(y, strong, weak, challenger_version="2", champion_version="1",
                       comparison=Rule(min_improvement=0.5)).wins


def test_a_drop_in_business_value_blocks_the_win(data):
    y, strong, weak = data
    # a better ranking, but nobody crosses the decision threshold: no one is contacted
    r = compare(y, strong * 0.1, weak, challenger_version="2", champion_version="1")
    assert r.delta > 0 and r.challenger.value == 0 and r.champion.value != 0
    assert not r.wins and any(x.startswith("business value not shown not worse by 1 EUR")
                              for x in r.reasons)
    ignored = compare(y, strong * 0.1, weak, challenger_version="2", champion_version="1",
                      comparison=Rule(value_rule="ignore"))
    assert ignored.wins


def test_business_value_is_saved_churners_minus_contact_cost():
    y = np.array([1, 1, 0, 0])
    proba = np.array([0.9, 0.2, 0.8, 0.1])  # contacts rows 0 and 2: one true churner
    r = compare(y, proba, proba, challenger_version="2", champion_version="1",
                comparison=Rule(min_rows=1),
                business=Business(value_saved_churner=1000, contact_cost=50,
                                  contact_success_rate=0.5))
    assert r.challenger.value == 1 * 0.5 * 1000 - 2 * 50


@pytest.mark.parametrize("metric", ["pr_auc", "log_loss", "brier"])
def test_other_metrics_are_improvements_with_an_interval(data, metric):
    y, strong, weak = data
    better = compare(y, strong, weak, challenger_version="2", champion_version="1",
                     comparison=Rule(metric=metric, value_rule="ignore"))
    worse = compare(y, weak, strong, challenger_version="2", champion_version="1",
                    comparison=Rule(metric=metric, value_rule="ignore"))
    assert better.delta > 0 > worse.delta and better.ci_low <= better.delta <= better.ci_high
    assert better.wins and not worse.wins


def test_the_bootstrap_seed_comes_from_the_inputs_and_row_order_does_not_matter(data):
    y, strong, weak = data
    cfg = Rule(metric="pr_auc", value_rule="ignore")
    a = compare(y, strong, weak, challenger_version="2", champion_version="1", comparison=cfg,
                seed_from=("churn", "ab" * 32))
    again = compare(y, strong, weak, challenger_version="2", champion_version="1",
                    comparison=cfg, seed_from=("churn", "ab" * 32))
    perm = np.random.default_rng(7).permutation(len(y))
    shuffled = compare(y[perm], strong[perm], weak[perm], challenger_version="2",
                       champion_version="1", comparison=cfg, seed_from=("churn", "ab" * 32))
    assert a.seed == again.seed == shuffled.seed == stats.derive_seed("churn", "ab" * 32,
                                                                      "2", "1")
    assert (a.ci_low, a.ci_high, a.wins) == (again.ci_low, again.ci_high, again.wins)
    assert (shuffled.ci_low, shuffled.ci_high) == pytest.approx((a.ci_low, a.ci_high),
                                                                abs=1e-12)
    other = compare(y, strong, weak, challenger_version="3", champion_version="1",
                    comparison=cfg, seed_from=("churn", "ab" * 32))
    assert other.seed != a.seed


def test_holdout_rows_that_trained_a_model_make_it_inconclusive(data):
    y, strong, weak = data
    r = compare(y, strong, weak, challenger_version="2", champion_version="1",
                overlap={"challenger v2": 0, "champion v1": 12})
    assert not r.wins and r.outcome == "inconclusive"
    assert r.reasons[0] == ("12 holdout rows were used to train the champion v1 (the holdout "
                            "must be unseen by both models)")


def test_a_holdout_too_small_to_detect_the_wanted_improvement_is_inconclusive():
    rng = np.random.default_rng(3)
    y, c, k = pair(300, 0.84, 0.0, 0.8, rng)
    r = compare(y, c, k, challenger_version="2", champion_version="1",
                comparison=Rule(max_detectable_improvement=0.02))
    assert r.outcome == "inconclusive" and not r.wins
    assert r.reasons[0].startswith("holdout too small: can detect only +0.0")
    assert r.reasons[0].endswith("at 80% power (max_detectable_improvement 0.02)")


def test_a_single_class_holdout_cannot_be_compared_and_the_challenger_loses(data):
    y, challenger, champion = data
    r = compare(np.zeros_like(y), challenger, champion, challenger_version="2",
                champion_version="1")
    assert r.wins is False and r.outcome == "loses"
    assert r.reasons == ["cannot compare: the holdout has only one class (0 churners in 1400 "
                         "rows)"]
    assert r.as_json()["delta"] is None  # null, never NaN, in the evidence and the API
    assert "not computed" in r.line() and "loses" in r.line()


def test_nan_scores_lose_instead_of_winning(data):
    y, challenger, champion = data
    challenger = challenger.copy()
    challenger[::7] = np.nan
    r = compare(y, challenger, champion, challenger_version="2", champion_version="1")
    assert r.wins is False
    assert r.reasons == ["cannot compare: the challenger's scores contain NaN or infinite "
                         "values"]


def test_fewer_rows_than_min_rows_lose_with_the_count(data):
    y, challenger, champion = data
    r = compare(y[:150], challenger[:150], champion[:150], challenger_version="2",
                champion_version="1", comparison=Rule(min_rows=200))
    assert r.wins is False
    assert r.reasons == ["cannot compare: the holdout has 150 rows, fewer than min_rows 200"]


def test_the_comparison_line_names_the_holdout_digest(data):
    from dataclasses import replace

    y, strong, weak = data
    r = replace(compare(y, strong, weak, challenger_version="2", champion_version="1"),
                holdout={"sha256": "ab" * 32, "rows": 1400})
    assert " on holdout abababababab;" in r.line()


def test_an_equal_challenger_is_promoted_rarely_in_a_short_simulation():
    """The full figures are in bench/decision_quality.py; here 300 trials at the typical
    setting (1,409 rows, correlation 0.8) must stay under 10 % (the target is 5 %)."""
    promoted, trials = promotion_rate(300, 1409, 0.0, 0.8, None, seed=11)
    assert promoted / trials < 0.10
    better, trials = promotion_rate(100, 1409, 0.03, 0.8, None, seed=12)
    assert better / trials > 0.8


def test_a_clear_loss_on_a_small_holdout_is_a_loss_not_inconclusive():
    rng = np.random.default_rng(4)
    y, c, k = pair(300, 0.84, -0.15, 0.8, rng)
    r = compare(y, c, k, challenger_version="2", champion_version="1",
                comparison=Rule(max_detectable_improvement=0.02))
    assert r.ci_high < 0 and r.outcome == "loses"
