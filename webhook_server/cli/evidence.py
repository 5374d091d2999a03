"""``podium verify REQUEST``: a decision computed again from its evidence bundle alone."""

from __future__ import annotations

import json
import sys

import click

from webhook_server.cli.context import current


@click.command()
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def verify(request_id: int, as_json: bool) -> None:
    """Recompute REQUEST's checks on scores, comparison and decision rule from its evidence
    bundle (no model is loaded, nothing is written): `verified` (exit 0), or each
    difference / `tampered` (exit 1)."""
    from webhook_server.service.evidence import EvidenceError
    from webhook_server.service.evidence import verify as check

    svc = current().reader()
    try:
        result = check(svc.store, svc.registry, request_id)
    except EvidenceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result.as_json(), indent=2) if as_json else result.text())
    sys.exit(0 if result.verified else 1)


COMMANDS = (verify,)
