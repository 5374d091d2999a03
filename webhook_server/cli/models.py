"""``podium train``, ``score``, ``drift``, ``request``, ``check``, ``compare``: the churn
pipeline and the checks, run in this process on models the caller trusts.

Heavy imports (pandas, scikit-learn, LightGBM, MLflow) happen inside the commands so that
``podium --help`` and the service commands stay fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid

import click

from webhook_server.adapters.registry import mlflow_client
from webhook_server.cli.context import InputFile, current, engine_for, input_errors, progress
from webhook_server.cli.shadows import shadow_plans, spark_shadows
from webhook_server.core.identity import cli_actor
from webhook_server.core.text_table import render


@click.command()
@click.option("--model", "model_name", default="churn", show_default=True)
@click.option("--data", "data_path", type=InputFile(),
              help="CSV in the Telco churn layout.")
@click.option("--synthetic", type=int, help="Generate N synthetic rows instead [20000].")
@click.option("--seed", default=7, show_default=True)
@click.option("--drift", default=0.0, show_default=True, help="Synthetic drift, 0..1.")
@click.option("--trials", default=6, show_default=True, help="Hyperparameter trials.")
@click.option("--params", "params_json", help="Fixed LightGBM settings as JSON (no search).")
@click.option("--experiment", default="podium-churn", show_default=True)
@click.option("--request", "target", type=click.Choice(["Staging", "Production", "Archived"],
                                                       case_sensitive=False),
              help="Then tag the version transition_request=<target>.")
@click.option("--challenger", is_flag=True, help="Then set the challenger alias on it.")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE tag for the run and version.")
@click.option("--json", "as_json", is_flag=True)
def train(model_name, data_path, synthetic, seed, drift, trials, params_json, experiment,
          target, challenger, tags, as_json):
    """Train, log and register a churn model version; optionally request a transition."""
    from model_tests.sandbox import harden_process

    harden_process()  # its environment holds MLflow's credentials: not for other processes
    if data_path and synthetic:
        raise click.UsageError("give --data or --synthetic, not both")
    if target and challenger:
        raise click.UsageError("give --request or --challenger, not both")
    try:
        params = json.loads(params_json) if params_json else None
        tag_map = dict(t.split("=", 1) for t in tags)
    except (json.JSONDecodeError, ValueError) as exc:
        raise click.UsageError(
            f"--params must be a JSON object and --tag KEY=VALUE: {exc}") from None
    uri = current().tracking_uri()
    from training.data import DataError
    from training.train import Dataset, TrainConfig
    from training.train import train as run_training
    from webhook_server.intake.ask import request_transition

    try:
        with input_errors(data_path):
            dataset = (Dataset.from_csv(data_path) if data_path
                       else Dataset.synthetic(synthetic or 20000, seed, drift))
    except DataError as exc:
        raise click.ClickException(f"refusing to train on invalid data:\n{exc}") from None
    cfg = TrainConfig(model_name=model_name, seed=seed, trials=trials, experiment=experiment,
                      params=params, tags=tag_map)
    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints run links: keep stdout clean
        result = run_training(dataset, cfg, tracking_uri=uri, progress=progress)
    requested = None
    if target or challenger:

        requested = request_transition(
            mlflow_client(uri), model_name, result.version, target=target,
            challenger_alias=current().settings.challenger_alias if challenger else None)
    m = result.metrics
    data = {"model": model_name, "version": result.version, "run_id": result.run_id,
            "run_url": result.run_url, "requested": requested, "params": result.params,
            "metrics": {k: round(v, 6) for k, v in m.items()}}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    row = [model_name, result.version, f"{m['holdout_roc_auc']:.4f}", f"{m['holdout_f1']:.3f}",
           f"{m['holdout_precision']:.3f}", f"{m['holdout_recall']:.3f}",
           f"{m['holdout_logreg_roc_auc']:.4f}",
           f"{m['holdout_oracle_roc_auc']:.4f}" if "holdout_oracle_roc_auc" in m else "-"]
    click.echo(render(["model", "version", "holdout AUC", "F1", "precision", "recall",
                       "logreg AUC", "oracle AUC"], [row]))
    click.echo(f"run: {result.run_url or result.run_id}")
    if requested:
        click.echo(f"requested: {requested}")


@click.command()
@click.option("--model-uri", required=True, help="e.g. models:/churn@champion")
@click.option("--input", "input_path", required=True,
              help="CSV or Parquet file (spark: also a directory of them, or a table).")
@click.option("--output", "output_path", required=True, type=click.Path())
@click.option("--rejects", "rejects_path", type=click.Path(),
              help="Rejected rows [OUTPUT.rejects.csv].")
@click.option("--chunk-rows", default=100_000, show_default=True)
@click.option("--log/--no-log", "log_batch", default=True, show_default=True,
              help="Record the batch in the inference log (PODIUM_INFERENCE_LOG) and the "
                   "store, for podium labels / monitor.")
@click.option("--shadow/--no-shadow", "with_shadows", default=None,
              help="Also score the versions the policy's shadow.aliases name (logged with "
                   "role shadow, never written to OUTPUT); needs --log. [on when the policy "
                   "file (PODIUM_POLICY) exists; spark: scored in the executors, no sandbox]")
@click.option("--engine", type=click.Choice(["local", "spark"]),
              help="spark: read, score (mlflow spark_udf) and log on Spark; --input may then "
                   "be a directory or a table [the policy's scoring.engine, else local].")
@click.option("--master", help="Spark master [the environment's session, else local[*]].")
@click.option("--json", "as_json", is_flag=True)
def score(model_uri, input_path, output_path, rejects_path, chunk_rows, log_batch,
          with_shadows, engine, master, as_json):
    """Batch inference (CSV or Parquet) in chunks, with a rejects file."""
    uri = current().tracking_uri()
    from training.data import DataError
    from training.score import load_predictor, resolve_version, score_file
    from webhook_server.monitoring import batches

    engine = engine_for(_registered_name(model_uri), engine)
    if engine == "spark":
        predict, version = None, resolve_version(model_uri)
    else:
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if p.name == "input_path")
        input_path = InputFile().convert(input_path, param, ctx)
        predict, version = load_predictor(model_uri)
    click.echo(f"scoring {input_path} with {model_uri} ({version}, {engine} engine)", err=True)
    log, plans, opened = None, [], []  # opened: the shadows' sandboxes, closed at the end
    if log_batch:
        log = batches.open_log(current().settings.inference_log, version,
                               mlflow_client(uri))
        if log is None:
            click.echo("inference log: skipped (not a registered model version)", err=True)
        elif with_shadows is not False:
            plans = shadow_plans(log, required=bool(with_shadows), opened=opened,
                                 spark=engine == "spark")
    shadows = [p.shadow for p in plans if p.shadow is not None]

    def progress(rows: int) -> None:
        click.echo(f"  {rows:,} rows", err=True)

    try:
        with input_errors(input_path), contextlib.ExitStack() as logs:
            for each in ([log] if log else []) + [s.log for s in shadows]:
                logs.enter_context(each)
            if engine == "spark":
                report = _score_on_spark(model_uri, input_path, output_path, version,
                                         rejects_path, log, master,
                                         spark_shadows(log.model, plans) if log else [])
            else:
                report = score_file(predict, input_path, output_path, model_version=version,
                                    chunk_rows=chunk_rows, rejects_path=rejects_path,
                                    progress=progress, log=log, shadows=shadows)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for model in opened:
            model.close()
    store = current().services().store
    logged = log and batches.record(store, log, rejected=report.rejected,
                                    source=str(input_path))
    for s in shadows:
        batches.record(store, s.log, source=str(input_path))
    _score_output(report, version, logged, plans, as_json)


def _score_output(report, version: str, logged, plans, as_json: bool) -> None:
    shadowed = [p for p in plans if p.shadow is not None]
    data = {"rows": report.rows, "scored": report.scored, "rejected": report.rejected,
            "seconds": round(report.seconds, 3), "rows_per_s": round(report.rows_per_s),
            "output": report.output, "rejects": report.rejects, "model_version": version,
            "inference_log": logged or None,
            "shadows": [{**p.as_json(), "rows": n} for p, n in
                        zip(shadowed, report.shadow_rows, strict=True)]
            + [p.as_json() for p in plans if p.shadow is None]}
    if shadowed:
        data["rows_per_s_without_shadows"] = round(report.rows_per_s_without_shadows)
        data["shadow_seconds"] = round(report.shadow_seconds, 3)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render(["rows", "scored", "rejected", "rows/s", "output", "rejects"],
                      [[f"{report.rows:,}", f"{report.scored:,}", f"{report.rejected:,}",
                        f"{report.rows_per_s:,.0f}", report.output, report.rejects or "-"]]))
    if logged:
        click.echo(f"logged batch {logged['batch_id']} ({logged['rows']:,} predictions, "
                   f"predicted churn rate {logged['mean_score'] or 0:.1%}) -> "
                   f"{logged['path'] or '(nothing scored)'}")
    for p, n in zip(shadowed, report.shadow_rows, strict=True):
        click.echo(f"shadow {p.alias} (version {p.version}): {n:,} rows logged, not written")
    if shadowed:
        click.echo(f"shadow cost: {report.shadow_seconds:.2f} s of {report.seconds:.2f} s; "
                   f"{report.rows_per_s:,.0f} rows/s with, about "
                   f"{report.rows_per_s_without_shadows:,.0f} without")


def _registered_name(model_uri: str) -> str | None:
    """``models:/churn@champion`` or ``models:/churn/3`` -> ``churn``; None otherwise."""
    if not model_uri.startswith("models:/"):
        return None
    return model_uri[len("models:/"):].split("@", 1)[0].split("/", 1)[0] or None


def _score_on_spark(model_uri, input_path, output_path, version, rejects_path, log, master,
                    shadows):
    from training.spark_io import session
    from training.spark_score import score_spark

    spark = session(master, current().settings.spark_driver_memory)
    return score_spark(spark, model_uri, input_path, output_path, model_version=version,
                       rejects_path=rejects_path, log=log,
                       log_root=current().settings.inference_log, shadows=shadows,
                       warn=lambda line: click.echo(line, err=True))


@click.command()
@click.option("--model", "model_name", default="churn", show_default=True)
@click.option("--model-uri", help="Defaults to models:/MODEL@champion, else the newest.")
@click.option("--input", "input_path", required=True, type=InputFile())
@click.option("--threshold", default=0.2, show_default=True, help="PSI that counts as drift.")
@click.option("--json", "as_json", is_flag=True)
def drift(model_name, model_uri, input_path, threshold, as_json):
    """PSI per feature and of the predictions against the training reference.

    Exit status 1 when any PSI reaches the threshold.
    """
    uri = current().tracking_uri()
    import mlflow

    from training.data import DataError
    from training.drift import load_frame, run_drift
    from training.score import default_model_uri

    client = mlflow_client(uri)
    try:
        with input_errors(input_path):
            frame = load_frame(input_path)
    except DataError as exc:
        raise click.ClickException(str(exc)) from None

    def score(version_uri, rows):  # this process, on a model the caller trusts
        return mlflow.sklearn.load_model(version_uri).predict_proba(rows)[:, 1]

    report = run_drift(client, model_uri or default_model_uri(model_name, client=client),
                       frame, score, threshold, tracking_uri=uri)
    version = report.model_version
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        rows = sorted(report.psi.items(), key=lambda kv: -kv[1])
        click.echo(render(["feature", "PSI", "drift"],
                          [[k, f"{v:.4f}", "YES" if v >= threshold else ""] for k, v in rows]))
        click.echo(f"{version}, {report.rows:,} rows: " + (
            f"drift in {', '.join(report.drifted)}" if report.drifted else "no drift"))
    if report.drifted:
        sys.exit(1)




@click.command("request")
@click.argument("model")
@click.argument("version")
@click.argument("target", default="Production")
@click.option("--challenger", is_flag=True, help="Set the challenger alias instead of a tag.")
def request_cmd(model, version, target, challenger):
    """Request a transition of MODEL VERSION as cli:<your OS account>: recorded in Podium's
    store first (so the requester is who Podium authenticated, not a tag anyone can
    write), then shown in the registry (tag transition_request=TARGET, or the alias)."""
    uri = current().tracking_uri()
    from mlflow.exceptions import MlflowException

    from webhook_server.intake.ask import request_transition
    from webhook_server.intake.events import TARGETS, normalise_target

    client = mlflow_client(uri)
    try:
        client.get_model_version(model, version)
    except MlflowException:
        raise click.ClickException(f"model {model!r} version {version} does not exist in "
                                   f"the registry at {uri}") from None
    if not challenger and normalise_target(target) is None:
        raise click.ClickException(f"invalid target {target!r}: expected one of "
                                   f"{', '.join(TARGETS)}")

    recorded = None
    if os.environ.get("PODIUM_DATABASE_URL"):  # Podium's store: the request is authenticated
        recorded = _record_request(model, version, "Production" if challenger else target,
                                   "alias" if challenger else "tag")
    done = request_transition(client, model, version, target=target,
                              challenger_alias=(current().settings.challenger_alias
                                                if challenger else None),
                              requested_by=_requester())
    click.echo(f"requested: {done} " + (
        f"(request {recorded}, as {_requester()})" if recorded is not None else
        "(PODIUM_DATABASE_URL is not set: not recorded in Podium's store, so the registry "
        "request names its requesters, and none of them may approve it)"))


def _record_request(model: str, version: str, target: str, origin: str) -> int | None:
    """The request in Podium's store, with the authenticated actor (cli:<OS account>); a
    release job's GitLab login (an environment variable, not authenticated) is kept as a
    requester too, so neither may approve it."""
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery
    from webhook_server.store import transition_requests as reqs

    svc = current().services()
    actor = _requester()
    event = TransitionRequested(model, version, target, origin=origin, requested_by=actor)
    delivery = Delivery("cli", f"cli:{uuid.uuid4().hex}", "cli.request",
                        json.dumps({"model": model, "version": version, "target": target,
                                    "origin": origin, "actor": actor}), event)
    result = svc.intake.record(delivery)
    login = _gitlab_login()
    if login and result.request_id is not None and not result.already_open:
        with svc.store.tx() as conn:
            reqs.set_requesters(conn, result.request_id, [f"gitlab:{login}"])
    return result.request_id


def _gitlab_login() -> str | None:
    return os.environ.get("GITLAB_USER_LOGIN") or None


def _requester() -> str:
    """Who asks: the OS account running this command (what Podium can vouch for)."""
    return cli_actor()


@click.command()
@click.argument("model_uri")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False))
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def check(model_uri, holdout, policy_path, as_json):
    """Model-quality checks: a table, exit 1 on any failure."""

    current().tracking_uri()
    from model_tests.checks import summary
    from model_tests.config import read_policy
    from model_tests.context import model_name
    from model_tests.runner import check_in_process

    judge = read_policy(policy_path, model_name(model_uri))
    with contextlib.redirect_stdout(sys.stderr):
        results = check_in_process(model_uri, judge, holdout)
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

    current().tracking_uri()
    from model_tests.config import read_policy
    from model_tests.runner import compare_in_process

    judge = read_policy(policy_path, model)
    with contextlib.redirect_stdout(sys.stderr):
        r = compare_in_process(model, challenger, champion, judge, holdout)
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



COMMANDS = (train, score, drift, request_cmd, check, compare)
