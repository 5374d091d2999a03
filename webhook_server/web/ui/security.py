"""Who is asking, and whether a form is genuine (no Flask here: plain values in and out).

- Behind a single-sign-on proxy: the header ``PODIUM_UI_TRUSTED_HEADER`` names the person,
  believed only when ``PODIUM_UI_TRUSTED_PROXIES`` is set and the connection comes from one
  of those addresses (anyone else can send the header too).
- Locally: a login with an API token. The (signed) cookie carries only a random session
  id; the store (``store/sessions.py``) keeps its SHA-256 with the token's name, an HMAC of
  the token (never the token) and the expiry: logout, expiry and ``podium sessions revoke``
  end it on every node, and a token removed from the settings ends its sessions.
- The actor is ``ui:<name>``; the policy's ``people`` map it to a person.
- CSRF: a random token per session, in every form, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from ipaddress import ip_address
from secrets import token_urlsafe
from urllib.parse import urlsplit

from webhook_server.core.settings import Settings
from webhook_server.store import sessions

# a user name or an e-mail address: what oauth2-proxy's X-Forwarded-User/-Email carry
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+@-]{0,199}$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


class BadIdentity(Exception):
    """A trusted proxy sent a header that names nobody usable (answered 400)."""


@dataclass(frozen=True)
class UiState:
    """Per app: HMAC of each API token -> its name."""

    key: bytes
    digests: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> UiState:
        key = settings.ui_key()
        return cls(key, {digest(key, token): name
                         for token, name in settings.api_tokens().items()})


def digest(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def from_proxy(settings: Settings, remote_addr: str | None,
               headers: Mapping[str, str]) -> str | None:
    """The name in the trusted header, when the connection comes from a trusted proxy."""
    proxies = settings.ui_proxies()
    if not proxies or not remote_addr:
        return None
    try:
        addr = ip_address(remote_addr)
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    if not any(a in net for net in proxies for a in (addr, mapped) if a is not None
               and a.version == net.version):
        return None
    value = headers.get(settings.ui_trusted_header)
    if value is None or not value.strip():
        return None
    if not NAME.match(value.strip()):
        raise BadIdentity(f"the {settings.ui_trusted_header} header from the single-sign-on "
                          "proxy is not a plain user name or e-mail address")
    return value.strip()


def from_session(state: UiState, store, session: Mapping) -> str | None:
    """The token login's name while its session lives in the store (not logged out, not
    revoked, not past ``PODIUM_UI_SESSION_HOURS`` from the login) and its token is still
    configured."""
    session_id = session.get("sid")
    if not isinstance(session_id, str) or not 32 <= len(session_id) <= 64:
        return None
    with store.read() as conn:
        found = sessions.find(conn, session_id)
    if found is None:
        return None
    known = state.digests.get(found.token_digest)
    if known is not None and hmac.compare_digest(known, found.name):
        return found.name
    return None


def identify(settings: Settings, state: UiState, request, session: Mapping,
             store) -> str | None:
    """``ui:<name>`` of whoever asks, or None."""
    name = from_proxy(settings, request.remote_addr, request.headers)
    name = name or from_session(state, store, session)
    return f"ui:{name}" if name else None


def check_token(state: UiState, offered: str) -> tuple[str, str] | None:
    """(name, digest) of the API token ``offered``, compared with every token."""
    found = None
    mine = digest(state.key, offered)
    for known, name in state.digests.items():
        if hmac.compare_digest(known, mine):
            found = (name, known)
    return found


def csrf_token(session: MutableMapping) -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = session["csrf"] = token_urlsafe(32)
    return token


def csrf_ok(session: Mapping, form: Mapping[str, str]) -> bool:
    expected, offered = session.get("csrf"), form.get("csrf_token") or ""
    return (isinstance(expected, str) and len(expected) >= 32 and bool(offered)
            and hmac.compare_digest(expected.encode(), offered.encode("utf-8", "replace")))


def same_site_form(headers: Mapping[str, str], host: str, public_url: str | None) -> bool:
    """Whether the browser says this POST comes from a page of this site. The CSRF token
    sits in the session cookie, and a sibling subdomain can plant cookies: so a form whose
    ``Sec-Fetch-Site`` is not ``same-origin`` or whose ``Origin`` names another host is
    refused whatever its token (a client that sends neither header, like curl, still needs
    the token). Hosts are compared without the scheme: a TLS proxy in front changes it."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("Origin")
    if origin is None:
        return True
    allowed = {host.lower()}
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return urlsplit(origin).netloc.lower() in allowed


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path under /ui/ of this site, nothing else."""
    target = (target or "").rstrip("?")
    if (target.startswith("/ui/") and not target.startswith("/ui//") and "\\" not in target
            and not any(ord(c) < 0x20 for c in target)):
        return target
    return "/ui/"
