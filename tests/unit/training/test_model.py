"""Model tests: the pipeline learns, is invariant to the id, and takes raw rows."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.data import FEATURES, generate, labels, to_typed
from training.features import ChurnFeatures, model_pipeline
from training.train import lgbm, split


@pytest.fixture(scope="module")
def fitted():
    raw, prob = generate(12000, seed=7)
    X = to_typed(raw)
    y = labels(X)
    X = X[list(FEATURES)]
    i_train, i_val, i_hold = split(len(X), y, 7)
    model = model_pipeline(lgbm({"n_estimators": 300, "learning_rate": 0.03,
                                 "num_leaves": 15, "min_child_samples": 50}, 7))
    model.fit(X.iloc[np.concatenate([i_train, i_val])], y[np.concatenate([i_train, i_val])])
    return model, X.iloc[i_hold], y[i_hold], prob[i_hold]


def test_the_model_reaches_95_percent_of_the_oracle_auc(fitted):
    model, X, y, prob = fitted
    auc = roc_auc_score(y, model.predict_proba(X)[:, 1])
    oracle = roc_auc_score(y, prob)
    assert auc > 0.75 and auc >= 0.95 * oracle


def test_changing_the_customer_id_changes_nothing(fitted):
    model, X, _, _ = fitted
    other = X.assign(customerID="9999-ZZZZZ")
    assert np.array_equal(model.predict_proba(X), model.predict_proba(other))


def test_rows_with_missing_numbers_and_unseen_categories_still_score(fitted):
    model, X, _, _ = fitted
    odd = X.head(5).copy()
    odd.loc[odd.index[0], "TotalCharges"] = np.nan
    odd.loc[odd.index[1], "MonthlyCharges"] = np.nan
    odd.loc[odd.index[2], "PaymentMethod"] = "Crypto"
    proba = model.predict_proba(odd)[:, 1]
    assert np.isfinite(proba).all() and ((0 <= proba) & (proba <= 1)).all()


def test_month_to_month_scores_higher_than_two_year_for_most_customers(fitted):
    model, X, _, _ = fitted
    two = X[X["Contract"] == "Two year"].head(300)
    base = model.predict_proba(two)[:, 1]
    switched = model.predict_proba(two.assign(Contract="Month-to-month"))[:, 1]
    assert (switched >= base).mean() > 0.9


def test_derived_features_count_services_and_average_spend():
    raw, _ = generate(50, seed=1)
    X = to_typed(raw)[list(FEATURES)]
    out = ChurnFeatures().fit_transform(X)
    row = X.iloc[0]
    taken = sum(row[c] == "Yes" for c in ("OnlineSecurity", "OnlineBackup", "DeviceProtection",
                                          "TechSupport", "StreamingTV", "StreamingMovies",
                                          "PhoneService", "MultipleLines"))
    assert out["n_services"].iloc[0] == taken
    assert "customerID" not in out.columns
    if row["tenure"] > 0:
        assert out["avg_monthly_spend"].iloc[0] == pytest.approx(row["TotalCharges"] /
                                                                 row["tenure"])
