"""Ask Podium for a transition the way a person would in the MLflow UI."""

from __future__ import annotations

from webhook_server.contract import TRANSITION_REQUEST_TAG
from webhook_server.intake.events import TARGETS, normalise_target


def request_transition(client, model: str, version: str, *, target: str | None = None,
                       challenger_alias: str | None = None,
                       requested_by: str | None = None) -> str:
    """Set ``transition_request=<target>`` or the challenger alias; returns what was set.
    ``requested_by`` (an identity such as ``cli:alice``) is tagged first: the person who
    asks may not approve."""
    if requested_by:
        client.set_model_version_tag(model, version, "requested_by", requested_by)
    if challenger_alias:
        client.set_registered_model_alias(model, challenger_alias, version)
        return f"alias {challenger_alias} -> v{version}"
    normalised = normalise_target(target)
    if normalised is None:
        raise ValueError(f"invalid target {target!r}: expected one of {', '.join(TARGETS)}")
    client.set_model_version_tag(model, version, TRANSITION_REQUEST_TAG, normalised)
    return f"tag {TRANSITION_REQUEST_TAG}={normalised} on v{version}"
