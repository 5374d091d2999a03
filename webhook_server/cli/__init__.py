"""The ``podium`` command: one module per command group, sharing ``context.Context``.

| module | commands |
|---|---|
| ``service.py`` | serve, worker, migrate, config, webhook register |
| ``operations.py`` | requests, show, replay, reconcile, jobs, outbox |
| ``decisions.py`` | approve, reject, rollback |
| ``models.py`` | train, score, drift, request, check, compare |
| ``monitoring.py`` | labels, monitor |
| ``policy.py`` | policy check |
| ``sessions.py`` | sessions list, sessions revoke |
| ``slack.py`` | slack manifest |
| ``demo.py`` | demo |
"""

from __future__ import annotations

import logging

import click

from webhook_server import __version__
from webhook_server.cli import (
    decisions,
    demo,
    evidence,
    models,
    monitoring,
    operations,
    policy,
    service,
    sessions,
    slack,
)
from webhook_server.cli.context import Context


class _Podium(click.Group):
    """A command that needs the policy and finds it missing or invalid (approve, reject,
    rollback...) stops with one line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from podium_policy.schema import PolicyError

        try:
            return super().invoke(ctx)
        except PolicyError as exc:
            raise click.ClickException(f"policy {exc.one_line()}") from None


@click.group(cls=_Podium)
@click.version_option(__version__, prog_name="podium", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Podium: automated, audited model promotions for the MLflow registry."""
    from webhook_server.core import logs, tracing

    try:
        fmt = logs.chosen_format()
    except logs.LogFormatError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(fmt, logging.DEBUG if verbose else logging.INFO)
    tracing.configure()  # only when OTEL_* ask for it
    ctx.obj = Context()
    ctx.call_on_close(ctx.obj.close)


for _module in (service, operations, decisions, evidence, models, monitoring, policy,
                sessions, slack, demo):
    for _command in _module.COMMANDS:
        main.add_command(_command)
