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


def shadow_plans(log, *, required: bool, opened: list, spark: bool = False) -> list:
    """The shadows the policy names for the champion's ``log`` (skips said on stderr). No
    policy file means no shadows, unless ``required`` (--shadow): then it is an error.
    ``spark``: nothing is loaded here (the Spark engine loads each shadow in its executors
    with ``spark_udf``, as it does the champion: no sandbox)."""
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
                         svc.registry, (lambda uri: None) if spark else
                         (lambda uri: _sandboxed(svc, uri, opened)),
                         batch_prefix=log.batch_id, former=former)
    for p in plans:
        click.echo(f"shadow {p.alias}: " + (p.skipped or f"version {p.version}, "
                                            f"max_share {p.shadow.max_share:g}"
                                            + (", in the Spark executors (no sandbox)"
                                               if spark else "")), err=True)
    return plans


def spark_shadows(model: str, plans: list) -> list:
    """The planned shadows as the Spark engine takes them."""
    from training.spark_score import SparkShadow

    return [SparkShadow(f"models:/{model}/{p.version}", p.shadow.log, p.shadow.max_share)
            for p in plans if p.shadow is not None]
