"""Synthetic outcomes of scored customers, with a concept-drift knob (the demo's decay step,
tests of monitoring).

``data.generate(..., drift=...)`` moves the customers (a price rise): a model trained before
it still ranks them almost as well (ROC AUC about 0.84 -> 0.83 at ``drift=1``), so it cannot
show a model decaying. ``concept`` changes what churn depends on instead: a competitor wins
long-contract, long-tenure customers while month-to-month customers stay, so the old model's
ranking loses its footing (about 0.84 -> 0.69 at ``concept=1``, for the demo's champion).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from training.data import ID, TARGET, YES_NO


def shift(raw: pd.DataFrame) -> np.ndarray:
    """The change of each customer's churn log-odds at ``concept=1``."""
    contract = raw["Contract"].to_numpy()
    tenure = pd.to_numeric(raw["tenure"], errors="coerce").fillna(0).to_numpy()
    return (1.6 * (contract == "Two year") + 0.8 * (contract == "One year")
            - 0.9 * (contract == "Month-to-month")
            + 1.2 * np.log1p(tenure) / np.log1p(72) - 0.4)


def outcomes(raw: pd.DataFrame, probability: np.ndarray, *, concept: float = 0.0,
             seed: int = 0, observed_at: datetime | None = None) -> pd.DataFrame:
    """``customerID``, ``Churn`` (and ``observed_at`` when given) for the customers ``raw``
    whose true churn probabilities are ``probability`` (what ``generate`` returns);
    ``concept`` in [0, 1]: 0 draws from those probabilities, 1 after the change."""
    p = np.clip(np.asarray(probability, dtype=float), 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p)) + concept * shift(raw)
    churn = np.random.default_rng(seed).random(len(raw)) < 1 / (1 + np.exp(-logit))
    out = pd.DataFrame({ID: raw[ID].to_numpy(), TARGET: np.where(churn, *YES_NO)})
    if observed_at is not None:
        out["observed_at"] = observed_at.isoformat()
    return out
