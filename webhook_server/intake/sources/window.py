"""The timestamp window every source enforces: a delivery signed too long ago (a replay)
or too far ahead (a skewed or forged clock) is refused before its signature is trusted."""

from __future__ import annotations

from webhook_server.intake.sources.errors import STALE, SignatureError


def check_window(timestamp_s: float, now_s: float, tolerance_s: int, *,
                 message: str | None = None) -> None:
    """Refuse (``SignatureError``, reason ``STALE``) a ``timestamp_s`` more than
    ``tolerance_s`` seconds before or after ``now_s``.

    The message says which way: "timestamp too old (N s > T s)" or "timestamp too far in
    the future (N s)". A source with its own wording passes ``message``, a format string
    given ``skew`` (the distance in seconds, either way) and ``limit`` (the tolerance)."""
    skew = now_s - timestamp_s
    if skew > tolerance_s:
        raise SignatureError(
            f"timestamp too old ({int(skew)} s > {tolerance_s} s)" if message is None
            else message.format(skew=skew, limit=tolerance_s), STALE)
    if -skew > tolerance_s:
        raise SignatureError(
            f"timestamp too far in the future ({int(-skew)} s)" if message is None
            else message.format(skew=-skew, limit=tolerance_s), STALE)
