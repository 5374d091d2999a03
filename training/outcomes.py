"""Synthetic outcomes of scored customers, with a concept-drift knob (the demo's decay step,
tests of monitoring).

``data.generate(..., drift=...)`` moves the customers (a price rise): a model trained before
it still ranks them almost as well (ROC AUC about 0.84 -> 0.83 at ``drift=1``), so it cannot
show a model decaying. ``concept`` changes what churn depends on instead: a competitor wins
long-contract, long-tenure customers while month-to-month customers stay, so the old model's
ranking loses its footing (about 0.84 -> 0.69 at ``concept=1``, for the demo's champion).

``change="services"`` is another change: a competitor's bundled fiber offer turns around
what the services, the charges and the payment method said about churn, while contract and
tenure still hold. A model that learned little beyond contract and tenure (the demo's first,
three-leaf champion) then ranks customers better than a finer one that learned the rest (its
second champion): about 0.67 against 0.63, where the finer one was better before.
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


def services_shift(raw: pd.DataFrame) -> np.ndarray:
    """The change of each customer's churn log-odds at ``concept=1`` of
    ``change="services"``: 1.5 times the effects ``generate`` gives the internet service,
    security and support, seniority, paperless billing, electronic checks and the monthly
    charge, reversed."""
    def has(column: str, value: str) -> np.ndarray:
        return (raw[column].to_numpy() == value).astype(float)

    monthly = pd.to_numeric(raw["MonthlyCharges"], errors="coerce").fillna(65).to_numpy()
    senior = (raw["SeniorCitizen"].astype(str).to_numpy() == "1").astype(float)
    effects = (0.75 * has("InternetService", "Fiber optic") - 0.6 * has("InternetService", "No")
               + 0.55 * has("PaymentMethod", "Electronic check") + 0.45 * senior
               - 0.5 * has("OnlineSecurity", "Yes") - 0.45 * has("TechSupport", "Yes")
               + 0.3 * has("PaperlessBilling", "Yes") + 0.032 * (monthly - 65))
    return -1.5 * effects


CHANGES = {"contracts": shift, "services": services_shift}


def outcomes(raw: pd.DataFrame, probability: np.ndarray, *, concept: float = 0.0,
             seed: int = 0, observed_at: datetime | None = None,
             change: str = "contracts") -> pd.DataFrame:
    """``customerID``, ``Churn`` (and ``observed_at`` when given) for the customers ``raw``
    whose true churn probabilities are ``probability`` (what ``generate`` returns);
    ``concept`` in [0, 1]: 0 draws from those probabilities, 1 after the ``change``
    (``contracts``: ``shift``; ``services``: ``services_shift``)."""
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r} (expected one of {', '.join(CHANGES)})")
    p = np.clip(np.asarray(probability, dtype=float), 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p)) + concept * CHANGES[change](raw)
    churn = np.random.default_rng(seed).random(len(raw)) < 1 / (1 + np.exp(-logit))
    out = pd.DataFrame({ID: raw[ID].to_numpy(), TARGET: np.where(churn, *YES_NO)})
    if observed_at is not None:
        out["observed_at"] = observed_at.isoformat()
    return out
