"""Who may do what on the page: everyone who is logged in reads; the buttons are shown to
the people ``workflow.permissions`` allows (deciding, rolling back, replaying, resending),
and the workflow checks again whatever the page showed."""

from __future__ import annotations

from webhook_server.service.services import Services
from webhook_server.workflow import permissions


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


def quorum(svc: Services, model: str, *, rollback: bool = False) -> int:
    """Approvals a request needs (``rollback``: agreements to a rollback)."""
    p = policy(svc)
    if p is None:
        return 1
    cfg = p.for_model(model)
    return (cfg.rollback if rollback else cfg.approval).quorum


def may_operate(svc: Services, actor: str | None) -> bool:
    return permissions.may(policy(svc), "replay", actor) is not None


def may_roll_back(svc: Services, model: str, actor: str | None) -> bool:
    if not actor or why_not_here(svc):
        return False
    return permissions.may(policy(svc), "rollback", actor, model=model) is not None


def who_may_roll_back(svc: Services, model: str) -> list[str]:
    p = policy(svc)
    return list(permissions.people_for(p, "rollback", model)) if p is not None else []
