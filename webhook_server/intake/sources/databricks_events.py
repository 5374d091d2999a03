"""What a Databricks model-registry webhook means: its ``event`` and body -> a domain
event. Only version creation and transition requests are used."""

from __future__ import annotations

from typing import Any

from webhook_server.intake.events import Event, Ignored, TransitionRequested, VersionCreated
from webhook_server.intake.sources._common import raw_target, require_str, require_version
from webhook_server.intake.validate import MAX_NAME, field

_TRANSITION_EVENTS = {
    "TRANSITION_REQUEST_CREATED": None,  # target in "to_stage"
    "TRANSITION_REQUEST_TO_STAGING_CREATED": "Staging",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": "Production",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": "Archived",
}

# A transition request as Databricks sends it (the documented example payload).
EXAMPLE = {
    "event": "TRANSITION_REQUEST_CREATED",
    "webhook_id": "c5596721253c4b429368cf6f4341b88a",
    "event_timestamp": 1589859029343,
    "model_name": "churn",
    "version": "8",
    "to_stage": "Production",
    "from_stage": "Staging",
    "text": "Looks good on the holdout.",
}


def databricks_event(name: str, doc: dict[str, Any]) -> Event:
    """The event ``name`` (the body's ``event``) with the rest of the body."""
    if name == "MODEL_VERSION_CREATED":
        return VersionCreated(require_str(doc, "model_name", max_len=MAX_NAME),
                              require_version(doc))
    if name not in _TRANSITION_EVENTS:
        return Ignored(f"event {name} is not used by Podium")
    target = _TRANSITION_EVENTS[name] or field(doc, "to_stage", str, required=True)
    return TransitionRequested(require_str(doc, "model_name", max_len=MAX_NAME),
                               require_version(doc), raw_target(target),
                               origin="databricks", comment=field(doc, "text"))
