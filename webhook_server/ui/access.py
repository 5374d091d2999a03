"""Who may do what on the page. Everyone who is logged in reads. Deciding a request and
rolling back a model are for the people the policy allows for that model (the workflow's
own ``may_decide``: the page shows or hides buttons, the workflow still decides). Replaying
a dead job or resending a notification is for the people who approve some model."""

from __future__ import annotations

from webhook_server.identity import person
from webhook_server.services import Services


def policy(svc: Services):
    """The policy, or None when it cannot be read (``podium serve`` checked it at start)."""
    try:
        return svc.policy
    except Exception:
        return None


def why_not_here(svc: Services) -> str | None:
    """Why nobody can decide from this process, or None."""
    if svc.registry is None:
        return "MLFLOW_TRACKING_URI is not set: Podium cannot decide or roll back"
    if policy(svc) is None:
        return f"the policy file {svc.settings.policy_path!r} cannot be read"
    return None


def may_decide(svc: Services, model: str, actor: str | None) -> bool:
    if not actor or why_not_here(svc):
        return False
    return svc.workflow.may_decide(model, actor)


def who_may(svc: Services, model: str) -> list[str]:
    """The people (and Slack group) who may decide ``model``'s requests."""
    p = policy(svc)
    if p is None:
        return []
    approval = p.for_model(model).approval
    names = list(approval.approvers)
    if approval.slack_usergroup:
        names.append(f"members of Slack group {approval.slack_usergroup}")
    return names


def quorum(svc: Services, model: str) -> int:
    p = policy(svc)
    return p.for_model(model).approval.quorum if p is not None else 1


def may_operate(svc: Services, actor: str | None) -> bool:
    p = policy(svc)
    if not actor or p is None:
        return False
    approvers = set(p.default.approval.approvers)
    for cfg in p.models.values():
        approvers.update(cfg.approval.approvers)
    return person(p, actor) in approvers
