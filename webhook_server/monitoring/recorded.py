"""What was recorded before the outcomes arrived: a version's holdout figures at promotion
(the checks of its request in the store, else its training run's holdout metrics in MLflow),
the drift reports in the audit, and the champion's moves in the ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from webhook_server.adapters.registry import mlflow_client
from webhook_server.store import audit, ledger
from webhook_server.store import transition_requests as reqs

_SETTLED = ("promoted", "staged")


def promotion_figures(conn: Connection, model: str, version: str) -> dict[str, Any] | None:
    """ROC AUC, precision and recall of the version's checks on the policy's holdout, from
    its promoted request (else its newest request with checks); None when there is none."""
    best = None
    for req in reqs.list_(conn, model=model, limit=1000):  # newest first
        if req.version != version:
            continue
        checks = {c.get("name"): c.get("value")
                  for c in req.evidence_json().get("checks") or [] if isinstance(c, dict)}
        if not isinstance(checks.get("roc_auc"), int | float):
            continue
        figures = {"auc": float(checks["roc_auc"]), "precision": _num(checks.get("precision")),
                   "recall": _num(checks.get("recall")),
                   "source": f"request {req.id} checks (policy holdout)"}
        if req.state in _SETTLED:
            return figures
        best = best or figures
    return best


def run_figures(client, model: str, version: str) -> dict[str, Any] | None:
    """The holdout metrics training logged on the version's run (``client``: MlflowClient);
    None when the run has none."""
    run_id = client.get_model_version(model, version).run_id
    metrics = client.get_run(run_id).data.metrics
    if "holdout_roc_auc" not in metrics:
        return None
    return {"auc": float(metrics["holdout_roc_auc"]),
            "precision": _num(metrics.get("holdout_precision")),
            "recall": _num(metrics.get("holdout_recall")),
            "source": f"run {run_id[:12]} (training holdout)"}


def run_figures_of(tracking_uri: str | None, model: str):
    """``run_figures`` of ``model`` on the MLflow server at ``tracking_uri`` as a function of
    the version (None for a version MLflow does not know); None without a server."""
    if not tracking_uri:
        return None
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)

    def figures(version: str) -> dict[str, Any] | None:
        try:
            return run_figures(client, model, version)
        except MlflowException:
            return None

    return figures


def drift_reports(conn: Connection, model: str, limit: int = 100) -> list[dict[str, Any]]:
    """The model's drift reports in the audit (the drift job's), newest first: time, version,
    PSI per feature, drifted features and threshold."""
    out = []
    for e in audit.entries(conn, subject=model, action="drift", limit=limit):
        d = e["detail"] or {}
        if isinstance(d.get("psi"), dict):
            out.append({"at": e["at"], "model_version": d.get("model_version"),
                        "psi": d["psi"], "drifted": d.get("drifted") or [],
                        "threshold": d.get("threshold")})
    return out


def champion_moves(conn: Connection, model: str, alias: str) -> list[dict[str, Any]]:
    """Every applied move of the champion alias, oldest first: time, version, kind."""
    return [{"at": e["at"], "version": e["to_version"], "kind": e["kind"]}
            for e in ledger.entries(conn, model, alias=alias)]


def champion(conn: Connection, model: str, alias: str) -> str | None:
    return ledger.current(conn, model, alias)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
