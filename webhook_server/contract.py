"""The contract: every header name, tag key and key format Podium shares between modules and with
the systems it talks to (MLflow, Databricks, Slack, GitLab). Nothing else types these strings by
hand."""

from __future__ import annotations

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
TAG_REASON = "podium.reason"  # why the request ended as it did
TAG_CHECKS = "podium.checks"  # "21/22 passed"
TAG_CHECK_PREFIX = "podium.check."  # + a check's name: pass | fail (``check_tag``)
TAG_COMPARISON = "podium.comparison"  # the comparison with the champion, in one line
TAG_TRIGGER = "podium.trigger"  # on a scheduled retrain's run: what started it

# Events Podium subscribes to on the MLflow side (`podium webhook register`).
MLFLOW_EVENTS = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)


# -------------------- keys built from ids --------------------
# Every key Podium builds from ids, in one place: job keys, lock keys, lease names, audit
# subjects, outbox keys and Slack action ids. Nothing else types these formats by hand.


# Slack Block Kit action ids of the Approve / Reject buttons.
SLACK_APPROVE, SLACK_REJECT = "podium_approve", "podium_reject"


def check_tag(name: str) -> str:
    """The version tag of one check's result (``podium.check.auc_floor``)."""
    return f"{TAG_CHECK_PREFIX}{name}"


def model_lock(model: str) -> str:
    """Lock key of every job that may move a model's aliases: one runs at a time."""
    return f"model:{model}"


def request_job(request_id: int, step: str | None = None) -> str:
    """The request's job (``request:7``) or a follow-up (``request:7:promote-12``)."""
    return f"request:{request_id}" if step is None else f"request:{request_id}:{step}"


def request_job_prefix(request_id: int) -> str:
    """LIKE pattern of a request's follow-up jobs."""
    return f"request:{request_id}:%"


def request_subject(request_id: int) -> str:
    """Audit subject of approvals, rejections and denied clicks on a request."""
    return f"request:{request_id}"


def outbox_lease(channel: str) -> str:
    return f"outbox:{channel}"


WORKER_LEASE_PREFIX = "worker:"


def worker_lease(owner: str) -> str:
    """The heartbeat row of one worker process (``/metrics``: ``podium_workers``)."""
    return f"{WORKER_LEASE_PREFIX}{owner}"


def request_event_note(request_id: int, event_id: int) -> str:
    return f"request:{request_id}:event:{event_id}"


def request_created_note(request_id: int) -> str:
    return f"request:{request_id}:created"


def request_parent_message(request_id: int) -> str:
    return f"request:{request_id}:parent"


def gitlab_decision(request_id: int) -> str:
    return f"gitlab:request:{request_id}:decision"


def gitlab_deploy(request_id: int) -> str:
    return f"gitlab:request:{request_id}:deploy"


def job_dead_note(job_id: int, attempts: int) -> str:
    return f"job:{job_id}:dead:{attempts}"


def decay_rollback(model: str, tenure: int, to: str) -> str:
    """The delivery id of the rollback the monitoring job asks for when the champion whose
    ledger move is ``tenure`` decayed (``monitoring.on_decay``): one per champion's tenure
    and former champion, so it is asked once, and never again once dismissed."""
    return f"decay-rollback:{model}:{tenure}:v{to}"


def version_lock(model: str, version: str) -> str:
    """Intake's transaction lock on one model version (PostgreSQL advisory lock): two
    deliveries reporting the same request see each other instead of both creating it."""
    return f"intake:{model}:{version}"


def alias_requests_lock(model: str) -> str:
    """Intake's transaction lock on a model's alias-made requests: MLflow's alias-deleted
    delivery names no version, so it waits on this for an alias request being stored."""
    return f"intake-alias:{model}"


# the store's migration lock (PostgreSQL advisory lock): the migration Job and every pod
# starting at once upgrade the schema one after another; the later ones find it at head
MIGRATION_LOCK = "store:migrate"

# callback id of the modal that asks why a request is rejected
SLACK_REJECT_VIEW = "podium_reject_reason"

# where a version's run keeps the evidence bundles of its requests (MLflow artifacts)
EVIDENCE_ARTIFACTS = "podium/evidence"


def evidence_artifact_path(request_id: int, digest: str) -> str:
    """One bundle's folder: a request compared again (the champion moved) keeps both."""
    return f"{EVIDENCE_ARTIFACTS}/request-{request_id}/{digest[:16]}"


# the marker that makes the policy-diff note of a merge request one note, edited in place
POLICY_DIFF_MARKER = "<!-- podium:policy-diff -->"
