"""The figures of a model's holdout scores that the checks judge: the ROC AUC, F1,
precision and recall floors and the slices. Pure numbers in, ``(passed, value, threshold,
reason)`` out: the live checks (``checks.py``), ``podium verify`` and ``podium policy diff``
(``evidence.py``) call these same functions, so a recomputed figure cannot drift from the
one the decision was made on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from podium_policy.policy import Checks

FLOORS = ("roc_auc", "f1", "precision", "recall")
FROM_SCORES = (*FLOORS, "slices")  # the checks whose inputs are the holdout scores

Figure = tuple[bool, Any, Any, str]  # passed, value, threshold, reason


def floor(name: str, y: np.ndarray, proba: np.ndarray, t: Checks) -> Figure:
    """One of the four holdout floors (ROC AUC on the scores; the others at the policy's
    ``decision_threshold``)."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba, dtype=float)
    pred = (proba >= t.decision_threshold).astype(int)
    if name == "roc_auc":
        value = float(roc_auc_score(y, proba))
    elif name == "f1":
        value = float(f1_score(y, pred, zero_division=0))
    elif name == "precision":
        value = float(precision_score(y, pred, zero_division=0))
    elif name == "recall":
        value = float(recall_score(y, pred, zero_division=0))
    else:
        raise ValueError(f"no floor named {name!r}")
    need = float(getattr(t, name))
    return value >= need, round(value, 4), need, f"holdout {name} {value:.4f} vs floor {need}"


def slices(y: np.ndarray, proba: np.ndarray, columns: Mapping[str, Any], t: Checks) -> Figure:
    """ROC AUC of every slice of ``t.slice_columns`` with at least ``slice_min_rows`` rows
    and both classes: each above ``slice_roc_auc``, the gap between them at most
    ``slice_gap``. ``columns``: the holdout's values of each slice column, by name."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba, dtype=float)
    per: dict[str, float] = {}
    for column in t.slice_columns:
        values = np.asarray(columns[column], dtype=object)
        present = [v for v in set(values.tolist()) if v is not None and v == v]
        for value in sorted(present, key=str):
            mask = values == value
            ys = y[mask]
            if mask.sum() < t.slice_min_rows or ys.min() == ys.max():
                continue
            per[f"{column}={value:g}" if isinstance(value, float) else f"{column}={value}"] = \
                round(float(roc_auc_score(ys, proba[mask])), 4)
    threshold = {"floor": t.slice_roc_auc, "gap": t.slice_gap}
    if not per:
        return False, {}, t.slice_roc_auc, "no slice large enough to score"
    low = {k: v for k, v in per.items() if v < t.slice_roc_auc}
    gap = max(per.values()) - min(per.values())
    ok = not low and gap <= t.slice_gap
    reason = (f"worst slice {min(per, key=per.get)} {min(per.values()):.3f}, gap {gap:.3f}"
              + (f"; below {t.slice_roc_auc}: {', '.join(low)}" if low else "")
              + (f"; gap over {t.slice_gap}" if gap > t.slice_gap else ""))
    return ok, per, threshold, reason
