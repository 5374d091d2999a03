"""``podium approve``, ``reject``, ``rollback``: a person decides, through the same workflow
calls as Slack (same rules, same audit, same compare-and-set)."""

from __future__ import annotations

import json

import click

from webhook_server.cli.context import current
from webhook_server.core.identity import cli_actor


def _decide(request_id: int, approve: bool, note: str | None, evidence: str | None) -> None:
    from webhook_server.intake.validate import SHA256
    from webhook_server.store import transition_requests as reqs
    from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed

    svc = current().services(mlflow=True)
    if evidence is not None and not SHA256.match(evidence):
        raise click.ClickException("--evidence takes the 64-hex-digit evidence digest that "
                                   f"`podium show {request_id}` prints")
    if evidence is None:
        with svc.store.read() as conn:
            req = reqs.get(conn, request_id)
        if req is None:
            raise click.ClickException(f"request {request_id} does not exist")
        evidence = req.evidence_digest()
        click.echo(_evidence_text(req, evidence))
        click.confirm(f"{'Approve' if approve else 'Reject'} request {request_id} on this "
                      "evidence?", abort=True, err=True)
    try:
        out = svc.workflow.decide(request_id, cli_actor(), approve, note, evidence=evidence)
    except (DecisionConflict, DecisionRefused, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(out))


def _evidence_text(req, digest: str) -> str:
    e = req.approval_evidence()
    return "\n".join([
        f"request {req.id}: {req.model} v{req.version} -> {req.target} ({req.state})",
        f"  checks:        {e['checks'] or '-'}",
        f"  compared with: v{e['compared_with'] or '-'}: {e['comparison'] or '-'}",
        f"  holdout:       {e['holdout_sha256'] or '-'}",
        f"  model files:   {e['model_sha256'] or '-'}",
        f"  evidence:      {digest}"])


@click.command()
@click.argument("request_id", type=int)
@click.option("--note", help="Why (kept in the audit log).")
@click.option("--evidence", metavar="DIGEST", help="The evidence digest you looked at "
              "(podium show prints it); a digest no longer current is refused. Without it, "
              "the current evidence is shown and confirmed.")
def approve(request_id, note, evidence):
    """Approve a request waiting for approval (as cli:<your OS account>)."""
    _decide(request_id, True, note, evidence)


@click.command()
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why not (on the version, in the audit log "
                                               "and in the Slack thread).")
@click.option("--evidence", metavar="DIGEST", help="The evidence digest you looked at.")
def reject(request_id, reason, evidence):
    """Reject a request waiting for approval (as cli:<your OS account>)."""
    _decide(request_id, False, reason, evidence)


@click.command()
@click.argument("model")
@click.option("--to", "to_version", help="Former champion to go back to [the previous one].")
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for the rollback to finish.")
def rollback(model, to_version, timeout):
    """Move the champion back to a former champion (the ledger), as a job under the model
    lock: run here unless a worker takes it first."""
    from webhook_server.workflow import NotAllowed, RollbackRefused

    svc = current().services(mlflow=True)
    try:
        out = svc.workflow.rollback(model, cli_actor(), to_version,
                                      timeout_s=timeout)
    except (RollbackRefused, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    if out["state"] == "awaiting_approval":
        click.echo(f"{model}: rollback to v{out['to']} asked (request {out['request']}); "
                   f"{out['reason']}: podium approve {out['request']}")
        return
    if out["state"] != "promoted":
        raise click.ClickException(f"rollback request {out['request']} is still "
                                   f"{out['state']} after {timeout:g} s")
    click.echo(f"{model}: champion v{out['from']} -> v{out['to']} (request {out['request']})")



COMMANDS = (approve, reject, rollback)
