"""The policy file: per-model settings with a ``default`` section, validated at load.

A bad file fails at start with the key path and the reason, e.g.
``models.churn.schedules.retrain: invalid cron expression '0 3 * *' (...)``.

What is read today: schedules (retrain, drift), the training data and request of scheduled
retraining, the drift input and threshold. Checks, comparison and approval keys join when
the workflow is built.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from model_tests import defaults
from webhook_server.events import TARGETS, normalise_target


class PolicyError(ValueError):
    """``path: reason`` for the first problem found."""


# key -> (type check, description); nested dicts are sections.
SCHEMA: dict[str, Any] = {
    "holdout": ("path", "holdout CSV both models are scored on (else the challenger's)"),
    "checks": {
        "description_min_length": ("int", "shortest acceptable version description"),
        "load_seconds": ("float", "time limit to load the model"),
        "roc_auc": ("float", "holdout ROC AUC floor"),
        "f1": ("float", "holdout F1 floor at decision_threshold"),
        "precision": ("float", "holdout precision floor"),
        "recall": ("float", "holdout recall floor"),
        "decision_threshold": ("float", "probability at which a customer counts as a churner"),
        "slice_columns": ("list", "columns whose values are scored as slices"),
        "slice_min_rows": ("int", "smallest slice that is scored"),
        "slice_roc_auc": ("float", "ROC AUC floor for every slice"),
        "slice_gap": ("float", "largest allowed gap between slices' ROC AUC"),
        "directional_share": ("float", "share that must not score lower on month-to-month"),
        "churner_score": ("float", "mean score textbook churners must reach"),
        "latency_p95_ms": ("float", "single-row p95 latency budget"),
        "batch_1000_ms": ("float", "time budget for 1,000 rows"),
        "artifact_mb": ("float", "model artifact size budget"),
    },
    "comparison": {
        "metric": ("metric", "metric both models are compared on (roc_auc)"),
        "margin": ("float", "non-inferiority margin: interval lower bound must be above -margin"),
        "min_gain": ("float", "smallest delta that counts as better"),
        "bootstrap": ("int", "paired bootstrap resamples (at least 1000)"),
        "confidence": ("float", "interval confidence, e.g. 0.95"),
        "seed": ("int", "bootstrap seed"),
    },
    "business": {
        "value_saved_churner": ("float", "value of keeping a customer who would churn"),
        "contact_cost": ("float", "cost of one retention contact"),
        "contact_success_rate": ("float", "share of contacted churners who stay"),
        "currency": ("str", "currency label for reports"),
    },
    "approval": {
        "targets": ("targets", "targets that need a person to approve, e.g. [Production]"),
        "approvers": ("list", "who may decide: Slack user ids (U...) or cli:<user>"),
        "slack_usergroup": ("str", "Slack user group id (S...) whose members may also decide"),
        "quorum": ("int", "distinct approvals needed"),
        "expiry_hours": ("float", "hours before an undecided approval expires (rejected)"),
    },
    "aliases": {
        "champion": ("str", "alias that marks the production model"),
        "staging": ("str", "alias that marks the staging model"),
    },
    "stages": ("bool", "also transition legacy MLflow stages"),
    "gitlab": {
        "deploy_ref": ("str", "branch to run a deploy pipeline on after a promotion "
                              "(needs GITLAB_TRIGGER_TOKEN); null = no trigger"),
    },
    "schedules": {
        "retrain": ("cron", "when to retrain and request promotion (cron, UTC)"),
        "drift": ("cron", "when to run the drift report (cron, UTC)"),
    },
    "training": {
        "data": ("path", "CSV in the Telco churn layout to train on"),
        "synthetic": ("int", "train on N synthetic rows instead of a file"),
        "seed": ("int", "random seed of the split and the search"),
        "trials": ("int", "hyperparameter trials"),
        "request": ("target", "what a scheduled retrain requests (Staging/Production)"),
    },
    "drift": {
        "input": ("path", "recent data (CSV or Parquet) to compare with the reference"),
        "threshold": ("float", "PSI at or above which a feature has drifted"),
        "retrain_on_drift": ("bool", "queue a retrain when drift is found"),
    },
}

DEFAULTS: dict[str, Any] = {
    "holdout": None,
    "checks": copy.deepcopy(defaults.THRESHOLDS),
    "comparison": dict(defaults.COMPARISON),
    "business": dict(defaults.BUSINESS),
    "approval": {"targets": [], "approvers": [], "slack_usergroup": None, "quorum": 1,
                 "expiry_hours": 72.0},
    "aliases": {"champion": "champion", "staging": "staging"},
    "stages": False,
    "gitlab": {"deploy_ref": None},
    "schedules": {"retrain": None, "drift": None},
    "training": {"data": None, "synthetic": 20000, "seed": 7, "trials": 6,
                 "request": "Production"},
    "drift": {"input": None, "threshold": 0.2, "retrain_on_drift": False},
}


@dataclass(frozen=True)
class Policy:
    default: dict[str, Any]
    models: dict[str, dict[str, Any]]

    def for_model(self, name: str) -> dict[str, Any]:
        return _merge(self.default, self.models.get(name, {}))

    @classmethod
    def empty(cls) -> Policy:
        return cls(copy.deepcopy(DEFAULTS), {})


def load_policy(path: str | Path | None) -> Policy:
    """Read and validate; a missing file means the defaults (and no schedules)."""
    if path is None or not Path(path).exists():
        return Policy.empty()
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(doc, base=Path(path).parent)


def parse_policy(doc: Any, base: Path = Path(".")) -> Policy:
    if not isinstance(doc, dict):
        raise PolicyError("policy: expected a mapping with 'default' and/or 'models'")
    for key in doc:
        if key not in ("default", "models"):
            raise PolicyError(f"{key}: unknown key (expected 'default' or 'models')")
    default = _merge(DEFAULTS, _section(doc.get("default") or {}, SCHEMA, "default", base))
    models_doc = doc.get("models") or {}
    if not isinstance(models_doc, dict):
        raise PolicyError("models: expected a mapping of model name to settings")
    models = {str(name): _section(body or {}, SCHEMA, f"models.{name}", base)
              for name, body in models_doc.items()}
    return Policy(default, models)


def _section(doc: Any, schema: dict, path: str, base: Path) -> dict:
    if not isinstance(doc, dict):
        raise PolicyError(f"{path}: expected a mapping")
    out: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"{path}.{key}"
        if key not in schema:
            raise PolicyError(f"{where}: unknown key (expected one of "
                              f"{', '.join(sorted(schema))})")
        spec = schema[key]
        out[key] = (_section(value or {}, spec, where, base) if isinstance(spec, dict)
                    else _value(value, spec[0], where, base))
    return out


def _value(value: Any, kind: str, where: str, base: Path) -> Any:
    if value is None:
        return None
    if kind == "cron":
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(str(value), timezone="UTC")
        except ValueError as exc:
            raise PolicyError(f"{where}: invalid cron expression {value!r} ({exc})") from None
        return str(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PolicyError(f"{where}: expected a whole number >= 0, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise PolicyError(f"{where}: expected a non-empty string, got {value!r}")
        return value
    if kind == "metric":
        if value != "roc_auc":
            raise PolicyError(f"{where}: expected roc_auc (the supported metric), got {value!r}")
        return value
    if kind == "targets":
        items = value if isinstance(value, list) else [value]
        out = [normalise_target(str(v)) for v in items]
        if None in out:
            raise PolicyError(f"{where}: expected targets among {', '.join(TARGETS)}, "
                              f"got {value!r}")
        return out
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"{where}: expected a list of names, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind == "target":
        target = normalise_target(str(value))
        if target is None:
            raise PolicyError(f"{where}: expected one of {', '.join(TARGETS)}, got {value!r}")
        return target
    if kind == "path":
        p = Path(str(value))
        return str(p if p.is_absolute() else (base / p).resolve())
    raise AssertionError(kind)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
