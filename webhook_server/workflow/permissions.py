"""Who may do what: the one permission check every door goes through (Slack, CLI, API,
page). Each decision and operation names an action; ``authorize`` answers with the person
who acts, or refuses with the reason and an audit row (``denied``).

- ``approve``, ``reject``: the model's ``approval.approvers`` (people) or members of its
  Slack user group;
- ``rollback``: the model's ``rollback.approvers``, else its approval approvers;
- ``replay``, ``resend``, ``cancel``: the policy's ``operators`` (people), else anyone who
  approves some model.

An identity that maps to no person (a token ``ci`` that the policy's ``people`` does not
list, an unknown Slack user) may read, never decide or operate: there is no "anyone".
"""

from __future__ import annotations

from webhook_server.core import identity
from webhook_server.store import audit
from webhook_server.workflow.errors import NotAllowed

DECIDE = ("approve", "reject")
OPERATE = ("replay", "resend", "cancel")
ACTIONS = (*DECIDE, "rollback", *OPERATE)


def known_person(policy, actor: str | None) -> str | None:
    """The person the policy maps ``actor`` to, or None: an identity nobody lists is not a
    person here (it may read, never act)."""
    if not actor or policy is None:
        return None
    who = identity.person(policy, actor)
    return who if who in policy.people else None


def people_for(policy, action: str, model: str | None = None) -> tuple[str, ...]:
    """The people who may take ``action`` (on ``model``)."""
    if action in DECIDE:
        return policy.for_model(model).approval.approvers
    if action == "rollback":
        cfg = policy.for_model(model)
        return cfg.rollback.approvers or cfg.approval.approvers
    if action in OPERATE:
        if policy.operators is not None:
            return policy.operators
        names = dict.fromkeys(policy.default.approval.approvers)
        for cfg in policy.models.values():
            names.update(dict.fromkeys(cfg.approval.approvers))
        return tuple(names)
    raise ValueError(f"unknown action {action!r}")


def _group(policy, action: str, model: str | None) -> str | None:
    if action in DECIDE or (action == "rollback"
                            and not policy.for_model(model).rollback.approvers):
        return policy.for_model(model).approval.slack_usergroup
    return None


def may(policy, action: str, actor: str | None, *, model: str | None = None,
        groups: frozenset[str] = frozenset()) -> str | None:
    """The person ``actor`` is when they may take ``action``; None otherwise."""
    if policy is None or not actor:
        return None
    who = known_person(policy, actor)
    if who is not None and who in people_for(policy, action, model):
        return who
    group = _group(policy, action, model)
    if group and actor.startswith("slack:") and actor[6:] in groups:
        return identity.person(policy, actor)
    return None


def refusal(policy, action: str, actor: str | None, model: str | None = None) -> str:
    """Why ``actor`` may not take ``action``, naming who may."""
    if policy is None:
        return f"{action} refused: the policy cannot be read (fail closed)"
    if not actor:
        return f"nobody is signed in, so nobody may {action}"
    if action in DECIDE:
        head = f"{actor} is not an approver of {model}"
    elif action == "rollback":
        head = f"{actor} may not roll back {model}"
    else:
        head = f"{actor} may not {action}: only the policy's operators may"
    if known_person(policy, actor) is None:
        head += (" (it maps to no person in the policy's people:, so it may read but never "
                 "decide or operate)")
    names = list(people_for(policy, action, model))
    if (group := _group(policy, action, model)):
        names.append(f"members of Slack group {group}")
    return f"{head} (who may: {', '.join(names) or 'nobody'})"


def authorize(store, policy, action: str, actor: str | None, *, model: str | None = None,
              subject: str | None = None, groups: frozenset[str] = frozenset(),
              detail: dict | None = None) -> str:
    """The person acting; or raise NotAllowed with the reason after an audit row
    ``denied`` (in its own transaction: the refusal is kept whatever the caller does)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    who = may(policy, action, actor, model=model, groups=groups)
    if who is not None:
        return who
    reason = refusal(policy, action, actor, model)
    with store.tx() as conn:
        audit.record(conn, actor=actor or "anonymous", action="denied",
                     subject=subject or (f"model:{model}" if model else action),
                     detail={"action": action, "why": reason, **(detail or {})})
    raise NotAllowed(reason)
