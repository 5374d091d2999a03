"""How strong a secret token is: ``podium serve`` and ``podium worker`` refuse to start
with an API token (or ``PODIUM_METRICS_TOKEN``) shorter than 32 characters, of fewer than 8
distinct characters, or estimated under 128 bits (``token_bits``). Nothing here shows a
token."""

from __future__ import annotations

import math

MIN_TOKEN_CHARS, MIN_TOKEN_BITS, MIN_TOKEN_DISTINCT = 32, 128, 8
# character classes and their sizes: the alphabet of a token is the sum over the classes
# it uses (printable ASCII punctuation is 32 characters; anything else counts as 32 too)
TOKEN_CLASSES = ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10))


def token_bits(token: str) -> float:
    """Estimated entropy of a token: length x log2(alphabet), the alphabet being the sum of
    the sizes of the character classes it uses (lower 26, upper 26, digits 10, others 32).
    ``secrets.token_urlsafe(32)`` (43 characters: letters, digits, - and _) estimates ~280 bits."""
    pool = 0
    for test, size in TOKEN_CLASSES:
        if any(test(c) and c.isascii() for c in token):
            pool += size
    if any(not (c.isascii() and c.isalnum()) for c in token):
        pool += 32
    return len(token) * math.log2(pool) if pool else 0.0


def token_weakness(token: str) -> str | None:
    """Why ``token`` is too weak to guard Podium (never showing it), or None."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"{len(token)} characters"
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return f"only {len(set(token))} distinct characters"
    if (bits := token_bits(token)) < MIN_TOKEN_BITS:
        return f"about {bits:.0f} bits"
    return None
