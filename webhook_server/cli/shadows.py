"""``podium score``'s shadows: the versions the policy names (and, with
``monitoring.shadow_former``, the former champion), each loaded in a sandbox of its own (a
version nobody promoted never runs in the scoring process)."""

from __future__ import annotations

import click

from webhook_server.cli.context import current


def _sandboxed(svc, uri: str, opened: list):
    """A shadow's scorer: the version in a sandbox of its own (``monitoring.shadow``)."""
    from webhook_server.monitoring.shadow import sandboxed

    return sandboxed(svc.judge, uri, opened, lambda text: click.echo(text, err=True))


def shadow_plans(log, *, required: bool, opened: list) -> list:
    """The shadows the policy names for the champion's ``log`` (skips said on stderr). No
    policy file means no shadows, unless ``required`` (--shadow): then it is an error."""
    from pathlib import Path

    from webhook_server.monitoring.shadow import former_champion, plan_shadows

    svc = current().services(mlflow=True)
    if not required and not Path(current().settings.policy_path).is_file():
        click.echo("shadow: none (no policy file)", err=True)
        return []
    mp = svc.policy.for_model(log.model)
    former = (former_champion(svc.store, log.model, mp, log.version)
              if mp.monitoring.shadow_former else None)
    plans = plan_shadows(mp, log.model, log.version, current().settings.inference_log,
                         svc.registry, lambda uri: _sandboxed(svc, uri, opened),
                         batch_prefix=log.batch_id, former=former)
    for p in plans:
        click.echo(f"shadow {p.alias}: " + (p.skipped or f"version {p.version}, "
                                            f"max_share {p.shadow.max_share:g}"), err=True)
    return plans


def no_shadows_on_spark(*, required: bool) -> None:
    """The spark engine scores no shadows yet: said, and an error when --shadow asked."""
    if required:
        raise click.UsageError("--shadow: the spark engine does not score shadows yet; use "
                               "--engine local")
    click.echo("shadow: none (the spark engine does not score shadows yet)", err=True)
