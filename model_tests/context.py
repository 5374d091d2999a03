"""Everything the checks look at, loaded once: the model, its registry metadata, the holdout."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training import data as churn_data


@dataclass
class ModelUnderTest:
    uri: str
    name: str | None
    version: str | None
    description: str
    version_tags: dict[str, str]
    run_id: str | None
    run_inputs: list[tuple[str, str]]  # (dataset name, context)
    local_dir: Path
    model: Any | None  # pyfunc model, None when it failed to load
    load_error: str | None
    load_seconds: float
    holdout: pd.DataFrame | None  # typed features; None when there is none to read
    labels: np.ndarray | None
    holdout_error: str | None = None
    extras: dict = field(default_factory=dict)
    signature: Any | None = None  # read from the MLmodel file by Podium, never by the model

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probability per row (class 1 of the pyfunc's predict_proba output)."""
        return self.predict_timed(frame)[0]

    def predict_timed(self, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
        """Scores and the seconds the model took, measured outside the model's code (a
        sandboxed model is timed by Podium around the call)."""
        if hasattr(self.model, "predict_timed"):
            out, took = self.model.predict_timed(frame)
        else:
            started = time.perf_counter()
            out = self.model.predict(frame)
            took = time.perf_counter() - started
        out = np.asarray(out)
        return (out[:, 1] if out.ndim == 2 else out), took


def model_name(model_uri: str) -> str | None:
    """``models:/churn/3`` or ``models:/churn@champion`` -> ``churn``; None for other URIs."""
    if not model_uri.startswith("models:/"):
        return None
    return model_uri[len("models:/"):].split("/")[0].split("@")[0]


@dataclass(frozen=True)
class VersionInfo:
    """What the registry says about a version (read by Podium, with its credentials)."""

    name: str | None
    version: str | None
    description: str
    tags: dict[str, str]
    run_id: str | None
    run_inputs: list[tuple[str, str]]
    source: str  # where its files are (the download URI)


def version_info(model_uri: str, client=None) -> VersionInfo:
    from mlflow import MlflowClient

    client = client or MlflowClient()
    if not model_uri.startswith("models:/"):
        return VersionInfo(None, None, "", {}, None, [], model_uri)
    ref = model_uri[len("models:/"):]
    if "@" in ref:
        name, alias = ref.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, _, version = ref.partition("/")
        mv = client.get_model_version(name, version)
    version = str(mv.version)
    inputs: list[tuple[str, str]] = []
    if mv.run_id:
        run = client.get_run(mv.run_id)
        inputs = [(i.dataset.name, next((t.value for t in i.tags
                                         if t.key == "mlflow.data.context"), ""))
                  for i in run.inputs.dataset_inputs]
    source = client.get_model_version_download_uri(name, version)
    return VersionInfo(name, version, mv.description or "", dict(mv.tags), mv.run_id, inputs,
                       source)


def signature_of(local_dir: Path):
    """The signature in the model's MLmodel file (YAML read by Podium; no model code)."""
    from mlflow.models import Model

    try:
        return Model.load(str(local_dir / "MLmodel")).signature
    except Exception:  # no MLmodel, unreadable: the signature checks fail with "none"
        return None


def load(model_uri: str, holdout_path: str | None = None) -> ModelUnderTest:
    import mlflow
    from mlflow import MlflowClient

    from training.score import resolve_version

    client = MlflowClient()
    name = version = run_id = None
    description, tags, inputs = "", {}, []
    if model_uri.startswith("models:/"):
        name, version = resolve_version(model_uri).split("/", 1)
        mv = client.get_model_version(name, version)
        description, tags, run_id = mv.description or "", dict(mv.tags), mv.run_id
        if run_id:
            run = client.get_run(run_id)
            inputs = [(i.dataset.name, next((t.value for t in i.tags
                                             if t.key == "mlflow.data.context"), ""))
                      for i in run.inputs.dataset_inputs]
    local_dir = Path(mlflow.artifacts.download_artifacts(model_uri))
    started = time.perf_counter()
    try:
        model, error = mlflow.pyfunc.load_model(str(local_dir)), None
    except Exception as exc:  # any failure to load is a check result, not a crash
        model, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    load_s = time.perf_counter() - started
    try:
        holdout, labels, holdout_error = *read_holdout(holdout_path, run_id), None
    except Exception as exc:  # the checks that need it fail with this reason
        holdout, labels = None, None
        holdout_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return ModelUnderTest(model_uri, name, version, description, tags, run_id, inputs,
                          local_dir, model, error, load_s, holdout, labels, holdout_error,
                          signature=model.metadata.signature if model is not None else None)


def read_holdout(path: str | None, run_id: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    if path is None:
        if run_id is None:
            raise ValueError("no holdout: give --holdout or use a version with a logged "
                             "holdout (holdout/holdout.csv on its run)")
        import mlflow

        path = mlflow.artifacts.download_artifacts(run_id=run_id,
                                                   artifact_path="holdout/holdout.csv")
    typed = churn_data.load_csv(path)
    return typed[list(churn_data.FEATURES)], churn_data.labels(typed)
