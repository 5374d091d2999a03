"""One model (/ui/models/<name>): the champion, the ledger of its moves with Rollback (for
the people who may decide the model, after a confirmation page), open requests, the last
drift report. A rollback goes through ``Workflow.request_rollback``: only to a former
champion, as a request whose job runs under the model lock."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from webhook_server.intake import validate
from webhook_server.store import audit, ledger, views
from webhook_server.store import transition_requests as reqs
from webhook_server.web.ui import access, links, present
from webhook_server.web.ui.web import bp, error_page, page, services
from webhook_server.workflow import NotAllowed, RollbackRefused, permissions


def _aliases(model: str) -> tuple[str, str]:
    p = access.policy(services())
    if p is None:
        return "champion", "staging"
    aliases = p.for_model(model).aliases
    return aliases.champion, aliases.staging


def _target(model: str, to: str | None):
    """The former champion ``to`` that ``actor`` may roll back to, or an error page."""
    svc = services()
    if not access.may_roll_back(svc, model, g.actor):
        why = access.why_not_here(svc) or permissions.refusal(access.policy(svc), "rollback",
                                                              g.actor, model)
        return None, error_page(403, f"not allowed: {why}. Nothing was changed.")
    if not to or not validate.is_digits(to):
        return None, error_page(400, "to: the version number to roll back to")
    return to, None


def _trends(conn, model: str) -> dict[str, str] | None:
    """Realised AUC, PSI and churn rate over time as inline SVG (escaped inside), or None
    without a policy to read the monitoring period from."""
    from webhook_server.monitoring.trends import model_trends

    p = access.policy(services())
    return model_trends(conn, model, p.for_model(model)) if p is not None else None


@bp.get("/models/<model>")
def model_view(model: str):
    svc = services()
    champion_alias, staging_alias = _aliases(model)
    with svc.store.read() as conn:
        if not views.known_model(conn, model):
            return error_page(404, f"Podium knows no model {model!r}")
        champion = ledger.current(conn, model, champion_alias)
        staging = ledger.current(conn, model, staging_alias)
        moves = list(reversed(ledger.entries(conn, model, include_unapplied=True)))
        former = [v for v in ledger.former_champions(conn, model, champion_alias)
                  if v != champion]
        open_requests = reqs.open_for_model(conn, model)
        recent = reqs.list_(conn, model=model, limit=20)
        drift = audit.entries(conn, subject=model, action="drift", limit=1)
        trends = _trends(conn, model)
    base = links.mlflow_base(svc.settings)
    return page("model.html", model=model, champion=champion, staging=staging,
                champion_alias=champion_alias, staging_alias=staging_alias, moves=moves,
                former=former, open_requests=open_requests, recent=recent,
                drift=present.drift(drift[0] if drift else None),
                may_roll_back=access.may_roll_back(svc, model, g.actor),
                blocked=access.why_not_here(svc),
                who_may=access.who_may_roll_back(svc, model),
                mlflow_url=links.model_url(base, model) if base else None,
                present=present, trends=trends)


@bp.get("/models/<model>/rollback")
def rollback_confirm(model: str):
    to, refused = _target(model, request.args.get("to"))
    if refused:
        return refused
    champion_alias, _ = _aliases(model)
    with services().store.read() as conn:
        champion = ledger.current(conn, model, champion_alias)
    return page("rollback.html", model=model, to=to, champion=champion,
                champion_alias=champion_alias)


@bp.post("/models/<model>/rollback")
def rollback(model: str):
    to, refused = _target(model, request.form.get("to"))
    if refused:
        return refused
    try:
        validate.clean_text(model, "model", max_len=validate.MAX_NAME, status=400)
        out = services().workflow.request_rollback(model, g.actor, to)
    except validate.ValidationError as exc:
        return error_page(exc.status, str(exc))
    except NotAllowed as exc:
        return error_page(403, f"not allowed: {exc}. Nothing was changed.")
    except RollbackRefused as exc:
        return error_page(exc.status, f"refused: {exc}. Nothing was changed.")
    waiting = (f"; waiting for {out['quorum'] - 1} more to agree"
               if out["state"] == "awaiting_approval" else "")
    flash(f"rollback of {model} from v{out['from']} to v{out['to']} asked as {g.actor}: "
          f"request {out['request']}{waiting}")
    return redirect(url_for("ui.request_view", request_id=out["request"]), 303)
