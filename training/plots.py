"""Evaluation figures logged with the model (matplotlib ``Figure`` objects: no pyplot, no
global backend state)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve


def roc(y, proba) -> Figure:
    fpr, tpr, _ = roc_curve(y, proba)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax.legend(loc="lower right")
    return fig


def precision_recall(y, proba) -> Figure:
    precision, recall, _ = precision_recall_curve(y, proba)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(recall, precision)
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax.legend()
    return fig


def confusion(y, proba, threshold: float = 0.5) -> Figure:
    cm = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, str(n), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["stays", "churns"],
           yticklabels=["stays", "churns"], xlabel="predicted", ylabel="actual",
           title=f"Confusion at {threshold:.2f} (holdout)")
    return fig


def importance(model, top: int = 20) -> Figure:
    names = model.named_steps["prep"].named_steps["columns"].get_feature_names_out()
    values = model.named_steps["model"].feature_importances_
    order = np.argsort(values)[-top:]
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.barh([names[i] for i in order], values[order])
    ax.set(title="Feature importance (splits)")
    fig.tight_layout()
    return fig


def all_figures(model, y, proba) -> dict[str, Figure]:
    return {"roc": roc(y, proba), "precision_recall": precision_recall(y, proba),
            "confusion_matrix": confusion(y, proba), "feature_importance": importance(model)}


def close(fig: Figure) -> None:
    fig.clear()
