"""``podium check``, ``compare``, ``approve``, ``reject``, ``rollback``."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from webhook_server.identity import cli_actor
from webhook_server.tables import render


def _setup():
    from webhook_server.cli import _services
    from webhook_server.cli_training import _tracking_uri

    _tracking_uri()
    return _services()


@click.command()
@click.argument("model_uri")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def check(model_uri, holdout, policy_path, as_json):
    """Model-quality checks: a table, exit 1 on any failure."""
    from webhook_server.cli_training import _tracking_uri

    _tracking_uri()
    from model_tests.checks import summary
    from model_tests.runner import check_in_process

    with contextlib.redirect_stdout(sys.stderr):
        results = check_in_process(model_uri, holdout, policy_path)
    if as_json:
        click.echo(json.dumps({"model_uri": model_uri, "summary": summary(results),
                               "checks": [r.as_json() for r in results]}, default=str))
    else:
        click.echo(render(["check", "category", "result", "value", "threshold", "reason"],
                          [[r.name, r.category, "pass" if r.passed else "FAIL",
                            json.dumps(r.value, default=str)[:30],
                            json.dumps(r.threshold, default=str)[:20], r.reason]
                           for r in results], max_width=70))
        click.echo(f"{model_uri}: {summary(results)}")
    if not all(r.passed for r in results):
        sys.exit(1)


@click.command()
@click.argument("model")
@click.option("--challenger", required=True, help="Challenger version.")
@click.option("--champion", help="Champion version [the champion alias].")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def compare(model, challenger, champion, holdout, policy_path, as_json):
    """Champion comparison on one holdout; exit 1 when the challenger does not win."""
    from webhook_server.cli_training import _tracking_uri

    _tracking_uri()
    from model_tests.runner import compare_in_process

    with contextlib.redirect_stdout(sys.stderr):
        r = compare_in_process(model, challenger, champion, holdout, policy_path)
    if as_json:
        click.echo(json.dumps(r.as_json()))
    else:
        click.echo(render(["version", "role", r.metric, "F1", "precision", "recall",
                           f"value ({r.currency})"],
                          [[s.version, role, f"{s.metric:.4f}", f"{s.f1:.3f}",
                            f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.value:,.0f}"]
                           for role, s in (("challenger", r.challenger),
                                           ("champion", r.champion))]))
        click.echo(r.line() + ("" if r.wins else "\n" + "; ".join(r.reasons)))
    if not r.wins:
        sys.exit(1)


def _decide(request_id: int, approve: bool, note: str | None) -> None:
    from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed

    svc = _setup()
    try:
        out = svc.workflow().decide(request_id, cli_actor(), approve, note)
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

    svc = _setup()
    try:
        out = svc.workflow().rollback(model, cli_actor(), to_version,
                                      timeout_s=timeout)
    except RollbackRefused as exc:
        raise click.ClickException(str(exc)) from None
    if out["state"] != "promoted":
        raise click.ClickException(f"rollback request {out['request']} is still "
                                   f"{out['state']} after {timeout:g} s")
    click.echo(f"{model}: champion v{out['from']} -> v{out['to']} (request {out['request']})")


COMMANDS = (check, compare, approve, reject, rollback)
