"""``podium approve``, ``reject``, ``rollback``: a person decides, through the same workflow
calls as Slack (same rules, same audit, same compare-and-set)."""

from __future__ import annotations

import json

import click

from webhook_server.cli.context import current
from webhook_server.identity import cli_actor


def _decide(request_id: int, approve: bool, note: str | None) -> None:
    from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed

    svc = current().services(mlflow=True)
    try:
        out = svc.workflow.decide(request_id, cli_actor(), approve, note)
    except (DecisionConflict, DecisionRefused, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(out))


@click.command()
@click.argument("request_id", type=int)
@click.option("--note", help="Why (kept in the audit log).")
def approve(request_id, note):
    """Approve a request waiting for approval (as cli:<your OS account>)."""
    _decide(request_id, True, note)


@click.command()
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why not (on the version, in the audit log "
                                               "and in the Slack thread).")
def reject(request_id, reason):
    """Reject a request waiting for approval (as cli:<your OS account>)."""
    _decide(request_id, False, reason)


@click.command()
@click.argument("model")
@click.option("--to", "to_version", help="Former champion to go back to [the previous one].")
@click.option("--timeout", default=120.0, show_default=True,
              help="Seconds to wait for the rollback to finish.")
def rollback(model, to_version, timeout):
    """Move the champion back to a former champion (the ledger), as a job under the model
    lock: run here unless a worker takes it first."""
    from webhook_server.workflow import RollbackRefused

    svc = current().services(mlflow=True)
    try:
        out = svc.workflow.rollback(model, cli_actor(), to_version,
                                      timeout_s=timeout)
    except RollbackRefused as exc:
        raise click.ClickException(str(exc)) from None
    if out["state"] != "promoted":
        raise click.ClickException(f"rollback request {out['request']} is still "
                                   f"{out['state']} after {timeout:g} s")
    click.echo(f"{model}: champion v{out['from']} -> v{out['to']} (request {out['request']})")



COMMANDS = (approve, reject, rollback)
