"""Cleaning and features, all inside one scikit-learn pipeline so the logged model takes raw
rows (the layout of ``training.data`` with numbers as floats)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder

from training.data import CATEGORIES, ID, OPTIONAL_SERVICES, TARGET, YES_NO

BOOLEAN = tuple(c for c, values in CATEGORIES.items() if values == YES_NO)
CATEGORICAL = tuple(c for c in CATEGORIES if c not in BOOLEAN)
NUMERIC = ("SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges", "n_services",
           "avg_monthly_spend", "charges_gap")
# skops refuses to load types it does not know; these are the ones this pipeline adds.
SKOPS_TRUSTED_TYPES = ["collections.OrderedDict", "lightgbm.basic.Booster",
                       "lightgbm.sklearn.LGBMClassifier", "numpy.dtype",
                       "training.features.ChurnFeatures"]


class ChurnFeatures(TransformerMixin, BaseEstimator):
    """Derived columns a data scientist would add; drops the id and the label.

    - ``n_services``: phone, multiple lines and the six optional services taken;
    - ``avg_monthly_spend``: TotalCharges / tenure (NaN for new customers);
    - ``charges_gap``: MonthlyCharges minus that average (a recent price change).
    """

    def fit(self, X: pd.DataFrame, y=None) -> ChurnFeatures:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.drop(columns=[c for c in (ID, TARGET) if c in X.columns])
        taken = [(X[c] == "Yes") for c in (*OPTIONAL_SERVICES, "PhoneService", "MultipleLines")]
        out["n_services"] = np.sum(taken, axis=0).astype("float64")
        tenure = X["tenure"].astype("float64")
        total = X["TotalCharges"].astype("float64")
        avg = np.where(tenure > 0, total / tenure.where(tenure > 0), np.nan)
        out["avg_monthly_spend"] = avg
        out["charges_gap"] = X["MonthlyCharges"].astype("float64") - avg
        return out

    def get_feature_names_out(self, input_features=None):
        kept = [c for c in (input_features if input_features is not None else [])
                if c not in (ID, TARGET)]
        return np.asarray([*kept, "n_services", "avg_monthly_spend", "charges_gap"],
                          dtype=object)


def preprocessor() -> Pipeline:
    columns = ColumnTransformer([
        ("boolean", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(drop="if_binary", handle_unknown="ignore",
                                     sparse_output=False)),
        ]), list(BOOLEAN)),
        ("numeric", SimpleImputer(strategy="median", add_indicator=True), list(NUMERIC)),
        ("tenure_band", Pipeline([
            ("impute", SimpleImputer(strategy="median")),
            ("band", KBinsDiscretizer(n_bins=6, strategy="uniform", encode="onehot-dense",
                                      quantile_method="averaged_inverted_cdf")),
        ]), ["tenure"]),
        ("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), list(CATEGORICAL)),
    ], verbose_feature_names_out=True)
    return Pipeline([("features", ChurnFeatures()), ("columns", columns)])


def model_pipeline(classifier) -> Pipeline:
    """Raw rows -> features -> ``classifier`` (LightGBM for the model, logistic regression
    for the baseline printed beside it)."""
    return Pipeline([("prep", preprocessor()), ("model", classifier)])
