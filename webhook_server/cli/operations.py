"""``podium requests``, ``show``, ``replay``, ``reconcile``, ``jobs``, ``outbox``: what the
store holds, and putting work back in motion."""

from __future__ import annotations

import click

from webhook_server.cli.context import current, emit
from webhook_server.core.identity import cli_actor
from webhook_server.core.text_table import render


@click.command("requests")
@click.option("--model", help="Only this registered model.")
@click.option("--state", help="Only requests in this state.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_requests(model, state, limit, as_json) -> None:
    """List transition requests, newest first."""
    from webhook_server.store import transition_requests as reqs

    svc = current().services()
    with svc.store.read() as conn:
        rows = [r.as_json() for r in reqs.list_(conn, model=model, state=state, limit=limit)]
    emit(rows, as_json, lambda: render(
        ["id", "model", "version", "target", "origin", "state", "updated", "reason"],
        [[r["id"], r["model"], r["version"], r["target"] or r["raw_target"], r["origin"],
          r["state"], r["updated_at"][:19], r["reason"] or ""] for r in rows]))


@click.command()
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(request_id: int, as_json: bool) -> None:
    """One request with its history."""
    from webhook_server.store import transition_requests as reqs

    svc = current().services()
    with svc.store.read() as conn:
        row = reqs.get(conn, request_id)
        if row is None:
            raise click.ClickException(f"no request {request_id}")
        data = {**row.as_json(reqs.history(conn, request_id)),
                "evidence_sha256": row.evidence_digest()}

    def table() -> str:
        head = (f"request {data['id']}: {data['model']} v{data['version']} -> "
                f"{data['target'] or data['raw_target']} ({data['origin']}), "
                f"state {data['state']}" + (f": {data['reason']}" if data["reason"] else ""))
        lines = render(["at", "from", "to", "actor", "then", "note"],
                       [[h["at"][:19], h["from"] or "", h["to"], h["actor"],
                         "" if h["seconds"] is None else f"{h['seconds']:.2f} s",
                         h["note"] or ""] for h in data["history"]])
        took = ", ".join(f"{state} {s:.2f} s" for state, s in data["stages"].items())
        return (head + "\n" + lines + (f"\nstages: {took}" if took else "")
                + f"\nevidence: {data['evidence_sha256']} (podium approve {data['id']} "
                  f"--evidence {data['evidence_sha256'][:12]}...)")

    emit(data, as_json, table)


@click.command()
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True)
def replay(delivery_id: str, as_json: bool) -> None:
    """Re-run a stored delivery (or give its dead jobs another go)."""
    from webhook_server.service.replay import ReplayError
    from webhook_server.service.replay import replay as do_replay
    from webhook_server.workflow.errors import NotAllowed

    svc = current().services()
    try:
        result = do_replay(svc, delivery_id, actor=cli_actor())
    except (ReplayError, NotAllowed) as exc:
        raise click.ClickException(str(exc)) from None
    emit(result, as_json, lambda: (
        f"delivery {result['delivery']}: requeued {', '.join(result['jobs'])}"
        if result["action"] == "requeued" else
        f"delivery {result['delivery']}: re-run as delivery "
        f"{result['new_delivery']['delivery']} ({result['new_delivery']['status']}"
        + (f", request {result['new_delivery']['request_id']}"
           if "request_id" in result["new_delivery"] else "") + ")"))


@click.command()
@click.option("--json", "as_json", is_flag=True)
def reconcile(as_json: bool) -> None:
    """Scan the registry for requests Podium missed and create them once."""
    from webhook_server.workflow.reconcile import reconcile as do_reconcile

    svc = current().services()
    if svc.registry is None:
        raise click.ClickException("MLFLOW_TRACKING_URI is not set")
    report = do_reconcile(svc.store, svc.intake, svc.registry, svc.settings.challenger_alias)
    data = {"scanned": report.scanned, "created": report.created}
    emit(data, as_json, lambda: (
        f"scanned {report.scanned} requested version(s); created "
        f"{len(report.created)} request(s)"
        + (f": {', '.join(map(str, report.created))}" if report.created else "")))


@click.command()
@click.option("--state", type=click.Choice(["queued", "running", "done", "dead"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs(state, limit, as_json) -> None:
    """List jobs (dead ones can be replayed with `podium replay`)."""
    from webhook_server.jobs.queue import list_jobs

    svc = current().services()
    with svc.store.read() as conn:
        rows = list_jobs(conn, state=state, limit=limit)
    emit(rows, as_json, lambda: render(
        ["id", "key", "kind", "state", "attempts", "run after", "last error"],
        [[r["id"], r["key"], r["kind"], r["state"], f"{r['attempts']}/{r['max_attempts']}",
          str(r["run_after"])[:19], (r["last_error"] or "")[:60]] for r in rows]))


@click.command()
@click.option("--state", type=click.Choice(["pending", "sent", "dead"]))
@click.option("--channel", type=click.Choice(["slack", "gitlab"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--retry", "retry_ids", multiple=True, type=int,
              help="Send this dead or pending notification again (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def outbox(state, channel, limit, retry_ids, as_json) -> None:
    """Notifications (Slack, GitLab): what waits, what went where, what was dropped."""
    from webhook_server.service.replay import _policy
    from webhook_server.store import audit
    from webhook_server.store import outbox as ob
    from webhook_server.workflow import permissions
    from webhook_server.workflow.errors import NotAllowed

    svc = current().services()
    if retry_ids:
        actor = cli_actor()
        try:
            permissions.authorize(svc.store, _policy(svc), "resend", actor,
                                  subject=f"outbox:{','.join(map(str, retry_ids))}"[:255])
        except NotAllowed as exc:
            raise click.ClickException(str(exc)) from None
        with svc.store.tx() as conn:
            for row_id in retry_ids:
                if not ob.retry(conn, row_id):
                    raise click.ClickException(f"notification {row_id} does not exist or "
                                               "was already sent")
                audit.record(conn, actor=actor, action="resend", subject=f"outbox:{row_id}",
                             detail={"via": "cli"})
        click.echo(f"queued again: {', '.join(map(str, retry_ids))}")
        return
    with svc.store.read() as conn:
        rows = ob.list_(conn, state=state, channel=channel, limit=limit)
    emit(rows, as_json, lambda: render(
        ["id", "channel", "kind", "request", "state", "attempts", "result / last error"],
        [[r["id"], r["channel"], r["kind"], r["request_id"] or "-", r["state"],
          r["attempts"], (r["result"] if r["state"] == "sent" else r["last_error"] or "")[:60]]
         for r in rows]))


@click.command()
@click.option("--older-than", "days", type=click.IntRange(min=1), required=True,
              metavar="DAYS", help="Remove rows older than this many days (at least 1).")
@click.option("--include-audit", is_flag=True,
              help="Also audit rows and the alias ledger (never a live request's, nor the "
                   "rows that say where an alias points).")
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@click.option("--json", "as_json", is_flag=True)
def prune(days, include_audit, dry_run, as_json) -> None:
    """Remove old deliveries, sent or dead notifications and finished jobs; nothing a
    request still open needs, and never requests or their history."""
    from webhook_server.store.prune import prune as do_prune

    svc = current().services()
    with svc.store.read() if dry_run else svc.store.tx() as conn:
        removed = do_prune(conn, days, include_audit=include_audit, dry_run=dry_run)
    data = {"older_than_days": days, "dry_run": dry_run, "removed": removed}
    verb = "would remove" if dry_run else "removed"
    emit(data, as_json, lambda: render(["table", verb], [[t, n] for t, n in removed.items()]))


COMMANDS = (list_requests, show, replay, reconcile, jobs, outbox, prune)
