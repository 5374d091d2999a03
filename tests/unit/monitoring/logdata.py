"""Inference logs and outcome files for the monitoring tests, written as `podium score`
would write them (``training.inference_log``), without a model."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from training.data import ID
from training.inference_log import InferenceLog


def log_batch(root, when: datetime, scores: dict[str, float], *, model: str = "churn",
              version: str = "3", batch_id: str | None = None) -> str:
    """One logged batch of ``scores`` (customer id -> score) at ``when``; its batch id."""
    with InferenceLog(str(root), model=model, version=version, run_id=f"run-{version}",
                      batch_id=batch_id, now=when) as log:
        if scores:
            log.write(log.entries(pd.DataFrame({ID: list(scores)}),
                                  np.array(list(scores.values()))))
    return log.batch_id


def outcomes(path, rows: list[tuple]) -> str:
    """An outcomes CSV: (customerID, Churn[, observed_at]) tuples."""
    width = max(len(r) for r in rows)
    columns = [ID, "Churn", "observed_at"][:width]
    pd.DataFrame([list(r) + [""] * (width - len(r)) for r in rows],
                 columns=columns).to_csv(path, index=False)
    return str(path)


def labelled_batch(store, when: datetime, n: int, *, separation: float, seed: int,
                   model: str = "churn", version: str = "3", batch_id: str | None = None):
    """A batch summary and ``n`` labels in the store (no Parquet): scores that separate
    churners by ``separation`` (1.4: ROC AUC about 0.87; 0.5: about 0.75). The (y, scores)."""
    from webhook_server.store import monitoring as rows

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    scores = 1 / (1 + np.exp(-(separation * (y - 0.5) * 2 + rng.normal(0, 1, n) - 0.8)))
    batch_id = batch_id or f"{model}-{version}-{when:%Y%m%d}"
    with store.tx() as conn:
        rows.record_batch(conn, {"batch_id": batch_id, "model": model, "version": version,
                                 "scored_at": when, "rows": n, "mean_score": scores.mean(),
                                 "flagged": int((scores >= 0.5).sum()), "threshold": 0.5,
                                 "deciles": None, "histogram": [0] * 10, "path": "x"})
        rows.add_labels(conn, [{"model": model, "version": version, "batch_id": batch_id,
                                "customer_id": f"c{i}", "churn": int(y[i]),
                                "score": float(scores[i]), "scored_at": when,
                                "observed_at": when,
                                "outcome": f"v{version}@{when:%Y%m%dT%H%M%S}"}
                               for i in range(n)])
    return y, scores


def promoted(store, version: str, auc: float, *, model: str = "churn",
             precision: float = 0.6, recall: float = 0.5) -> None:
    """A promoted request of ``version`` whose checks recorded these figures, and the
    champion alias moved to it in the ledger."""
    from webhook_server.store import ledger
    from webhook_server.store import transition_requests as reqs

    with store.tx() as conn:
        rid = reqs.create(conn, model=model, version=version, target="Production",
                          raw_target="Production", origin="tag", state="promoted")
        reqs.save_evidence(conn, rid, {"checks": [
            {"name": "roc_auc", "value": auc}, {"name": "precision", "value": precision},
            {"name": "recall", "value": recall}, {"name": "signature", "value": None}]})
        ledger.record(conn, model=model, alias="champion",
                      from_version=ledger.current(conn, model, "champion"),
                      to_version=version, kind="promote", actor="policy", request_id=rid)


def decayed_beside_former(store, when: datetime, n: int = 1000, *, former_separation=1.4,
                          seed: int = 5, model: str = "churn") -> None:
    """The decay a rollback answers: v2 promoted, then replaced by v3 (ledger: -> 2, 2 -> 3,
    both promoted with ROC AUC 0.84); on the same ``n`` customers and outcomes, v3 scored
    as the champion with a separation of 0.5 (realised ROC AUC about 0.75: decayed) and v2
    in shadow with ``former_separation`` (1.4: about 0.87; 0.5: as good as v3)."""
    from webhook_server.store import monitoring as rows

    promoted(store, "2", auc=0.84, model=model)
    promoted(store, "3", auc=0.84, model=model)
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    with store.tx() as conn:
        for version, role, separation in (("3", "champion", 0.5),
                                          ("2", "shadow", former_separation)):
            scores = 1 / (1 + np.exp(-(separation * (y - 0.5) * 2 + rng.normal(0, 1, n)
                                       - 0.8)))
            batch_id = f"{model}-3-{when:%Y%m%d}" + ("" if role == "champion"
                                                     else f"-v{version}")  # beside v3's
            rows.record_batch(conn, {
                "batch_id": batch_id, "model": model, "version": version, "scored_at": when,
                "rows": n, "mean_score": scores.mean(), "flagged": int((scores >= 0.5).sum()),
                "threshold": 0.5, "deciles": None, "histogram": [0] * 10, "path": "x",
                "role": role})
            rows.add_labels(conn, [{"model": model, "version": version, "batch_id": batch_id,
                                    "customer_id": f"c{i}", "churn": int(y[i]),
                                    "score": float(scores[i]), "scored_at": when,
                                    "observed_at": when, "outcome": ""} for i in range(n)])
