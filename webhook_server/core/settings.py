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
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from secrets import token_bytes
from typing import Any
from urllib.parse import unquote, urlsplit

from webhook_server.core.tokens import MIN_TOKEN_BITS, MIN_TOKEN_CHARS, token_weakness


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type, out of range, or the
    settings together cannot run safely."""


TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SANDBOXES = ("auto", "bwrap", "user", "process")
DAY = 24 * 3600
# an environment variable model code may never see (PODIUM_SANDBOX_ENV): these words...
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH",
                "PRIVATE", "DATABASE_URL", "DSN")
# ...or these prefixes (cloud credentials, the tracking server's credentials)
SECRET_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "MLFLOW_TRACKING_")


def _var(env: str, default: Any, doc: str, *, secret: bool = False, lo: float | None = None,
         hi: float | None = None, lo_open: bool = False,
         choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, repr=not secret, metadata={
        "env": env, "doc": doc, "secret": secret, "lo": lo, "hi": hi, "lo_open": lo_open,
        "choices": choices})


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
        "Sandboxes kept started ahead of requests (their imports take seconds).", lo=0,
        hi=64)

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
                                      if f.default is not None else str, f.metadata)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices and value not in choices:
                raise SettingsError(_not_a_choice(f.metadata["env"], value, choices))
        # parsed once (the file is read at start); never a field, so never in a repr
        object.__setattr__(self, "_tokens", _api_tokens(self))
        object.__setattr__(self, "_sandbox_env", _sandbox_env(self.sandbox_env))
        object.__setattr__(self, "_ui_proxies", _ui_proxies(self.ui_trusted_proxies))
        for name, limit in (("PODIUM_AUTH_LIMIT_PER_ADDRESS", self.auth_limit_per_address),
                            ("PODIUM_AUTH_LIMIT_TOTAL", self.auth_limit_total)):
            _rate_limit(name, limit)
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
            found += _url_password(url)
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


def _url_password(url: str | None) -> list[str]:
    """The password of ``scheme://user:password@host/...``, as written and decoded."""
    try:
        password = urlsplit(url or "").password
    except ValueError:
        return []
    return list(dict.fromkeys([password, unquote(password)])) if password else []


def _not_a_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    return f"{name}={value!r} is not one of {', '.join(choices)}"


def _convert(name: str, raw: str, kind: type, meta: Mapping[str, Any]) -> Any:
    if meta["choices"]:
        word = raw.strip().lower()
        if word not in meta["choices"]:
            raise SettingsError(_not_a_choice(name, raw, meta["choices"]))
        return word
    if kind is bool:
        word = raw.strip().lower()
        if word in TRUE | FALSE:
            return word in TRUE
        raise SettingsError(f"{name}={raw!r} is not a boolean (true/false, 1/0, yes/no, "
                            "on/off)")
    if kind not in (int, float):
        return raw
    shown = "(hidden)" if meta["secret"] else repr(raw)
    try:
        value = kind(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={shown} is not a valid {kind.__name__}") from None
    lo, hi = meta["lo"], meta["hi"]
    if not math.isfinite(value):
        raise SettingsError(f"{name}={shown} is not a finite number")
    if ((lo is not None and (value <= lo if meta["lo_open"] else value < lo))
            or (hi is not None and value > hi)):
        expected = " and ".join(
            ([f"{'>' if meta['lo_open'] else '>='} {_num(lo)}"] if lo is not None else [])
            + ([f"<= {_num(hi)}"] if hi is not None else []))
        raise SettingsError(f"{name}={shown} is out of range: expected {expected}")
    return value


def _api_tokens(s: Settings) -> dict[str, str]:
    """token -> name from the three sources; a malformed entry, a name used twice or a
    token given two names is a SettingsError (which never shows a token)."""
    named: list[tuple[str, str, str]] = []  # (name, token, where)
    if s.api_token:
        named.append(("default", s.api_token.strip(), "PODIUM_API_TOKEN"))
    if s.named_api_tokens:
        for i, entry in enumerate(s.named_api_tokens.split(","), 1):
            if not entry.strip():
                continue
            name, sep, token = entry.partition("=")
            if not sep:
                raise SettingsError(f"PODIUM_API_TOKENS entry {i} is not name=token")
            named.append((name.strip(), token.strip(), f"PODIUM_API_TOKENS entry {i}"))
    if s.api_tokens_file:
        path = Path(s.api_tokens_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"PODIUM_API_TOKENS_FILE={s.api_tokens_file!r} cannot be "
                                f"read ({type(exc).__name__})") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise SettingsError(f"PODIUM_API_TOKENS_FILE line {n}: expected 'name token'")
            named.append((parts[0], parts[1], f"PODIUM_API_TOKENS_FILE line {n}"))
    tokens: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, token, where in named:
        if not TOKEN_NAME.match(name):
            raise SettingsError(f"{where}: the name {name!r} is not a plain name (letters, "
                                "digits, _ . @ -)")
        if not token or any(c.isspace() for c in token):
            raise SettingsError(f"{where}: the token of {name!r} is empty or has spaces")
        if name in names:
            raise SettingsError(f"{where}: the name {name!r} is already used by "
                                f"{names[name]}")
        if token in tokens:
            raise SettingsError(f"{where}: {name!r} has the same token as "
                                f"{tokens[token]!r}: each token names one actor")
        names[name], tokens[token] = where, name
    return tokens


def _sandbox_env(raw: str | None) -> tuple[str, ...]:
    """The names ``PODIUM_SANDBOX_ENV`` allows; a malformed name, or one that looks like a
    secret (Podium's own, a token, a key, cloud or tracking credentials), is a
    SettingsError."""
    names: list[str] = []
    for entry in (raw or "").split(","):
        name = entry.strip()
        if not name:
            continue
        if not ENV_NAME.match(name):
            raise SettingsError(f"PODIUM_SANDBOX_ENV: {name!r} is not an environment variable "
                                "name (letters, digits and _, not starting with a digit)")
        upper = name.upper()
        if (upper in SECRET_ENV_VARS or any(word in upper for word in SECRET_WORDS)
                or upper.startswith(SECRET_PREFIXES)):
            raise SettingsError(f"PODIUM_SANDBOX_ENV: {name} looks like a secret; model code "
                                "never sees it")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _ui_proxies(raw: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
    """``PODIUM_UI_TRUSTED_PROXIES`` parsed; an entry that is not an address or a network
    is a SettingsError."""
    found = []
    for entry in (raw or "").split(","):
        if not (entry := entry.strip()):
            continue
        try:
            found.append(ip_network(entry, strict=False))
        except ValueError:
            raise SettingsError(f"PODIUM_UI_TRUSTED_PROXIES: {entry[:60]!r} is not an IP "
                                "address or network (e.g. 10.0.0.5, 10.0.0.0/24)") from None
        if found[-1].num_addresses > MAX_PROXY_ADDRESSES:
            raise SettingsError(
                f"PODIUM_UI_TRUSTED_PROXIES: {entry[:60]!r} covers "
                f"{found[-1].num_addresses} addresses, more than {MAX_PROXY_ADDRESSES} (/24 "
                "for IPv4, /120 for IPv6): anyone in it could name any person in the "
                "single-sign-on header; list your proxies' own addresses")
    return tuple(found)


MAX_PROXY_ADDRESSES = 256
LIMIT_STORAGES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _rate_limit(name: str, raw: str) -> None:
    from limits import parse_many

    try:
        if not parse_many(raw):
            raise ValueError
    except ValueError:
        raise SettingsError(f"{name}={raw[:80]!r} is not a rate limit (e.g. '10 per minute; "
                            "100 per hour')") from None


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, doc) for every setting, secrets' defaults shown as-is (None)."""
    return [(f.metadata["env"], repr(f.default), f.metadata["doc"])
            for f in dataclasses.fields(Settings)]


SECRET_ENV_VARS = tuple(f.metadata["env"] for f in dataclasses.fields(Settings)
                        if f.metadata["secret"])
