"""Text a model or a person controls, made safe to keep and to show.

``clean(text)`` strips control characters (newlines and tabs stay), replaces every secret
value Podium knows with ``[redacted]`` and caps the length with a visible ellipsis. It is
applied where such text enters the store (a request's reason, comment and history lines,
store/transition_requests.py) and again where each channel renders it (Slack blocks,
GitLab notes, the web page, tags), so a secret learnt after the text was stored is hidden
too. ``redact`` replaces secrets only.

The secrets are the process's settings' (``Settings.secrets()``), given once at start by
``use`` (services.build); ``use`` also makes every log record pass through ``redact``
(a record factory: whichever logger or handler, the message and any traceback are
scrubbed before a handler sees them). Values shorter than ``MIN_SECRET`` characters are
not scrubbed: replacing ``"abc"`` everywhere would garble text and reveal the value.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_SECRET = 8
LIMIT = 1000
ELLIPSIS = "…"
# C0 and C1 controls except \t and \n, DEL, and the bidirectional overrides and isolates
# (text that reads differently from what it holds)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_pattern: re.Pattern[str] | None = None
_factory_installed = False


def use(secrets: Iterable[str | None]) -> None:
    """The secret values to scrub from now on (replacing the previous ones), and log
    records scrubbed of them."""
    global _secrets, _pattern
    found = sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True)
    with _lock:
        _secrets = tuple(found)
        _pattern = re.compile("|".join(map(re.escape, found))) if found else None
    _install_log_scrubbing()


def known() -> tuple[str, ...]:
    return _secrets


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``[redacted]``."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None and text else text


def cap(text: str, limit: int = LIMIT) -> str:
    """At most ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[:max(0, limit - 1)] + ELLIPSIS


def clean(text: object, limit: int = LIMIT) -> str:
    """Controls stripped, secrets redacted, length capped (in that order: a secret split by
    a control character is still found, and a cut never leaves half a secret behind)."""
    if text is None:
        return ""
    return cap(redact(_CONTROL.sub("", str(text))), limit)


def maybe(text: str | None, limit: int = LIMIT) -> str | None:
    """``clean`` that keeps None (and an empty string) as it is."""
    return clean(text, limit) if text else text


def _install_log_scrubbing() -> None:
    """Wrap the log record factory once: each record's message (arguments merged) and
    traceback pass through ``redact`` before any filter, handler or formatter."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _pattern is None:
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return record
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info))
                                     .rstrip("\n"))
        return record

    logging.setLogRecordFactory(factory)
