"""What an MLflow registry webhook means: ``entity.action`` and its ``data`` -> a domain
event. MLflow's ``test_webhook`` example payloads are recognised as test deliveries."""

from __future__ import annotations

from typing import Any

from webhook_server.contract import TRANSITION_REQUEST_TAG
from webhook_server.intake.events import (
    AliasChanged,
    Event,
    Ignored,
    ModelCreated,
    RequestCancelled,
    TestDelivery,
    TransitionRequested,
    VersionCreated,
)
from webhook_server.intake.sources._common import raw_target, require_str, require_version
from webhook_server.intake.validate import MAX_NAME, field

# What MLflow's `test_webhook` sends (mlflow/webhooks/types.py `example()` payloads).
EXAMPLES: dict[str, dict[str, Any]] = {
    "registered_model.created": {"name": "example_model", "tags": {"example_key": "example_value"},
                                 "description": "An example registered model"},
    "model_version.created": {"name": "example_model", "version": "1", "source": "models:/123",
                              "run_id": "abcd1234abcd5678",
                              "tags": {"example_key": "example_value"},
                              "description": "An example model version"},
    "model_version_tag.set": {"name": "example_model", "version": "1", "key": "example_key",
                              "value": "example_value"},
    "model_version_tag.deleted": {"name": "example_model", "version": "1",
                                  "key": "example_key"},
    "model_version_alias.created": {"name": "example_model", "alias": "example_alias",
                                    "version": "1"},
    "model_version_alias.deleted": {"name": "example_model", "alias": "example_alias"},
}


def mlflow_event(name: str, data: dict[str, Any], challenger: str) -> Event:
    """The event ``name`` (``entity.action``) with its ``data``; moving the ``challenger``
    alias asks for (or cancels) promotion to Production, as the transition tag does."""
    if name not in EXAMPLES:
        return Ignored(f"event {name} is not used by Podium")
    if data == EXAMPLES[name]:
        return TestDelivery(name)
    model = require_str(data, "name", "data.", max_len=MAX_NAME)
    if name == "registered_model.created":
        return ModelCreated(model)
    if name == "model_version_alias.deleted":
        alias = require_str(data, "alias", "data.")
        if alias == challenger:
            return RequestCancelled(model, None, origin="alias")
        return AliasChanged(model, alias, None)
    version = require_version(data, where="data.")
    if name == "model_version.created":
        return VersionCreated(model, version,
                              source=field(data, "source", where="data."),
                              run_id=field(data, "run_id", where="data.", max_len=64))
    if name == "model_version_alias.created":
        alias = require_str(data, "alias", "data.")
        if alias == challenger:
            return TransitionRequested(model, version, "Production", origin="alias")
        return AliasChanged(model, alias, version)
    key = require_str(data, "key", "data.", max_len=250)
    if key != TRANSITION_REQUEST_TAG:
        return Ignored(f"tag {key[:100]!r} is not watched")
    if name == "model_version_tag.deleted":
        return RequestCancelled(model, version, origin="tag")
    value = field(data, "value", str, required=True, where="data.", max_len=10_000)
    return TransitionRequested(model, version, raw_target(value), origin="tag")
