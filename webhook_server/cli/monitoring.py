"""``podium labels`` and ``podium monitor``: outcomes joined to the inference log, and the
realised quality of each version against what it showed at promotion."""

from __future__ import annotations

import sys

import click

from webhook_server.cli.context import InputFile, current, emit, engine_for, input_errors
from webhook_server.core.text_table import render


@click.command()
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--input", "input_path", required=True,
              help="CSV or Parquet: customerID, Churn (Yes/No), optional observed_at "
                   "(spark: also a directory of them, or a table).")
@click.option("--rejects", "rejects_path", type=click.Path(),
              help="Rejected rows [INPUT.rejects.csv].")
@click.option("--chunk-rows", default=100_000, show_default=True)
@click.option("--engine", type=click.Choice(["local", "spark"]),
              help="spark: the join in Spark SQL, the rejects written by Spark [the policy's "
                   "scoring.engine, else local].")
@click.option("--master", help="Spark master [the environment's session, else local[*]].")
@click.option("--json", "as_json", is_flag=True)
def labels(model_name, input_path, rejects_path, chunk_rows, engine, master, as_json):
    """Join outcomes to the latest logged prediction before each (idempotent)."""
    from training.data import DataError
    from webhook_server.monitoring.labels import load_labels, load_labels_spark

    ctx = current()
    store = ctx.services().store
    spark = engine_for(model_name, engine) == "spark"
    if not spark:  # the local engine reads one file (checked as podium score checks it)
        ctx_ = click.get_current_context()
        param = next(p for p in ctx_.command.params if p.name == "input_path")
        input_path = InputFile().convert(input_path, param, ctx_)
    click.echo(f"joining {input_path} to {model_name}'s inference log "
               f"({ctx.settings.inference_log}){' in Spark' if spark else ''}", err=True)
    try:
        with input_errors(input_path):
            if spark:
                from training.spark_io import session

                report = load_labels_spark(
                    store, session(master, ctx.settings.spark_driver_memory), model_name,
                    str(input_path), ctx.settings.inference_log, rejects_path=rejects_path,
                    chunk_rows=chunk_rows,
                    progress=lambda n: click.echo(f"  {n:,} labels", err=True))
            else:
                report = load_labels(store, model_name, input_path,
                                     ctx.settings.inference_log, rejects_path=rejects_path,
                                     chunk_rows=chunk_rows,
                                     progress=lambda n: click.echo(f"  {n:,} rows", err=True))
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    emit({"model": model_name, **report.as_json()}, as_json, lambda: render(
        ["rows", "joined", "new", "already loaded", "rejected", "rejects"],
        [[f"{report.rows:,}", f"{report.joined:,}", f"{report.new:,}",
          f"{report.joined - report.new:,}", f"{report.rejected:,}", report.rejects or "-"]]))


@click.command()
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--period", type=click.Choice(["day", "week", "month"]),
              help="Group by [the policy's monitoring.period, week].")
@click.option("--engine", type=click.Choice(["local", "spark"]),
              help="spark: the per-period figures computed in Spark [the policy's "
                   "scoring.engine, else local].")
@click.option("--master", help="Spark master [the environment's session, else local[*]].")
@click.option("--json", "as_json", is_flag=True)
def monitor(model_name, period, engine, master, as_json):
    """Realised quality per version and period against promotion, and each shadow's live
    comparison with the champion; exit 1 on decay."""
    from webhook_server.monitoring.live import live_comparisons, live_table
    from webhook_server.monitoring.recorded import run_figures_of
    from webhook_server.monitoring.report import build
    from webhook_server.monitoring.score_psi import psi_engine, reference_of
    from webhook_server.monitoring.text import table

    ctx = current()
    svc = ctx.services()
    holdout_of = run_figures_of(ctx.settings.mlflow_tracking_uri, model_name)
    reference = reference_of(ctx.settings.mlflow_tracking_uri, model_name)
    mp = svc.policy.for_model(model_name)
    root = ctx.settings.inference_log
    with svc.store.read() as conn:
        figures = psi = None
        if engine_for(model_name, engine) == "spark":
            from training.spark_io import session
            from webhook_server.monitoring.spark_figures import store_engine
            from webhook_server.store import monitoring as store_rows

            spark = session(master, ctx.settings.spark_driver_memory)
            figures = store_engine(spark, store_rows.labelled(conn, model_name))
            psi = psi_engine(reference, root, model_name, spark)
        else:
            psi = psi_engine(reference, root, model_name)
        report = build(conn, model_name, mp, period=period, holdout_of=holdout_of,
                       engine=figures, psi=psi)
    live = live_comparisons(svc.store, model_name, mp)
    emit({**report.as_json(), "live": [r.as_json() for r in live]}, as_json,
         lambda: table(report) + ("\n\n" + live_table(live) if live else ""))
    if report.decayed:
        sys.exit(1)


COMMANDS = (labels, monitor)
