"""Header names, tag keys and other strings shared by more than one module."""

# MLflow 3.x webhooks (mlflow/webhooks/constants.py)
MLFLOW_DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
MLFLOW_TIMESTAMP_HEADER = "X-MLflow-Timestamp"
MLFLOW_SIGNATURE_HEADER = "X-MLflow-Signature"
MLFLOW_SIGNATURE_VERSION = "v1"

# Databricks workspace model-registry webhooks
DATABRICKS_SIGNATURE_HEADER = "X-Databricks-Signature"

# Registry conventions (what the MLflow UI shows)
TRANSITION_REQUEST_TAG = "transition_request"
TAG_STATUS = "podium.status"
TAG_REQUEST_ID = "podium.request_id"
TAG_DECIDED_BY = "podium.decided_by"
TAG_MODEL_SHA256 = "podium.model_sha256"  # one digest over the files that were judged

# Events Podium subscribes to on the MLflow side (`podium webhook register`).
MLFLOW_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)
