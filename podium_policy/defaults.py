"""Default check thresholds, comparison settings, business values and monitoring rule.

The one place they are written: the policy file's defaults are these (podium_policy.policy),
and the checks and the comparison fall back to them when called without a policy.
``podium.example.yaml`` documents the same values.
"""

from __future__ import annotations

from typing import Any

THRESHOLDS: dict[str, Any] = {
    "description_min_length": 20,
    "load_seconds": 60.0,
    "roc_auc": 0.75, "f1": 0.5, "precision": 0.5, "recall": 0.4,
    "decision_threshold": 0.5,
    "slice_columns": ["gender", "SeniorCitizen", "Contract"],
    "slice_min_rows": 50, "slice_roc_auc": 0.6, "slice_gap": 0.25,
    "directional_share": 0.9, "churner_score": 0.5,
    "latency_p95_ms": 100.0, "batch_1000_ms": 2000.0, "artifact_mb": 50.0,
}

COMPARISON: dict[str, Any] = {
    "metric": "roc_auc", "rule": "superiority", "alpha": 0.05, "min_improvement": 0.0,
    "margin": 0.005, "bootstrap": 2000, "max_detectable_improvement": None,
    "inconclusive": "reject", "min_rows": 200, "value_rule": "noninferiority",
    "value_margin": 1.0,
}
BUSINESS: dict[str, Any] = {"value_saved_churner": 500.0, "contact_cost": 20.0,
                    "contact_success_rate": 0.3, "currency": "EUR"}
# Realised quality after promotion (podium monitor, the monitoring job): decay is realised ROC
# AUC more than max_auc_drop below the promotion's, on at least min_labels outcomes.
MONITORING: dict[str, Any] = {"period": "week", "max_auc_drop": 0.05, "min_labels": 200,
                              "confidence": 0.95, "retrain_on_decay": False,
                              "shadow_former": False, "on_decay": "alert"}
