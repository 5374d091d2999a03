"""``podium approve``, ``reject``, ``rollback``: a person decides, through the same workflow
calls as Slack (same rules, same audit, same compare-and-set)."""

from __future__ import annotations

import json
import time

import click

from webhook_server import contract
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
              help="Seconds to wait for a worker to see the rollback through.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def rollback(model, to_version, timeout, as_json):
    """Move the champion back to a former champion (the ledger): the request is queued like
    any other and a worker (podium serve / podium worker) runs it under the model lock;
    this waits for the outcome."""
    from webhook_server.store import states
    from webhook_server.workflow import NotAllowed, RollbackRefused

    svc = current().services(mlflow=True)
    try:
        asked = svc.workflow.request_rollback(model, cli_actor(), to_version)
    except (RollbackRefused, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    if asked["state"] == states.AWAITING_APPROVAL:
        out = {**asked, "reason": f"waiting for {asked['quorum'] - 1} more to agree "
                                  "(rollback quorum)"}
        click.echo(json.dumps(out) if as_json else
                   f"{model}: rollback to v{out['to']} asked (request {out['request']}); "
                   f"{out['reason']}: podium approve {out['request']}")
        return
    req = _follow(svc.store, asked["request"], timeout)
    out = {**asked, "state": req.state, "reason": req.reason}
    if as_json:
        click.echo(json.dumps(out))
    if req.state == states.PROMOTED:
        if not as_json:
            click.echo(f"{model}: champion v{out['from']} -> v{out['to']} "
                       f"(request {out['request']})")
        return
    if req.state in states.TERMINAL:
        raise click.ClickException(f"rollback request {out['request']} ended {req.state}: "
                                   f"{req.reason or 'no reason given'}")
    raise click.ClickException(f"rollback request {out['request']} is still {req.state} "
                               f"after {timeout:g} s: is a worker running (podium serve or "
                               "podium worker)? It stays queued for one.")


def _follow(store, request_id: int, timeout: float, poll_s: float = 0.2):
    """Wait until the request ended and its job is done (its tags written) or dead, or
    ``timeout`` passed; each state it passes goes to stderr. The request as it is then."""
    from webhook_server.jobs.queue import job_state
    from webhook_server.store import states
    from webhook_server.store import transition_requests as reqs

    key = contract.request_job(request_id)
    deadline = time.monotonic() + timeout
    shown = None
    while True:
        with store.read() as conn:
            req = reqs.get(conn, request_id)
            job = job_state(conn, key)
        if (req.state, req.reason) != shown:
            shown = (req.state, req.reason)
            click.echo(f"request {request_id}: {req.state}"
                       + (f" ({req.reason})" if req.reason else ""), err=True)
        if (req.state in states.TERMINAL and job in ("done", "dead")
                or time.monotonic() >= deadline):
            return req
        time.sleep(poll_s)


COMMANDS = (approve, reject, rollback)
