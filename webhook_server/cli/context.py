"""What the commands share: settings read once, the services built once (and closed when
the command ends), the MLflow tracking URI, and how results are printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from webhook_server.core.settings import Settings, SettingsError


class Context:
    """One per ``podium`` invocation (``click``'s context object)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._services = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings

    def services(self, migrate: bool = True, mlflow: bool = False):
        """The service parts (``services.Services``); the store's schema brought up to date
        unless ``migrate=False``; ``mlflow=True`` also points this process at the tracking
        server (commands that call MLflow directly)."""
        if mlflow:
            self.tracking_uri()
        if self._services is None:
            from webhook_server.service.services import build

            self._services = build(self.settings)
            if migrate:
                self._services.store.migrate()
        return self._services

    def reader(self):
        """The service parts for a command that only reads (``podium verify``, ``policy
        diff``): the schema is not migrated (nothing is written), and a store behind it is
        refused with what to run; MLflow must be configured (the evidence bundles)."""
        svc = self.services(migrate=False)
        have, head = svc.store.revision(), svc.store.head()
        if have != head:
            raise click.ClickException(
                f"the store at {safe_url(self.settings.database_url)} is at schema "
                f"{have or 'none'}, not {head}: run `podium migrate` first")
        if svc.registry is None:
            raise click.ClickException("MLFLOW_TRACKING_URI is not set: the evidence bundles "
                                       "are MLflow artifacts")
        return svc

    def tracking_uri(self) -> str:
        """The MLflow server, set for this process (the CLI is one command in one process:
        the service never sets MLflow's process-wide URI)."""
        uri = self.settings.mlflow_tracking_uri
        if not uri:
            raise click.ClickException("MLFLOW_TRACKING_URI is not set: Podium trains against "
                                       "an MLflow server (its registry needs a SQL backend)")
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return uri

    def close(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None


def current() -> Context:
    """The running command's context (one is made when a command runs outside ``main``,
    e.g. invoked directly in a test)."""
    ctx = click.get_current_context()
    obj = ctx.find_object(Context)
    if obj is None:
        obj = ctx.ensure_object(Context)
        ctx.call_on_close(obj.close)
    return obj


def emit(data, as_json: bool, table) -> None:
    """``--json``: the data for a script; else the table for a person."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(table())


def progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class InputFile(click.ParamType):
    """A file a command reads: a readable regular file within ``PODIUM_MAX_INPUT_BYTES``
    (training/input_file.py), else a one-line usage error (never a hang on ``/dev/zero``)."""

    name = "file"

    def convert(self, value, param, ctx):
        from training.input_file import DEFAULT_MAX_BYTES, InputError, check

        try:
            limit = current().settings.max_input_bytes
        except click.ClickException:  # the settings' own error is shown by the command
            limit = DEFAULT_MAX_BYTES
        try:
            return str(check(value, limit))
        except InputError as exc:
            self.fail(str(exc), param, ctx)


@contextmanager
def input_errors(path: str) -> Iterator[None]:
    """What reading ``path`` raises (bad encoding, a broken quote...) as one line."""
    from training.input_file import InputError, reading

    try:
        with reading(path):
            yield
    except InputError as exc:
        raise click.ClickException(str(exc)) from None


def engine_for(model: str | None, given: str | None) -> str:
    """``--engine`` when given, else the policy's ``scoring.engine`` for ``model`` (the
    local engine when there is no policy file; an invalid one stops with its problems)."""
    if given:
        return given
    import os

    ctx = current()
    if not model or not os.path.isfile(ctx.settings.policy_path or ""):
        return "local"
    from podium_policy.policy import PolicyError

    try:
        return ctx.services().policy.for_model(model).scoring.engine
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
