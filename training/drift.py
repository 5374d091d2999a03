"""Drift report: PSI per feature and of the predictions against the training reference
profile logged with the model version."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training import data as churn_data
from training import profile

DEFAULT_THRESHOLD = 0.2  # the usual "significant shift" level for PSI


@dataclass(frozen=True)
class DriftReport:
    model_version: str
    rows: int
    psi: dict[str, float]
    threshold: float

    @property
    def drifted(self) -> list[str]:
        return [name for name, value in self.psi.items() if value >= self.threshold]

    def as_json(self) -> dict:
        return {"model_version": self.model_version, "rows": self.rows,
                "threshold": self.threshold, "drifted": self.drifted,
                "psi": {k: round(v, 6) for k, v in self.psi.items()}}


def read_reference(run_id: str, tracking_uri: str | None = None) -> dict:
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id,
                                               artifact_path="reference/profile.json",
                                               tracking_uri=tracking_uri)
    return json.loads(Path(path).read_text())


def drift_report(reference: dict, frame: pd.DataFrame, predictions: np.ndarray,
                 model_version: str, threshold: float = DEFAULT_THRESHOLD) -> DriftReport:
    return DriftReport(model_version, len(frame), profile.compare(reference, frame, predictions),
                       threshold)


Score = Callable[[str, pd.DataFrame], np.ndarray]  # (models:/name/version, rows) -> P(churn)


def run_drift(client, model_uri: str, frame: pd.DataFrame, score: Score,
              threshold: float = DEFAULT_THRESHOLD,
              tracking_uri: str | None = None) -> DriftReport:
    """The drift pipeline, the one the scheduled job, ``podium drift`` and the demo run:
    resolve the version ``model_uri`` names, read its training reference, score ``frame``
    with ``score`` (the service: in a sandbox; the CLI: in its own process) and compare.
    ``client`` is an ``MlflowClient`` for the registry: no process-wide MLflow setting is
    read or changed."""
    from training.score import resolve_version

    version = resolve_version(model_uri, client)
    name, number = version.split("/", 1)
    run_id = client.get_model_version(name, number).run_id
    reference = read_reference(run_id, tracking_uri)
    predictions = np.asarray(score(f"models:/{name}/{number}", frame), dtype=float)
    return drift_report(reference, frame, predictions, version, threshold)


def load_frame(path: str | Path, max_rows: int | None = None) -> pd.DataFrame:
    """Typed feature rows of a file in the layout (validated; the label is optional)."""
    from training.score import read_chunks

    chunks, n = [], 0
    for raw in read_chunks(Path(path), 100_000):
        problems, typed = churn_data.check(raw.reset_index(drop=True), require_target=False,
                                           first_line=n + 2)
        if problems:
            raise churn_data.DataError(problems, str(path))
        chunks.append(typed[list(churn_data.FEATURES)])
        n += len(raw)
        if max_rows and n >= max_rows:
            break
    return pd.concat(chunks, ignore_index=True)
