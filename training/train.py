"""Train the churn model, log it to MLflow with lineage, register a version.

Split (stratified, seeded) 60/20/20 into train, validation and holdout; a small seeded random
search over LightGBM settings, each trial a nested MLflow run scored on validation; the best
settings refit on train + validation and scored once on the holdout. The holdout is logged
as an artifact (``holdout/holdout.csv``, in the raw layout) for the checks to read back.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import ParameterSampler, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from training import data as churn_data
from training import plots, profile
from training.features import SKOPS_TRUSTED_TYPES, model_pipeline
from training.lineage import TRAIN_IDS, git_lineage, id_hashes

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

SEARCH_SPACE = {
    "num_leaves": [7, 15, 31],
    "learning_rate": [0.02, 0.04, 0.08],
    "n_estimators": [150, 300, 500],
    "min_child_samples": [20, 50, 100],
    "reg_lambda": [0.0, 1.0, 5.0],
    "colsample_bytree": [0.7, 0.9, 1.0],
}


@dataclass
class Dataset:
    """Rows in the raw layout plus where they came from."""

    raw: pd.DataFrame
    description: str
    source: dict
    true_probability: np.ndarray | None = None

    @classmethod
    def synthetic(cls, n: int, seed: int, drift: float = 0.0) -> Dataset:
        raw, prob = churn_data.generate(n, seed=seed, drift=drift)
        return cls(raw, f"synthetic churn data (n={n}, seed={seed}, drift={drift})",
                   {"generator": "training.data.generate", "n": n, "seed": seed,
                    "drift": drift}, prob)

    @classmethod
    def from_csv(cls, path: str | Path) -> Dataset:
        raw = churn_data.read_raw(path)
        problems = churn_data.validate(raw)
        if problems:
            raise churn_data.DataError(problems, str(path))
        return cls(raw, f"{Path(path).name} ({len(raw)} rows)",
                   {"path": str(Path(path).resolve())})


@dataclass
class TrainConfig:
    model_name: str = "churn"
    seed: int = 7
    trials: int = 6
    experiment: str = "podium-churn"
    params: dict | None = None  # fixed LightGBM settings: no search
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # LightGBM's threads. One by default: the churn data is small (thousands of rows), and
    # on a machine doing other work (the worker's other jobs, a test suite) two OpenMP
    # threads spent 14x the CPU of one waiting at barriers, for the same trees.
    threads: int = 1


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    version: str | None
    params: dict
    metrics: dict[str, float]
    run_url: str | None = None


def scores(y: np.ndarray, proba: np.ndarray, prefix: str) -> dict[str, float]:
    pred = (proba >= 0.5).astype(int)
    return {f"{prefix}_roc_auc": roc_auc_score(y, proba),
            f"{prefix}_f1": f1_score(y, pred, zero_division=0),
            f"{prefix}_precision": precision_score(y, pred, zero_division=0),
            f"{prefix}_recall": recall_score(y, pred, zero_division=0),
            f"{prefix}_log_loss": log_loss(y, proba, labels=[0, 1]),
            f"{prefix}_accuracy": accuracy_score(y, pred)}


def split(n: int, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx = np.arange(n)
    rest, holdout = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=0.25, stratify=y[rest], random_state=seed)
    return train, val, holdout


def lgbm(params: dict, seed: int, threads: int = 1):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**params, random_state=seed, n_jobs=threads, verbose=-1,
                          subsample=0.9, subsample_freq=1)


def train(dataset: Dataset, cfg: TrainConfig, *, tracking_uri: str | None = None,
          progress: Progress = log.info, register: bool = True) -> TrainResult:
    import mlflow

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment(cfg.experiment)
    typed = churn_data.to_typed(dataset.raw)
    y = churn_data.labels(typed)
    X = typed[list(churn_data.FEATURES)]  # the model's input: raw rows without the label
    i_train, i_val, i_hold = split(len(X), y, cfg.seed)
    progress(f"data: {dataset.description}; train {len(i_train)}, validation {len(i_val)}, "
             f"holdout {len(i_hold)} rows; churn rate {y.mean():.1%}")
    lineage = git_lineage(Path(__file__).parent)
    with mlflow.start_run(run_name=f"train-{cfg.model_name}") as run:
        mlflow.set_tags({**lineage, **cfg.tags, "podium.model": cfg.model_name})
        _log_datasets(mlflow, dataset, typed, {"training": i_train, "validation": i_val,
                                           "holdout": i_hold})
        params = cfg.params or _search(mlflow, X, y, i_train, i_val, cfg, progress)
        progress(f"fitting the final model on train + validation: {params}")
        fit_idx = np.concatenate([i_train, i_val])
        model = model_pipeline(lgbm(params, cfg.seed)).fit(X.iloc[fit_idx], y[fit_idx])
        metrics = _evaluate(model, X, y, i_train, i_val, i_hold, dataset, cfg)
        mlflow.log_params({f"lgbm.{k}": v for k, v in params.items()}
                          | {"seed": cfg.seed, "trials": cfg.trials, "rows": len(X)})
        mlflow.log_metrics(metrics)
        hold_proba = model.predict_proba(X.iloc[i_hold])[:, 1]
        with tempfile.TemporaryDirectory() as tmp:
            _log_artifacts(mlflow, Path(tmp), model, dataset.raw.iloc[i_hold], y[i_hold],
                           hold_proba, X.iloc[fit_idx], model.predict_proba(X.iloc[fit_idx])[:, 1])
            # every row that trained the model (search and final fit): a comparison refuses a
            # holdout that shares rows with it
            (Path(tmp) / "lineage").mkdir()
            np.save(Path(tmp) / TRAIN_IDS, id_hashes(X.iloc[fit_idx][churn_data.ID]))
            mlflow.log_artifacts(str(Path(tmp) / "lineage"), "lineage")
        progress("logging the model (signature, input example, pinned requirements)")
        info = _log_model(mlflow, model, X.iloc[i_train[:200]], cfg, register)
        version = str(info.registered_model_version) if register else None
        if version is not None:
            _describe_version(mlflow, cfg, version, dataset, metrics, lineage, run.info.run_id)
    run_url = (f"{tracking_uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/"
               f"{run.info.run_id}" if tracking_uri and tracking_uri.startswith("http")
               else None)
    return TrainResult(run.info.run_id, info.model_uri, version, params, metrics, run_url)


def _search(mlflow, X, y, i_train, i_val, cfg: TrainConfig, progress: Progress) -> dict:
    sampler = ParameterSampler(SEARCH_SPACE, n_iter=cfg.trials, random_state=cfg.seed)
    best, best_auc = None, -1.0
    for n, params in enumerate(sampler, start=1):
        with mlflow.start_run(run_name=f"trial-{n}", nested=True):
            model = model_pipeline(lgbm(params, cfg.seed)).fit(X.iloc[i_train], y[i_train])
            auc = roc_auc_score(y[i_val], model.predict_proba(X.iloc[i_val])[:, 1])
            mlflow.log_params(params)
            mlflow.log_metric("validation_roc_auc", auc)
        progress(f"trial {n}/{cfg.trials}: validation ROC AUC {auc:.4f} {params}")
        if auc > best_auc:
            best, best_auc = params, auc
    return best


def _evaluate(model, X, y, i_train, i_val, i_hold, dataset: Dataset,
              cfg: TrainConfig) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, idx in (("train", i_train), ("validation", i_val), ("holdout", i_hold)):
        metrics |= scores(y[idx], model.predict_proba(X.iloc[idx])[:, 1], name)
    baseline = model_pipeline(Pipeline([("scale", StandardScaler()),
                                        ("logreg", LogisticRegression(max_iter=2000))]))
    fit_idx = np.concatenate([i_train, i_val])
    baseline.fit(X.iloc[fit_idx], y[fit_idx])
    metrics["holdout_logreg_roc_auc"] = roc_auc_score(
        y[i_hold], baseline.predict_proba(X.iloc[i_hold])[:, 1])
    if dataset.true_probability is not None:
        oracle = roc_auc_score(y[i_hold], dataset.true_probability[i_hold])
        metrics["holdout_oracle_roc_auc"] = oracle
        metrics["holdout_roc_auc_vs_oracle"] = metrics["holdout_roc_auc"] / oracle
    return metrics


def _log_datasets(mlflow, dataset: Dataset, X: pd.DataFrame, parts: dict) -> None:
    from mlflow.data.code_dataset_source import CodeDatasetSource

    for context, idx in parts.items():
        frame = X.iloc[idx]
        if "path" in dataset.source:
            with warnings.catch_warnings():
                # MLflow registers its local-file source twice and warns that it is ambiguous
                warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
                ds = mlflow.data.from_pandas(frame, source=dataset.source["path"],
                                             name=f"churn-{context}", targets=churn_data.TARGET)
        else:
            ds = mlflow.data.from_pandas(
                frame, source=CodeDatasetSource({**dataset.source, "split": context}),
                name=f"churn-{context}", targets=churn_data.TARGET)
        mlflow.log_input(ds, context=context)


def _log_artifacts(mlflow, tmp: Path, model, holdout_raw: pd.DataFrame, y_hold, hold_proba,
                   X_fit: pd.DataFrame, fit_proba) -> None:
    (tmp / "holdout").mkdir()
    holdout_raw.to_csv(tmp / "holdout" / "holdout.csv", index=False)
    mlflow.log_artifacts(str(tmp / "holdout"), "holdout")
    (tmp / "reference").mkdir()
    (tmp / "reference" / "profile.json").write_text(json.dumps(profile.build(X_fit, fit_proba)))
    mlflow.log_artifacts(str(tmp / "reference"), "reference")
    for name, fig in plots.all_figures(model, y_hold, hold_proba).items():
        mlflow.log_figure(fig, f"plots/{name}.png")
        plots.close(fig)


def _log_model(mlflow, model, example: pd.DataFrame, cfg: TrainConfig, register: bool):
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inferred = infer_signature(example, model.predict_proba(example))
    # TotalCharges is blank for new customers: optional whether or not this sample had one.
    signature = ModelSignature(
        inputs=Schema([ColSpec(c.type, c.name,
                               required=c.name not in churn_data.OPTIONAL_COLUMNS)
                       for c in inferred.inputs.inputs]),
        outputs=inferred.outputs)
    return mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=example.head(5),
        registered_model_name=cfg.model_name if register else None,
        pyfunc_predict_fn="predict_proba", skops_trusted_types=SKOPS_TRUSTED_TYPES,
        code_paths=[str(Path(__file__).parent)], pip_requirements=pinned_requirements())


def pinned_requirements() -> list[str]:
    """Exact versions of what loading and scoring the model imports."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in
            ("mlflow", "lightgbm", "scikit-learn", "numpy", "pandas", "scipy", "skops")]


def _describe_version(mlflow, cfg: TrainConfig, version: str, dataset: Dataset,
                      metrics: dict, lineage: dict, run_id: str) -> None:
    client = mlflow.MlflowClient()
    text = cfg.description or (
        f"LightGBM churn model trained on {dataset.description}. Holdout ROC AUC "
        f"{metrics['holdout_roc_auc']:.4f}, F1 {metrics['holdout_f1']:.3f} "
        f"(logistic regression {metrics['holdout_logreg_roc_auc']:.4f}).")
    client.update_model_version(cfg.model_name, version, description=text)
    tags = {**{k: v for k, v in lineage.items() if not k.startswith("mlflow.")}, **cfg.tags,
            "podium.training_run": run_id,
            "podium.holdout_roc_auc": f"{metrics['holdout_roc_auc']:.4f}"}
    for key, value in tags.items():
        client.set_model_version_tag(cfg.model_name, version, key, value)
