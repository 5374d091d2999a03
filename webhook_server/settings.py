"""Every environment variable Podium reads, declared once.

Settings are read at start (``Settings.from_env()``) and passed down explicitly; nothing
else in the code base reads ``os.environ``. Tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type."""


def _var(env: str, default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"env": env, "doc": doc,
                                                             "secret": secret})


@dataclass(frozen=True)
class Settings:
    # --- MLflow -----------------------------------------------------------------------
    mlflow_tracking_uri: str | None = _var(
        "MLFLOW_TRACKING_URI", None,
        "MLflow tracking/registry server Podium reads and writes (e.g. http://mlflow:5000).")
    # --- storage and policy -----------------------------------------------------------
    database_url: str = _var(
        "PODIUM_DATABASE_URL", "sqlite:///podium.db",
        "SQLAlchemy URL of Podium's store. SQLite (WAL) by default; postgresql://... to scale.")
    policy_path: str = _var(
        "PODIUM_POLICY", "podium.yaml", "Path of the policy file (YAML).")
    # --- inbound verification ---------------------------------------------------------
    mlflow_webhook_secret: str | None = _var(
        "PODIUM_MLFLOW_WEBHOOK_SECRET", None,
        "HMAC secret shared with the MLflow webhook. Required unless --insecure-no-signature.",
        secret=True)
    insecure_no_signature: bool = _var(
        "PODIUM_INSECURE_NO_SIGNATURE", False,
        "Accept unsigned MLflow deliveries (same as `podium serve --insecure-no-signature`).")
    databricks_webhook_secret: str | None = _var(
        "PODIUM_DATABRICKS_WEBHOOK_SECRET", None,
        "HMAC secret of the Databricks registry webhook; the route answers 401 without it.",
        secret=True)
    api_token: str | None = _var(
        "PODIUM_API_TOKEN", None,
        "Bearer token for /api/v1; the API answers 401 to everything when unset.", secret=True)
    signature_tolerance_s: int = _var(
        "PODIUM_SIGNATURE_TOLERANCE", 300,
        "Largest allowed distance in seconds between a delivery's timestamp and now.")
    max_body_bytes: int = _var(
        "PODIUM_MAX_BODY_BYTES", 1024 * 1024, "Largest accepted request body (413 above).")
    # --- Slack ------------------------------------------------------------------------
    slack_bot_token: str | None = _var(
        "SLACK_BOT_TOKEN", None, "Slack bot token (xoxb-...) for messages and approvals.",
        secret=True)
    slack_signing_secret: str | None = _var(
        "SLACK_SIGNING_SECRET", None, "Slack app signing secret for /slack/interactions.",
        secret=True)
    slack_channel: str | None = _var(
        "SLACK_CHANNEL", None, "Channel id or name Podium posts to.")
    slack_team_id: str | None = _var(
        "SLACK_TEAM_ID", None,
        "Slack workspace id (T...); when set, clicks from any other workspace are refused.")
    slack_webhook_url: str | None = _var(
        "SLACK_WEBHOOK_URL", None, "Incoming-webhook URL: notifications only, no buttons.",
        secret=True)
    slack_api_url: str = _var(
        "PODIUM_SLACK_API_URL", "https://slack.com/api/",
        "Slack Web API base URL (a fake server in tests).")
    notify_max_backoff_s: float = _var(
        "PODIUM_NOTIFY_MAX_BACKOFF", 60.0,
        "Longest wait in seconds between two tries of an undelivered notification.")
    public_url: str | None = _var(
        "PODIUM_PUBLIC_URL", None, "Public base URL of this Podium, used in links.")
    # --- GitLab -----------------------------------------------------------------------
    gitlab_url: str | None = _var("GITLAB_URL", None, "GitLab base URL.")
    gitlab_token: str | None = _var(
        "GITLAB_TOKEN", None, "GitLab token with api scope (merge-request notes).",
        secret=True)
    gitlab_project_id: str | None = _var("GITLAB_PROJECT_ID", None, "GitLab project id.")
    gitlab_trigger_token: str | None = _var(
        "GITLAB_TRIGGER_TOKEN", None, "Pipeline trigger token for deploy pipelines.",
        secret=True)
    # --- jobs -------------------------------------------------------------------------
    job_lease_s: int = _var(
        "PODIUM_JOB_LEASE", 60, "Seconds a claimed job stays leased without a heartbeat.")
    job_max_attempts: int = _var(
        "PODIUM_JOB_MAX_ATTEMPTS", 6, "Attempts before a failing job is marked dead.")
    job_backoff_s: float = _var(
        "PODIUM_JOB_BACKOFF", 2.0, "First retry delay in seconds; doubles each attempt.")
    worker_poll_s: float = _var(
        "PODIUM_WORKER_POLL", 0.5, "Seconds an idle worker waits before looking again.")
    reconcile_interval_s: int = _var(
        "PODIUM_RECONCILE_INTERVAL", 60, "Seconds between registry reconciliation scans.")
    approval_check_interval_s: int = _var(
        "PODIUM_APPROVAL_CHECK_INTERVAL", 60,
        "Seconds between two looks for approvals past the policy's expiry.")
    # --- the alias that means "please promote me" -------------------------------------
    challenger_alias: str = _var(
        "PODIUM_CHALLENGER_ALIAS", "challenger", "Alias that requests Production when set.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every declared variable from ``environ`` (default: ``os.environ``)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.metadata["env"], raw, type(f.default)
                                      if f.default is not None else str)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def secrets(self) -> list[str]:
        """Values that must never reach a log line or a child process."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata["secret"] and getattr(self, f.name)]


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind in (int, float):
            return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    return raw


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting, secrets' defaults shown as-is (None)."""
    return [(f.metadata["env"], repr(f.default), f.metadata["doc"])
            for f in dataclasses.fields(Settings)]


SECRET_ENV_VARS = tuple(f.metadata["env"] for f in dataclasses.fields(Settings)
                        if f.metadata["secret"])
