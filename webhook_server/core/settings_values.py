"""The settings' values: environment text read as a typed setting (``from_text``), and the
composite values ``Settings`` parses once at start: the API tokens, the names model code may
see (``PODIUM_SANDBOX_ENV``), the proxies whose single-sign-on header is believed, the
sign-in rate limits, and the passwords inside URLs. Every refusal is a ``SettingsError``
naming the variable, never a secret's value."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from podium_policy.fields import bounds_text, in_range


class SettingsError(ValueError):
    """An environment variable holds a value of the wrong type, out of range, or the
    settings together cannot run safely."""


TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# an environment variable model code may never see (PODIUM_SANDBOX_ENV): these words...
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH",
                "PRIVATE", "DATABASE_URL", "DSN")
# ...or these prefixes (cloud credentials, the tracking server's credentials)
SECRET_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_", "MLFLOW_TRACKING_")
MAX_PROXY_ADDRESSES = 256
LIMIT_STORAGES = ("memory", "redis", "rediss", "redis+sentinel", "redis+cluster")


def not_a_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    return f"{name}={value!r} is not one of {', '.join(choices)}"


def from_text(name: str, raw: str, meta: Mapping[str, Any]) -> Any:
    """The value of the variable ``name`` (its text ``raw``) as its field's metadata says:
    one of its choices (any case), a boolean, a finite number in range, or the text."""
    kind = meta["kind"]
    if meta["choices"]:
        word = raw.strip().lower()
        if word not in meta["choices"]:
            raise SettingsError(not_a_choice(name, raw, meta["choices"]))
        return word
    if kind == "bool":
        word = raw.strip().lower()
        if word in TRUE | FALSE:
            return word in TRUE
        raise SettingsError(f"{name}={raw!r} is not a boolean (true/false, 1/0, yes/no, "
                            "on/off)")
    if kind not in ("int", "float"):
        return raw
    shown = "(hidden)" if meta["secret"] else repr(raw)
    try:
        value = (int if kind == "int" else float)(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={shown} is not a valid {kind}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name}={shown} is not a finite number")
    if not in_range(value, meta):
        raise SettingsError(f"{name}={shown} is out of range: expected {bounds_text(meta)}")
    return value


def api_tokens(api_token: str | None, named_api_tokens: str | None,
               api_tokens_file: str | None) -> dict[str, str]:
    """token -> name from the three sources; a malformed entry, a name used twice or a
    token given two names is a SettingsError (which never shows a token)."""
    named: list[tuple[str, str, str]] = []  # (name, token, where)
    if api_token:
        named.append(("default", api_token.strip(), "PODIUM_API_TOKEN"))
    if named_api_tokens:
        for i, entry in enumerate(named_api_tokens.split(","), 1):
            if not entry.strip():
                continue
            name, sep, token = entry.partition("=")
            if not sep:
                raise SettingsError(f"PODIUM_API_TOKENS entry {i} is not name=token")
            named.append((name.strip(), token.strip(), f"PODIUM_API_TOKENS entry {i}"))
    if api_tokens_file:
        path = Path(api_tokens_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"PODIUM_API_TOKENS_FILE={api_tokens_file!r} cannot be "
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


def sandbox_env(raw: str | None, secret_vars: tuple[str, ...]) -> tuple[str, ...]:
    """The names ``PODIUM_SANDBOX_ENV`` allows; a malformed name, or one that looks like a
    secret (Podium's own, a token, a key, cloud or tracking credentials), is a
    SettingsError (``secret_vars``: Podium's own secret settings)."""
    names: list[str] = []
    for entry in (raw or "").split(","):
        name = entry.strip()
        if not name:
            continue
        if not ENV_NAME.match(name):
            raise SettingsError(f"PODIUM_SANDBOX_ENV: {name!r} is not an environment variable "
                                "name (letters, digits and _, not starting with a digit)")
        upper = name.upper()
        if (upper in secret_vars or any(word in upper for word in SECRET_WORDS)
                or upper.startswith(SECRET_PREFIXES)):
            raise SettingsError(f"PODIUM_SANDBOX_ENV: {name} looks like a secret; model code "
                                "never sees it")
        names.append(name)
    return tuple(dict.fromkeys(names))


def ui_proxies(raw: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
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


def rate_limit(name: str, raw: str) -> None:
    from limits import parse_many

    try:
        if not parse_many(raw):
            raise ValueError
    except ValueError:
        raise SettingsError(f"{name}={raw[:80]!r} is not a rate limit (e.g. '10 per minute; "
                            "100 per hour')") from None


def url_password(url: str | None) -> list[str]:
    """The password of ``scheme://user:password@host/...``, as written and decoded."""
    try:
        password = urlsplit(url or "").password
    except ValueError:
        return []
    return list(dict.fromkeys([password, unquote(password)])) if password else []
