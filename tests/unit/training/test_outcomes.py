"""The concept-drift knob of the synthetic outcomes: the same customers, another relationship
(the old ranking, the true probabilities before the change, loses ROC AUC)."""

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.data import ID, generate
from training.outcomes import outcomes


def test_concept_0_draws_from_the_generators_probabilities():
    raw, p = generate(20_000, seed=5)
    out = outcomes(raw, p, seed=1)
    churn = (out["Churn"] == "Yes").to_numpy()
    assert list(out.columns) == [ID, "Churn"] and list(out[ID]) == list(raw[ID])
    assert abs(churn.mean() - p.mean()) < 0.01


def test_concept_1_changes_who_churns_so_the_old_ranking_decays():
    raw, p = generate(20_000, seed=5)
    before = roc_auc_score(outcomes(raw, p, seed=1)["Churn"] == "Yes", p)
    after = roc_auc_score(outcomes(raw, p, concept=1.0, seed=1)["Churn"] == "Yes", p)
    assert before - after > 0.1


def test_observed_at_is_written_when_given():
    raw, p = generate(10, seed=5)
    when = datetime(2026, 6, 3, 9, tzinfo=UTC)
    assert set(outcomes(raw, p, observed_at=when)["observed_at"]) == {when.isoformat()}
    assert np.array_equal(outcomes(raw, p, seed=3)["Churn"], outcomes(raw, p, seed=3)["Churn"])


def test_the_services_change_favours_a_ranking_by_contract_and_tenure_alone():
    """What the demo's decay step stands on: after the services change, a coarse ranking
    (contract and tenure) beats the finer one that was best before it."""
    raw, p = generate(20_000, seed=5)
    tenure = raw["tenure"].astype(float).to_numpy()
    coarse = (1.35 * (raw["Contract"] == "Month-to-month").to_numpy()
              - 1.4 * (raw["Contract"] == "Two year").to_numpy() - 1.8 * np.log1p(tenure))

    def auc(score, **kw):
        return roc_auc_score(outcomes(raw, p, seed=1, **kw)["Churn"] == "Yes", score)

    assert auc(p) > auc(coarse) + 0.02
    assert auc(coarse, concept=1.0, change="services") > auc(p, concept=1.0,
                                                             change="services") + 0.02


def test_an_unknown_change_is_refused():
    raw, p = generate(10, seed=5)
    with pytest.raises(ValueError, match="unknown change 'prices' .expected one of "
                                         "contracts, services"):
        outcomes(raw, p, change="prices")
