"""The comparison's statistics and decision rule (no models needed: scores are given)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from model_tests.compare import bootstrap_weights, compare, weighted_auc


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = (rng.random(1400) < 0.27).astype(int)
    strong = np.round(rng.random(1400) * 0.5 + y * 0.35, 2)  # rounded: ties on purpose
    weak = rng.random(1400) * 0.5 + y * 0.2
    return y, strong, weak


def test_weighted_auc_equals_sklearn_on_resamples_including_ties(data):
    y, strong, _ = data
    w = bootstrap_weights(len(y), 5, seed=1)
    for row in range(5):
        idx = np.repeat(np.arange(len(y)), w[row])
        assert weighted_auc(strong, y, w[row:row + 1])[0] == pytest.approx(
            roc_auc_score(y[idx], strong[idx]), abs=1e-12)


def test_bootstrap_is_seeded_and_paired(data):
    y, strong, weak = data
    a = compare(y, strong, weak, challenger_version="2", champion_version="1")
    b = compare(y, strong, weak, challenger_version="2", champion_version="1")
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.resamples == 2000 and a.ci_low < a.delta < a.ci_high


def test_a_clearly_better_challenger_wins(data):
    y, strong, weak = data
    r = compare(y, strong, weak, challenger_version="2", champion_version="1")
    assert r.wins and r.reasons == [] and r.ci_low > 0
    assert "wins" in r.line() and "v1" in r.line()


def test_a_worse_challenger_loses_with_the_reasons(data):
    y, strong, weak = data
    r = compare(y, weak, strong, challenger_version="2", champion_version="1")
    assert not r.wins
    assert any("non-inferiority margin" in reason for reason in r.reasons)
    assert any("below the minimum gain" in reason for reason in r.reasons)


def test_an_equal_model_passes_non_inferiority_but_not_a_minimum_gain(data):
    y, strong, _ = data
    same = compare(y, strong, strong, challenger_version="2", champion_version="1")
    assert same.wins and same.delta == 0
    demanding = compare(y, strong, strong, challenger_version="2", champion_version="1",
                        comparison={"min_gain": 0.01})
    assert not demanding.wins


def test_a_drop_in_business_value_blocks_the_win(data):
    y, strong, _ = data
    # same ranking, but nobody crosses the decision threshold: no one is contacted
    r = compare(y, strong * 0.1, strong, challenger_version="2", champion_version="1")
    assert r.delta == pytest.approx(0)
    assert r.challenger.value == 0 and r.champion.value > 0
    assert not r.wins and "business value drops" in r.reasons[0]


def test_business_value_is_saved_churners_minus_contact_cost():
    y = np.array([1, 1, 0, 0])
    proba = np.array([0.9, 0.2, 0.8, 0.1])  # contacts rows 0 and 2: one true churner
    r = compare(y, proba, proba, challenger_version="2", champion_version="1",
                comparison={"min_rows": 1}, business={"value_saved_churner": 1000, "contact_cost": 50,
                          "contact_success_rate": 0.5})
    assert r.challenger.value == 1 * 0.5 * 1000 - 2 * 50


def _scored(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1), np.clip(y * 0.2 + rng.random(n), 0, 1)


def test_a_single_class_holdout_cannot_be_compared_and_the_challenger_loses():
    y, challenger, champion = _scored()
    r = compare(np.zeros_like(y), challenger, champion, challenger_version="2",
                champion_version="1")
    assert r.wins is False
    assert r.reasons == ["cannot compare: the holdout has only one class (0 churners in 400 "
                         "rows)"]
    assert r.as_json()["delta"] is None  # null, never NaN, in the evidence and the API
    assert "not computed" in r.line() and "loses" in r.line()


def test_nan_scores_lose_instead_of_winning():
    y, challenger, champion = _scored()
    challenger[::7] = np.nan
    r = compare(y, challenger, champion, challenger_version="2", champion_version="1")
    assert r.wins is False
    assert r.reasons == ["cannot compare: the challenger's scores contain NaN or infinite "
                         "values"]


def test_fewer_rows_than_min_rows_lose_with_the_count():
    y, challenger, champion = _scored(n=150)
    r = compare(y, challenger, champion, challenger_version="2", champion_version="1",
                comparison={"min_rows": 200})
    assert r.wins is False
    assert r.reasons == ["cannot compare: the holdout has 150 rows, fewer than min_rows 200"]


def test_the_comparison_line_names_the_holdout_digest():
    from dataclasses import replace

    y, challenger, champion = _scored()
    r = replace(compare(y, challenger, champion, challenger_version="2", champion_version="1"),
                holdout={"sha256": "ab" * 32, "rows": 400})
    assert " on holdout abababababab;" in r.line()
