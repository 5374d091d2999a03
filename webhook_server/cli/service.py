"""``podium serve``, ``worker``, ``migrate``, ``config``, ``webhook register``: running the
service."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from webhook_server.cli.context import current, safe_url
from webhook_server.core.logs import announce
from webhook_server.core.settings import Settings, describe
from webhook_server.core.text_table import render


@click.command()
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
    from webhook_server.web.serve import (
        default_web_workers,
        default_worker_threads,
        run_http,
        spawn_worker_process,
        stop_process,
    )

    settings = current().settings
    if insecure_no_signature:
        settings = settings.replace(insecure_no_signature=True)
    from webhook_server.intake.sources.mlflow import UNSIGNED_BANNER

    # however insecure mode was set (flag or PODIUM_INSECURE_NO_SIGNATURE), it is shown
    unsigned = settings.insecure_no_signature and not settings.mlflow_webhook_secret
    if not settings.mlflow_webhook_secret and not settings.insecure_no_signature:
        announce("podium serve: refusing to start: PODIUM_MLFLOW_WEBHOOK_SECRET is not set "
                 "(set it, or pass --insecure-no-signature to accept unsigned deliveries)")
        sys.exit(2)
    _check_start(settings, "podium serve")
    from webhook_server.store import Store

    store = Store(settings.database_url)
    store.migrate()
    store.dispose()
    web_workers = web_workers or default_web_workers()
    announce(f"podium: http://{host}:{port} ({web_workers} HTTP workers)"
             f"; jobs {'off' if no_worker else 'on'}; scheduler "
             f"{'off' if no_scheduler else 'on'}; store {safe_url(settings.database_url)}"
             f"; MLflow {settings.mlflow_tracking_uri or 'not configured'}"
             f"{'; ' + UNSIGNED_BANNER if unsigned else ''}")
    from webhook_server.adapters.notify.slack import describe_mode

    announce(f"podium: {describe_mode(settings)}")
    _isolation(settings, "podium", jobs=False)  # the worker process it starts says it
    child = None
    if not (no_worker and no_scheduler):
        child = spawn_worker_process(scheduler=not no_scheduler,
                                     concurrency=0 if no_worker else default_worker_threads())
    try:
        run_http(settings, host, port, web_workers)
    finally:
        stop_process(child)


@click.command()
@click.option("--concurrency", type=int, default=None,
              help="Job threads [default: one per usable CPU, at least 2].")
@click.option("--scheduler/--no-scheduler", default=False, show_default=True,
              help="Also fire the periodic triggers (run it in one process only).")
def worker(concurrency: int, scheduler: bool) -> None:
    """Run jobs only (scale out by starting more of these)."""
    from webhook_server.web.serve import default_worker_threads, run_workers

    if concurrency is None:
        concurrency = default_worker_threads()

    _check_start(current().settings, "podium worker")
    svc = current().services()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    announce(f"podium worker: {concurrency} thread(s), scheduler "
             f"{'on' if scheduler else 'off'}, store {safe_url(svc.settings.database_url)}")
    from webhook_server.adapters.notify.slack import describe_mode

    announce(f"podium worker: {describe_mode(svc.settings)}")
    _isolation(svc.settings, "podium worker", jobs=concurrency > 0)
    try:
        run_workers(svc, concurrency=concurrency, scheduler=scheduler, stop=stop)
    finally:
        svc.close()  # the spare sandboxes and their directories go too


@click.command()
def migrate() -> None:
    """Bring the store's schema up to date (serve and worker do this at start)."""
    svc = current().services()
    click.echo(f"schema at revision {svc.store.revision()}")


@click.command()
def config() -> None:
    """List every environment variable Podium reads, and whether it is set."""
    settings = current().settings
    rows = []
    for (env, _default, doc), field in zip(describe(), settings.__dataclass_fields__.values(),
                                           strict=True):
        value = getattr(settings, field.name)
        shown = ("(set)" if value else "(unset)") if field.metadata["secret"] else repr(value)
        rows.append([env, shown, doc])
    click.echo(render(["variable", "value", "meaning"], rows))


@click.group()
def webhook() -> None:
    """Manage the MLflow webhook that feeds Podium."""


@webhook.command("register")
@click.option("--url", required=True, help="Podium's /webhooks/mlflow URL as MLflow sees it.")
@click.option("--name", default="podium", show_default=True)
@click.option("--test/--no-test", default=False, help="Send MLflow's test delivery after.")
def webhook_register(url: str, name: str, test: bool) -> None:
    """Create (or replace) the MLflow webhook for every event Podium uses."""
    svc = current().services(migrate=False)
    if svc.registry is None:
        raise click.ClickException("MLFLOW_TRACKING_URI is not set")
    if not svc.settings.mlflow_webhook_secret:
        announce("warning: PODIUM_MLFLOW_WEBHOOK_SECRET is unset: the webhook is unsigned "
                 "and Podium will refuse its deliveries unless run insecurely")
    hook = svc.registry.register_webhook(url, svc.settings.mlflow_webhook_secret, name=name)
    click.echo(render(["webhook", "url", "events", "signed"],
                      [[hook["id"], hook["url"], ", ".join(hook["events"]), hook["signed"]]]))
    if test:
        result = svc.registry.test_webhook(hook["id"])
        click.echo(f"test delivery: {'ok' if result['success'] else 'FAILED'} "
                   f"(HTTP {result['status']}){' ' + result['error'] if result['error'] else ''}")
        if not result["success"]:
            sys.exit(1)


def _isolation(settings: Settings, command: str, jobs: bool) -> None:
    """Make this process's environment unreadable to other processes of its user, and say
    which isolation model code gets here (and which models' policies refuse it)."""
    from model_tests.sandbox import detect, harden_process

    harden_process()
    if not jobs:
        return
    from podium_policy.check import load_policy

    iso = detect(settings.sandbox, settings.sandbox_user)
    announce(f"{command}: {iso.describe()}")
    cgroups = _limits(settings, command)
    if iso.strong and cgroups.available:
        return
    policy = load_policy(settings.policy_path, warn=False)
    scopes = [(f"models.{name}", mp) for name, mp in policy.models.items()
              if mp.sandbox == "required"]
    if policy.default.sandbox == "required":
        scopes.insert(0, ("default", policy.default))
    if scopes and not iso.strong:
        announce(f"{command}: warning: the policy requires the bubblewrap sandbox "
                 f"({', '.join(s for s, _ in scopes)}: sandbox: required); their requests "
                 "will fail here until bubblewrap works (apt-get install bubblewrap)")
    refused = [s for s, mp in scopes if not mp.sandbox_limits.accept_per_process]
    if refused and not cgroups.available:
        announce(f"{command}: warning: the policy requires a sandbox cgroup "
                 f"({', '.join(refused)}: sandbox: required); their requests will fail "
                 "here unless sandbox_limits.accept_per_process: true")


def _limits(settings: Settings, command: str):
    """Say what bounds all of a sandbox's processes together: its cgroup, or nothing."""
    from model_tests.sandbox import CgroupLimits, detect_cgroups

    cgroups = detect_cgroups(settings.sandbox_cgroup_root)
    limits = CgroupLimits(memory_mb=settings.sandbox_memory_mb, pids=settings.sandbox_pids,
                          cpu_shares=settings.sandbox_cpu_shares)
    announce(f"{command}: {cgroups.describe(limits)}")
    return cgroups


def _check_start(settings: Settings, command: str) -> None:
    """Fail closed: settings that cannot run safely, or a policy file that is missing or
    invalid (including a target that needs approval when nobody may approve), stop the
    service at start with one line and exit status 2."""
    from podium_policy.check import load_policy
    from podium_policy.schema import PolicyError

    for reason in settings.refusals():
        announce(f"{command}: refusing to start: {reason}")
        sys.exit(2)
    try:
        load_policy(settings.policy_path)
    except PolicyError as exc:
        hint = ("" if Path(settings.policy_path).exists() else
                " (set PODIUM_POLICY to the policy file; podium.example.yaml documents it)")
        announce(f"{command}: refusing to start: policy {exc.one_line()}{hint}")
        sys.exit(2)



COMMANDS = (serve, worker, migrate, config, webhook)
