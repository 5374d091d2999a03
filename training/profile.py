"""Reference profile of the training data (per-feature distributions) and the population
stability index (PSI) against it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.data import CATEGORIES, NUMERIC

BINS = 10
EPS = 1e-4


def _numeric_edges(values: np.ndarray) -> list[float]:
    finite = values[np.isfinite(values)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1))) if finite.size else []
    return [float(e) for e in edges[1:-1]]  # inner edges; outer bins are open


def _numeric_share(values: np.ndarray, edges: list[float]) -> list[float]:
    missing = ~np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"),
                         minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())  # last bucket: missing
    return list(counts / max(len(values), 1))


def _categorical_share(values: pd.Series, categories) -> list[float]:
    counts = [float((values == c).sum()) for c in categories]
    counts.append(float((~values.isin(categories)).sum()))  # last bucket: other
    return list(np.asarray(counts) / max(len(values), 1))


def build(X: pd.DataFrame, predictions: np.ndarray) -> dict:
    features: dict[str, dict] = {}
    for col in NUMERIC:
        values = X[col].to_numpy(dtype=float)
        edges = _numeric_edges(values)
        features[col] = {"kind": "numeric", "edges": edges,
                         "share": _numeric_share(values, edges)}
    for col, cats in CATEGORIES.items():
        features[col] = {"kind": "categorical", "categories": list(cats),
                         "share": _categorical_share(X[col], cats)}
    edges = [i / BINS for i in range(1, BINS)]
    return {"rows": len(X), "features": features,
            "prediction": {"kind": "numeric", "edges": edges,
                           "share": _numeric_share(np.asarray(predictions, float), edges)}}


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.clip(np.asarray(expected), EPS, None)
    a = np.clip(np.asarray(actual), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(profile: dict, X: pd.DataFrame, predictions: np.ndarray) -> dict[str, float]:
    """PSI per feature and of the predictions, against ``profile``."""
    out: dict[str, float] = {}
    for col, ref in profile["features"].items():
        if ref["kind"] == "numeric":
            share = _numeric_share(X[col].to_numpy(dtype=float), ref["edges"])
        else:
            share = _categorical_share(X[col], ref["categories"])
        out[col] = psi(ref["share"], share)
    pred = profile["prediction"]
    out["prediction"] = psi(pred["share"], _numeric_share(np.asarray(predictions, float),
                                                          pred["edges"]))
    return out
