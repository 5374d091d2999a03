"""Build deliveries exactly as MLflow and Databricks sign them."""

from __future__ import annotations

import json
import time
import uuid

from webhook_server.intake.sources import databricks, mlflow

SECRET = "test-webhook-secret"
DATABRICKS_SECRET = "test-databricks-secret"


def mlflow_body(event: str, data: dict) -> bytes:
    entity, action = event.split(".")
    return json.dumps({"entity": entity, "action": action,
                       "timestamp": "2026-11-26T12:00:00+00:00", "data": data}).encode()


def mlflow_headers(body: bytes, *, secret: str = SECRET, delivery_id: str | None = None,
                   timestamp: int | None = None) -> dict[str, str]:
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": mlflow.sign(secret, delivery_id, ts, body)}


def tag_set(model: str = "churn", version: str = "3", value: str = "Production",
            key: str = "transition_request") -> bytes:
    return mlflow_body("model_version_tag.set",
                       {"name": model, "version": version, "key": key, "value": value})


def databricks_body(**overrides) -> bytes:
    doc = dict(databricks.EXAMPLE, event_timestamp=int(time.time() * 1000))
    doc.update(overrides)
    return json.dumps(doc).encode()


def databricks_headers(body: bytes, secret: str = DATABRICKS_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Databricks-Signature": databricks.sign(secret, body)}
