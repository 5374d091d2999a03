"""The ``podium`` command."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from webhook_server.settings import Settings, SettingsError, describe
from webhook_server.tables import render

log = logging.getLogger("podium")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _services(migrate: bool = True):
    from webhook_server.services import build

    svc = build(_settings())
    if migrate:
        svc.store.migrate()
    return svc


def _emit(data, as_json: bool, table) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(table())


class _Podium(click.Group):
    """A command that needs the policy and finds it missing or invalid (approve, reject,
    rollback...) stops with one line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from webhook_server.policy import PolicyError

        try:
            return super().invoke(ctx)
        except PolicyError as exc:
            raise click.ClickException(f"policy {exc.one_line()}") from None


@click.group(cls=_Podium)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Podium: automated, audited model promotions for the MLflow registry."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", "web_workers", type=int, default=None,
              help="HTTP worker processes [default: 2 x CPUs].")
@click.option("--no-worker", is_flag=True, help="Do not run jobs in this service.")
@click.option("--no-scheduler", is_flag=True, help="Do not fire periodic triggers.")
@click.option("--insecure-no-signature", is_flag=True,
              help="Accept unsigned MLflow deliveries (local experiments only).")
def serve(host, port, web_workers, no_worker, no_scheduler, insecure_no_signature):
    """HTTP intake + job worker + scheduler (the embedded default)."""
    from webhook_server.serve import (
        default_web_workers,
        run_http,
        spawn_worker_process,
        stop_process,
    )

    settings = _settings()
    if insecure_no_signature:
        settings = settings.replace(insecure_no_signature=True)
    from webhook_server.sources.mlflow import UNSIGNED_BANNER

    # however insecure mode was set (flag or PODIUM_INSECURE_NO_SIGNATURE), it is shown
    unsigned = settings.insecure_no_signature and not settings.mlflow_webhook_secret
    if not settings.mlflow_webhook_secret and not settings.insecure_no_signature:
        click.echo("podium serve: refusing to start: PODIUM_MLFLOW_WEBHOOK_SECRET is not set "
                   "(set it, or pass --insecure-no-signature to accept unsigned deliveries)",
                   err=True)
        sys.exit(2)
    _check_start(settings, "podium serve")
    from webhook_server.store import Store

    store = Store(settings.database_url)
    store.migrate()
    store.dispose()
    web_workers = web_workers or default_web_workers()
    click.echo(f"podium: http://{host}:{port} ({web_workers} HTTP workers)"
               f"; jobs {'off' if no_worker else 'on'}; scheduler "
               f"{'off' if no_scheduler else 'on'}; store {_safe_url(settings.database_url)}"
               f"; MLflow {settings.mlflow_tracking_uri or 'not configured'}"
               f"{'; ' + UNSIGNED_BANNER if unsigned else ''}",
               err=True)
    from webhook_server.notify.slack import describe_mode

    click.echo(f"podium: {describe_mode(settings)}", err=True)
    _isolation(settings, "podium", jobs=False)  # the worker process it starts says it
    child = None
    if not (no_worker and no_scheduler):
        child = spawn_worker_process(scheduler=not no_scheduler,
                                     concurrency=0 if no_worker else 2)
    try:
        run_http(settings, host, port, web_workers)
    finally:
        stop_process(child)


@main.command()
@click.option("--concurrency", default=2, show_default=True, help="Worker threads.")
@click.option("--scheduler/--no-scheduler", default=False, show_default=True,
              help="Also fire the periodic triggers (run it in one process only).")
def worker(concurrency: int, scheduler: bool) -> None:
    """Run jobs only (scale out by starting more of these)."""
    from webhook_server.serve import run_workers

    _check_start(_settings(), "podium worker")
    svc = _services()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"podium worker: {concurrency} thread(s), scheduler "
               f"{'on' if scheduler else 'off'}, store {_safe_url(svc.settings.database_url)}",
               err=True)
    from webhook_server.notify.slack import describe_mode

    click.echo(f"podium worker: {describe_mode(svc.settings)}", err=True)
    _isolation(svc.settings, "podium worker", jobs=concurrency > 0)
    try:
        run_workers(svc, concurrency=concurrency, scheduler=scheduler, stop=stop)
    finally:
        svc.close()  # the spare sandboxes and their directories go too


@main.command()
def migrate() -> None:
    """Bring the store's schema up to date (serve and worker do this at start)."""
    svc = _services()
    click.echo(f"schema at revision {svc.store.revision()}")


@main.command()
def config() -> None:
    """List every environment variable Podium reads, and whether it is set."""
    settings = _settings()
    rows = []
    for (env, _default, doc), field in zip(describe(), settings.__dataclass_fields__.values(),
                                           strict=True):
        value = getattr(settings, field.name)
        shown = ("(set)" if value else "(unset)") if field.metadata["secret"] else repr(value)
        rows.append([env, shown, doc])
    click.echo(render(["variable", "value", "meaning"], rows))


@main.group()
def webhook() -> None:
    """Manage the MLflow webhook that feeds Podium."""


@webhook.command("register")
@click.option("--url", required=True, help="Podium's /webhooks/mlflow URL as MLflow sees it.")
@click.option("--name", default="podium", show_default=True)
@click.option("--test/--no-test", default=False, help="Send MLflow's test delivery after.")
def webhook_register(url: str, name: str, test: bool) -> None:
    """Create (or replace) the MLflow webhook for every event Podium uses."""
    svc = _services(migrate=False)
    if svc.registry is None:
        raise click.ClickException("MLFLOW_TRACKING_URI is not set")
    if not svc.settings.mlflow_webhook_secret:
        click.echo("warning: PODIUM_MLFLOW_WEBHOOK_SECRET is unset: the webhook is unsigned "
                   "and Podium will refuse its deliveries unless run insecurely", err=True)
    hook = svc.registry.register_webhook(url, svc.settings.mlflow_webhook_secret, name=name)
    click.echo(render(["webhook", "url", "events", "signed"],
                      [[hook["id"], hook["url"], ", ".join(hook["events"]), hook["signed"]]]))
    if test:
        result = svc.registry.test_webhook(hook["id"])
        click.echo(f"test delivery: {'ok' if result['success'] else 'FAILED'} "
                   f"(HTTP {result['status']}){' ' + result['error'] if result['error'] else ''}")
        if not result["success"]:
            sys.exit(1)


@main.command("requests")
@click.option("--model", help="Only this registered model.")
@click.option("--state", help="Only requests in this state.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_requests(model, state, limit, as_json) -> None:
    """List transition requests, newest first."""
    from webhook_server.store import requests as reqs
    from webhook_server.views import request_json

    svc = _services()
    with svc.store.read() as conn:
        rows = [request_json(r) for r in reqs.list_(conn, model=model, state=state,
                                                    limit=limit)]
    _emit(rows, as_json, lambda: render(
        ["id", "model", "version", "target", "origin", "state", "updated", "reason"],
        [[r["id"], r["model"], r["version"], r["target"] or r["raw_target"], r["origin"],
          r["state"], r["updated_at"][:19], r["reason"] or ""] for r in rows]))


@main.command()
@click.argument("request_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(request_id: int, as_json: bool) -> None:
    """One request with its history."""
    from webhook_server.store import requests as reqs
    from webhook_server.views import request_json

    svc = _services()
    with svc.store.read() as conn:
        row = reqs.get(conn, request_id)
        if row is None:
            raise click.ClickException(f"no request {request_id}")
        data = request_json(row, reqs.history(conn, request_id))

    def table() -> str:
        head = (f"request {data['id']}: {data['model']} v{data['version']} -> "
                f"{data['target'] or data['raw_target']} ({data['origin']}), "
                f"state {data['state']}" + (f": {data['reason']}" if data["reason"] else ""))
        return head + "\n" + render(["at", "from", "to", "actor", "note"],
                                    [[h["at"][:19], h["from"] or "", h["to"], h["actor"],
                                      h["note"] or ""] for h in data["history"]])

    _emit(data, as_json, table)


@main.command()
@click.argument("delivery_id")
@click.option("--json", "as_json", is_flag=True)
def replay(delivery_id: str, as_json: bool) -> None:
    """Re-run a stored delivery (or give its dead jobs another go)."""
    from webhook_server.replay import ReplayError
    from webhook_server.replay import replay as do_replay

    svc = _services()
    try:
        result = do_replay(svc, delivery_id)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from None
    _emit(result, as_json, lambda: (
        f"delivery {result['delivery']}: requeued {', '.join(result['jobs'])}"
        if result["action"] == "requeued" else
        f"delivery {result['delivery']}: re-run as delivery "
        f"{result['new_delivery']['delivery']} ({result['new_delivery']['status']}"
        + (f", request {result['new_delivery']['request_id']}"
           if "request_id" in result["new_delivery"] else "") + ")"))


@main.command()
@click.option("--json", "as_json", is_flag=True)
def reconcile(as_json: bool) -> None:
    """Scan the registry for requests Podium missed and create them once."""
    from webhook_server.reconcile import reconcile as do_reconcile

    svc = _services()
    if svc.registry is None:
        raise click.ClickException("MLFLOW_TRACKING_URI is not set")
    report = do_reconcile(svc.store, svc.intake, svc.registry, svc.settings.challenger_alias)
    data = {"scanned": report.scanned, "created": report.created}
    _emit(data, as_json, lambda: (
        f"scanned {report.scanned} requested version(s); created "
        f"{len(report.created)} request(s)"
        + (f": {', '.join(map(str, report.created))}" if report.created else "")))


@main.command()
@click.option("--state", type=click.Choice(["queued", "running", "done", "dead"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs(state, limit, as_json) -> None:
    """List jobs (dead ones can be replayed with `podium replay`)."""
    from webhook_server.jobs.queue import list_jobs

    svc = _services()
    with svc.store.read() as conn:
        rows = list_jobs(conn, state=state, limit=limit)
    _emit(rows, as_json, lambda: render(
        ["id", "key", "kind", "state", "attempts", "run after", "last error"],
        [[r["id"], r["key"], r["kind"], r["state"], f"{r['attempts']}/{r['max_attempts']}",
          str(r["run_after"])[:19], (r["last_error"] or "")[:60]] for r in rows]))


@main.command()
@click.option("--state", type=click.Choice(["pending", "sent", "dead"]))
@click.option("--channel", type=click.Choice(["slack", "gitlab"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--retry", "retry_ids", multiple=True, type=int,
              help="Send this dead or pending notification again (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def outbox(state, channel, limit, retry_ids, as_json) -> None:
    """Notifications (Slack, GitLab): what waits, what went where, what was dropped."""
    from webhook_server.store import outbox as ob

    svc = _services()
    if retry_ids:
        with svc.store.tx() as conn:
            for row_id in retry_ids:
                if not ob.retry(conn, row_id):
                    raise click.ClickException(f"notification {row_id} does not exist or "
                                               "was already sent")
        click.echo(f"queued again: {', '.join(map(str, retry_ids))}")
        return
    with svc.store.read() as conn:
        rows = ob.list_(conn, state=state, channel=channel, limit=limit)
    _emit(rows, as_json, lambda: render(
        ["id", "channel", "kind", "request", "state", "attempts", "result / last error"],
        [[r["id"], r["channel"], r["kind"], r["request_id"] or "-", r["state"],
          r["attempts"], (r["result"] if r["state"] == "sent" else r["last_error"] or "")[:60]]
         for r in rows]))


@main.command()
@click.option("--keep-running", is_flag=True, help="Leave the servers up at the end.")
def demo(keep_running: bool) -> None:
    """The loop on embedded defaults: local MLflow, Podium, a request end to end."""
    from webhook_server.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


def _isolation(settings: Settings, command: str, jobs: bool) -> None:
    """Make this process's environment unreadable to other processes of its user, and say
    which isolation model code gets here (and which models' policies refuse it)."""
    from model_tests.isolation import detect, harden_process

    harden_process()
    if not jobs:
        return
    from webhook_server.policy import load_policy

    iso = detect(settings.sandbox, settings.sandbox_user)
    click.echo(f"{command}: {iso.describe()}", err=True)
    if iso.strong:
        return
    policy = load_policy(settings.policy_path, warn=False)
    scopes = [f"models.{name}" for name, mp in policy.models.items() if mp.sandbox == "required"]
    if policy.default.sandbox == "required":
        scopes.insert(0, "default")
    if scopes:
        click.echo(f"{command}: warning: the policy requires the bubblewrap sandbox "
                   f"({', '.join(scopes)}: sandbox: required); their requests will fail "
                   "here until bubblewrap works (apt-get install bubblewrap)", err=True)


def _check_start(settings: Settings, command: str) -> None:
    """Fail closed: settings that cannot run safely, or a policy file that is missing or
    invalid (including a target that needs approval when nobody may approve), stop the
    service at start with one line and exit status 2."""
    from webhook_server.policy import PolicyError, load_policy

    for reason in settings.refusals():
        click.echo(f"{command}: refusing to start: {reason}", err=True)
        sys.exit(2)
    try:
        load_policy(settings.policy_path)
    except PolicyError as exc:
        from pathlib import Path

        hint = ("" if Path(settings.policy_path).exists() else
                " (set PODIUM_POLICY to the policy file; podium.example.yaml documents it)")
        click.echo(f"{command}: refusing to start: policy {exc.one_line()}{hint}", err=True)
        sys.exit(2)


@main.group()
def policy() -> None:
    """The policy file (PODIUM_POLICY)."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def policy_check(file: str, as_json: bool) -> None:
    """Validate FILE: every problem with its line; exit 1 when there is any."""
    from webhook_server.policy import PolicyError, load_policy

    try:
        loaded = load_policy(file, warn=False)
    except PolicyError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "file": file,
                                   "problems": [p.as_json() for p in exc.problems],
                                   "warnings": list(exc.warnings)}, indent=2))
        else:
            for line in exc.warnings:
                click.echo(f"warning: {line}", err=True)
            for problem in exc.problems:
                click.echo(str(problem))
            click.echo(f"{len(exc.problems)} problem(s) in {file}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"ok": True, "file": file, "models": len(loaded.models),
                               "people": len(loaded.people),
                               "warnings": list(loaded.warnings)}, indent=2))
        return
    for line in loaded.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"ok: {loaded.summary()}")


def _register_training_commands() -> None:
    from webhook_server import cli_training, cli_workflow

    for command in (*cli_training.COMMANDS, *cli_workflow.COMMANDS):
        main.add_command(command)


_register_training_commands()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
