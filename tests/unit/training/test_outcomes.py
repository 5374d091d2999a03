"""The concept-drift knob of the synthetic outcomes: the same customers, another relationship
(the old ranking, the true probabilities before the change, loses ROC AUC)."""

from datetime import UTC, datetime

import numpy as np
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
