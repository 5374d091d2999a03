"""Every environment variable Podium reads, declared once.

Settings are read at start (``Settings.from_env()``) and passed down explicitly; nothing
else in the code base reads ``os.environ``. Values from the environment are checked: numbers
are finite and in range, booleans are one of true/false, 1/0, yes/no, on/off (any case), and
anything else is a ``SettingsError`` naming the variable; a setting with choices
(``PODIUM_SANDBOX``) is one of them (any case). Tests build ``Settings(...)`` directly
(unchecked ranges, e.g. a 0.3 s lease; choices and ``PODIUM_SANDBOX_ENV`` are still checked).

Model code sees only the environment variables ``PODIUM_SANDBOX_ENV`` allows
(``sandbox_env_names()``); a name that looks like a secret is refused at start.

API tokens: ``PODIUM_API_TOKENS`` (``name=token,name2=token2``), ``PODIUM_API_TOKENS_FILE``
(one ``name token`` a line, ``#`` comments) and ``PODIUM_API_TOKEN`` (the token named
``default``); ``api_tokens()`` maps each token to its name. No token reaches a repr or a log.

Each setting is a field declared with ``podium_policy.fields`` (the engine the policy file's
keys use: kind, range, choices, the documentation table); the environment's text is read
and the composite values parsed in ``settings_values``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from secrets import token_bytes
from typing import Any

from podium_policy.fields import key, table
from webhook_server.core.settings_values import (
    ENV_NAME,
    FALSE,
    LIMIT_STORAGES,
    MAX_PROXY_ADDRESSES,
    SECRET_PREFIXES,
    SECRET_WORDS,
    TOKEN_NAME,
    TRUE,
    SettingsError,
    api_tokens,
    from_text,
    not_a_choice,
    rate_limit,
    sandbox_env,
    ui_proxies,
    url_password,
)
from webhook_server.core.tokens import MIN_TOKEN_BITS, MIN_TOKEN_CHARS, token_weakness

SANDBOXES = ("auto", "bwrap", "user", "process")
DAY = 24 * 3600
_KINDS = {bool: "bool", int: "int", float: "float"}

__all__ = [  # the settings, and the words their values are read with (settings_values)
    "DAY", "ENV_NAME", "FALSE", "LIMIT_STORAGES", "MAX_PROXY_ADDRESSES", "SANDBOXES",
    "SECRET_ENV_VARS", "SECRET_PREFIXES", "SECRET_WORDS", "TOKEN_NAME", "TRUE", "Settings",
    "SettingsError", "describe",
]


def _var(env: str, default: Any, doc: str, **allowed: Any) -> Any:
    """A setting: its environment variable, default (whose type is its kind), meaning and
    allowed range (``lo``, ``hi``, ``lo_open``, ``choices``); a ``secret`` is kept out of
    the repr."""
    return key(_KINDS.get(type(default), "str"), default, doc, env=env, **allowed)


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
    inference_log: str = _var(
        "PODIUM_INFERENCE_LOG", "inference-log",
        "Where `podium score` logs each batch's predictions (Parquet, partitioned "
        "model=/version=/date=) and `podium labels` reads them: a directory (relative to the "
        "working directory) or any pyarrow filesystem URI (s3://, gs://, hdfs://).")
    spark_driver_memory: str = _var(
        "PODIUM_SPARK_DRIVER_MEMORY", "4g",
        "Heap ceiling of the driver JVM of a local Spark session (--engine spark with a "
        "local[...] master, where the executors run inside the driver): a JVM size such as "
        "512m, 4g or 16g (a maximum, not an allocation); a session from the environment "
        "(spark-submit, Databricks Connect) keeps its own.")
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
        "Bearer token for /api/v1, acting as api:default; with no token at all the API "
        "answers 401 to everything.", secret=True)
    named_api_tokens: str | None = _var(
        "PODIUM_API_TOKENS", None,
        "Named bearer tokens for /api/v1: name=token,name2=token2; a request with a token "
        "acts as api:<name>.", secret=True)
    api_tokens_file: str | None = _var(
        "PODIUM_API_TOKENS_FILE", None,
        "File of named API tokens, one 'name token' a line (# comments); read at start.")
    signature_tolerance_s: int = _var(
        "PODIUM_SIGNATURE_TOLERANCE", 300,
        "Largest allowed distance in seconds between a delivery's timestamp and now "
        "(1..3600).", lo=0, lo_open=True, hi=3600)
    max_body_bytes: int = _var(
        "PODIUM_MAX_BODY_BYTES", 1024 * 1024, "Largest accepted request body (413 above).",
        lo=1024, hi=256 * 1024 * 1024)
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
        "Longest wait in seconds between two tries of an undelivered notification.",
        lo=0, lo_open=True, hi=DAY)
    public_url: str | None = _var(
        "PODIUM_PUBLIC_URL", None, "Public base URL of this Podium, used in links.")
    # --- the web page (/ui/) ----------------------------------------------------------
    ui_trusted_header: str = _var(
        "PODIUM_UI_TRUSTED_HEADER", "X-Forwarded-Email",
        "Header a single-sign-on proxy (oauth2-proxy...) names the person in (e.g. "
        "X-Forwarded-Email, X-Forwarded-User); honoured only from PODIUM_UI_TRUSTED_PROXIES.")
    ui_trusted_proxies: str | None = _var(
        "PODIUM_UI_TRUSTED_PROXIES", None,
        "Comma-separated addresses or CIDRs of the proxies whose PODIUM_UI_TRUSTED_HEADER is "
        "believed; unset: the header is ignored and only the API-token login works.")
    ui_secret: str | None = _var(
        "PODIUM_UI_SECRET", None,
        "Key that signs the web page's session cookies and CSRF tokens; the same on every "
        "node. Unset: a random key per `podium serve` (sessions end at restart).",
        secret=True)
    ui_session_hours: float = _var(
        "PODIUM_UI_SESSION_HOURS", 12.0,
        "Hours a web page login (API-token login) lasts (at most 720: 30 days).",
        lo=0, lo_open=True, hi=24 * 30)
    # --- auth hardening (issue 25) ----------------------------------------------------
    auth_limit_per_address: str = _var(
        "PODIUM_AUTH_LIMIT_PER_ADDRESS", "10 per minute; 100 per hour",
        "Failed logins and failed API tokens allowed per client address (flask-limiter "
        "syntax, ';'-separated); past it 429 with Retry-After. Right tokens never count.")
    auth_limit_total: str = _var(
        "PODIUM_AUTH_LIMIT_TOTAL", "100 per minute; 1000 per hour",
        "Failed logins and failed API tokens allowed in total, all addresses together.")
    ratelimit_storage_uri: str | None = _var(
        "PODIUM_RATELIMIT_STORAGE_URI", None,
        "Where failed attempts are counted: unset is memory:// (per process); with several "
        "processes or nodes set redis://host:6379/0 so they share one count.", secret=True)
    metrics_token: str | None = _var(
        "PODIUM_METRICS_TOKEN", None,
        "Bearer token /metrics requires when set (401 without it); unset: /metrics is open.",
        secret=True)
    log_format: str = _var(
        "PODIUM_LOG_FORMAT", "auto",
        "Log lines as json (one object a line: level, logger, message, request_id, model, "
        "version, delivery_id, job_id, node, trace_id) or text; auto: text on a terminal, "
        "json otherwise. Read by every podium command at start.",
        choices=("auto", "json", "text"))
    # --- GitLab -----------------------------------------------------------------------
    gitlab_url: str | None = _var("GITLAB_URL", None, "GitLab base URL.")
    gitlab_token: str | None = _var(
        "GITLAB_TOKEN", None, "GitLab token with api scope (merge-request notes).",
        secret=True)
    gitlab_project_id: str | None = _var("GITLAB_PROJECT_ID", None, "GitLab project id.")
    gitlab_allowed_projects: str | None = _var(
        "GITLAB_ALLOWED_PROJECTS", None,
        "Comma-separated project ids or paths a version's gitlab.project_id tag may name "
        "besides GITLAB_PROJECT_ID (any other project gets no note).")
    gitlab_trigger_token: str | None = _var(
        "GITLAB_TRIGGER_TOKEN", None, "Pipeline trigger token for deploy pipelines.",
        secret=True)
    # --- jobs -------------------------------------------------------------------------
    job_lease_s: int = _var(
        "PODIUM_JOB_LEASE", 60,
        "Seconds a claimed job stays leased without a heartbeat (5..86400).", lo=5, hi=DAY)
    leader_lease_s: int = _var(
        "PODIUM_LEADER_LEASE", 60,
        "Seconds the scheduler's lease and each outbox sender's lease (one process each "
        "across all nodes) last without renewal: a killed holder is replaced within about "
        "this long (5..86400; a single Slack or GitLab send must take less).", lo=5, hi=DAY)
    job_max_attempts: int = _var(
        "PODIUM_JOB_MAX_ATTEMPTS", 6, "Attempts before a failing job is marked dead.", lo=1,
        hi=1000)
    job_backoff_s: float = _var(
        "PODIUM_JOB_BACKOFF", 2.0, "First retry delay in seconds; doubles each attempt.",
        lo=0, lo_open=True, hi=DAY)
    worker_poll_s: float = _var(
        "PODIUM_WORKER_POLL", 0.5, "Seconds an idle worker waits before looking again.",
        lo=0, lo_open=True, hi=3600)
    reconcile_interval_s: int = _var(
        "PODIUM_RECONCILE_INTERVAL", 60, "Seconds between registry reconciliation scans.",
        lo=0, lo_open=True, hi=DAY)
    approval_check_interval_s: int = _var(
        "PODIUM_APPROVAL_CHECK_INTERVAL", 60,
        "Seconds between two looks for approvals past the policy's expiry.",
        lo=0, lo_open=True)
    live_check_interval_s: int = _var(
        "PODIUM_LIVE_CHECK_INTERVAL", 900,
        "Seconds between two looks at the live evidence of requests in shadowing "
        "(policy comparison.live): each look queues the request's job.",
        lo=0, lo_open=True, hi=DAY)
    prune_after_days: int = _var(
        "PODIUM_PRUNE_AFTER_DAYS", 0,
        "Once a day, prune deliveries, sent or dead notifications and finished jobs older "
        "than this many days (`podium prune`; audit rows and the ledger are kept). 0: never.",
        lo=0)
    max_input_bytes: int = _var(
        "PODIUM_MAX_INPUT_BYTES", 16 << 30,
        "Largest file `podium labels`, `score`, `drift` and `train` read (bytes).", lo=1)
    # --- the alias that means "please promote me" -------------------------------------
    challenger_alias: str = _var(
        "PODIUM_CHALLENGER_ALIAS", "challenger", "Alias that requests Production when set.")
    # --- the sandbox of model code --------------------------------------------------------
    sandbox: str = _var(
        "PODIUM_SANDBOX", "auto",
        "Isolation of model code: auto (bubblewrap if it works here, else a separate user "
        "when root, else process), bwrap, user, process (weakest).", choices=SANDBOXES)
    sandbox_memory_mb: int = _var(
        "PODIUM_SANDBOX_MEMORY_MB", 4096,
        "Memory limit of a model's sandbox, MB: each process's address space and, in the "
        "sandbox's cgroup, all of its processes together (no swap).", lo=256, hi=1 << 20)
    sandbox_pids: int = _var(
        "PODIUM_SANDBOX_PIDS", 256,
        "Most processes and threads a model's sandbox may hold together (its cgroup).",
        lo=16, hi=65536)
    sandbox_cpu_shares: int = _var(
        "PODIUM_SANDBOX_CPU_SHARES", 512,
        "CPU share of a model's sandbox under contention (cgroup cpu.shares: 1024 is an "
        "ordinary process's).", lo=2, hi=262144)
    sandbox_cgroup_root: str = _var(
        "PODIUM_SANDBOX_CGROUP_ROOT", "/sys/fs/cgroup",
        "Where the cgroup filesystems are mounted: each sandbox gets a cgroup of its own "
        "below Podium's own; none writable: per-process limits only (said at start).")
    sandbox_cpu_s: int = _var(
        "PODIUM_SANDBOX_CPU_S", 600, "CPU-time limit of a model's sandbox, seconds.", lo=1,
        hi=DAY)
    sandbox_timeout_s: float = _var(
        "PODIUM_SANDBOX_TIMEOUT", 300.0,
        "Wall-clock limit of one call into a model's sandbox (load, one scoring), seconds; "
        "past it the sandbox is killed.", lo=0, lo_open=True, hi=DAY)
    sandbox_user: str = _var(
        "PODIUM_SANDBOX_USER", "nobody",
        "Unprivileged user model code runs as under the 'user' isolation (when Podium runs "
        "as root without bubblewrap).")
    sandbox_env: str | None = _var(
        "PODIUM_SANDBOX_ENV", None,
        "Comma-separated names of extra environment variables model code may see (an "
        "allow-list; Podium's own secrets are refused).")
    sandbox_spares: int = _var(
        "PODIUM_SANDBOX_SPARES", 2,
        "Sandboxes kept started ahead of requests (their imports take seconds); a worker "
        "with more job threads keeps one per thread (0: none).", lo=0, hi=64)
    sandbox_zygote: bool = _var(
        "PODIUM_SANDBOX_ZYGOTE", True,
        "With bubblewrap, fork each model's sandbox from one warm zygote (the imports once; "
        "each fork in namespaces of its own inside the zygote's bubblewrap) instead of "
        "starting a Python per sandbox (seconds of CPU each).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every declared variable from ``environ`` (default: ``os.environ``)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            values[f.name] = from_text(f.metadata["env"], raw, f.metadata)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices and value not in choices:
                raise SettingsError(not_a_choice(f.metadata["env"], value, choices))
        # parsed once (the file is read at start); never a field, so never in a repr
        object.__setattr__(self, "_tokens", api_tokens(
            self.api_token, self.named_api_tokens, self.api_tokens_file))
        object.__setattr__(self, "_sandbox_env", sandbox_env(self.sandbox_env, SECRET_ENV_VARS))
        object.__setattr__(self, "_ui_proxies", ui_proxies(self.ui_trusted_proxies))
        for name, limit in (("PODIUM_AUTH_LIMIT_PER_ADDRESS", self.auth_limit_per_address),
                            ("PODIUM_AUTH_LIMIT_TOTAL", self.auth_limit_total)):
            rate_limit(name, limit)
        if not re.fullmatch(r"[1-9][0-9]*[kmgt]?", self.spark_driver_memory.lower()):
            raise SettingsError(f"PODIUM_SPARK_DRIVER_MEMORY={self.spark_driver_memory!r} is "
                                "not a JVM memory size (e.g. 512m, 4g, 16g)")
        if (self.ratelimit_storage_uri or "memory://").split("://")[0] not in LIMIT_STORAGES:
            raise SettingsError("PODIUM_RATELIMIT_STORAGE_URI (value hidden) is not memory:// "
                                "nor redis://host:port/db (rediss://, redis+sentinel://, "
                                "redis+cluster://)")
        # one random key per Settings when none is set: `podium serve` builds its settings
        # once, before gunicorn forks, so its workers share the key
        object.__setattr__(self, "_ui_key", (self.ui_secret or "").encode()
                           or token_bytes(32))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def api_tokens(self) -> dict[str, str]:
        """token -> name of every API token (``PODIUM_API_TOKEN`` is named ``default``)."""
        return dict(self._tokens)  # type: ignore[attr-defined]

    def sandbox_env_names(self) -> tuple[str, ...]:
        """The environment variables model code may see besides the sandbox's own
        (``PODIUM_SANDBOX_ENV``, checked at start: no name that looks like a secret)."""
        return self._sandbox_env  # type: ignore[attr-defined]

    def ui_proxies(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """The networks whose ``PODIUM_UI_TRUSTED_HEADER`` is believed (none: ignored)."""
        return self._ui_proxies  # type: ignore[attr-defined]

    def ui_key(self) -> bytes:
        """The key of the web page's sessions: ``PODIUM_UI_SECRET``, else random (see
        ``ui_key_is_random``)."""
        return self._ui_key  # type: ignore[attr-defined]

    @property
    def ui_key_is_random(self) -> bool:
        return not self.ui_secret

    def secrets(self) -> list[str]:
        """Values that must never reach a log line, a message or a child process: every
        secret setting, each API token, and the passwords in the database and tracking
        URLs (webhook_server/core/scrub.py scrubs them from model and user text)."""
        found = [getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.metadata["secret"] and getattr(self, f.name)]
        for url in (self.database_url, self.mlflow_tracking_uri):
            found += url_password(url)
        return list(dict.fromkeys([*found, *self.api_tokens()]))

    def refusals(self) -> list[str]:
        """Why ``podium serve`` / ``podium worker`` must not start with these settings
        (one line each; the policy is checked separately)."""
        out = []
        if self.slack_signing_secret and not self.slack_team_id:
            out.append("SLACK_SIGNING_SECRET is set (Slack approvals) but SLACK_TEAM_ID is "
                       "not: set the workspace id (T...) so clicks from any other workspace "
                       "are refused")
        for token, name in self.api_tokens().items():
            if (weak := token_weakness(token)) is not None:
                out.append(f"the API token named {name!r} is too weak ({weak}): use at least "
                           f"{MIN_TOKEN_CHARS} characters and {MIN_TOKEN_BITS} bits, e.g. "
                           "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if ((self.ratelimit_storage_uri or "").startswith("redis")
                and importlib.util.find_spec("redis") is None):
            out.append("PODIUM_RATELIMIT_STORAGE_URI names Redis but the redis package is not "
                       "installed: pip install 'limits[redis]'")
        if self.metrics_token and (weak := token_weakness(self.metrics_token)) is not None:
            out.append(f"PODIUM_METRICS_TOKEN is too weak ({weak}): use at least "
                       f"{MIN_TOKEN_CHARS} characters and {MIN_TOKEN_BITS} bits")
        return out


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting, secrets' defaults shown as-is (None)."""
    return table(Settings, "env")


SECRET_ENV_VARS = tuple(f.metadata["env"] for f in dataclasses.fields(Settings)
                        if f.metadata["secret"])
