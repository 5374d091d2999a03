"""One pass over a channel of the outbox, shared by the Slack and GitLab senders.

One process at a time holds the channel's lease. It is renewed before each row, and only
while it has not expired: a sender that stalled past its lease (slow sends, a paused
process) may have been replaced, and what it read is stale, so its pass ends before the next
row. A single send must therefore stay shorter than the lease. Rows go in id order; the
first transient failure ends the pass with a backoff, so nothing overtakes a message that
waits; a permanent failure is tried ``permanent_attempts`` times, then the row is ``dead``
and the pass goes on. ``send(row)`` returns (where it went, an optional follow-up row to
emit in the transaction that marks the row sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from webhook_server import contract
from webhook_server.core import logs, tracing
from webhook_server.store import Store, leases
from webhook_server.store import outbox as ob

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A send that did not go through. ``refused``: the receiver answered and refused, so
    nothing was delivered and the next attempt need not look for an earlier one."""

    def __init__(self, message: str, permanent: bool = False,
                 retry_after_s: float | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s
        self.refused = refused


Send = Callable[[dict[str, Any]], tuple[str | None, dict | None]]


def drain(store: Store, *, channel: str, owner: str, send: Send, limit: int,
          max_backoff_s: float, permanent_attempts: int, lease_s: float = 60) -> dict[str, int]:
    done = {"sent": 0, "retry": 0, "dead": 0}
    with store.read() as conn:  # idle passes read only: no write every poll
        rows = ob.next_batch(conn, channel, limit)
    if not rows or not ob.due(rows[0]):
        return done
    if not _hold(store, channel, owner, lease_s, leases.acquire):
        return done
    with store.read() as conn:  # what is pending now that the lease is ours
        rows = ob.next_batch(conn, channel, limit)
    for i, row in enumerate(rows):
        if not ob.due(row):
            break
        if i and not _hold(store, channel, owner, lease_s, leases.renew):
            log.warning("%s lost mid-pass; %s stops sending", contract.outbox_lease(channel),
                        owner)
            break
        try:
            with tracing.span(f"send {channel} {row['kind']}",
                              parent=tracing.extract(row.get("trace_context")),
                              attributes=tracing.attrs(request_id=row["request_id"],
                                                       outbox_key=row["key"],
                                                       attempt=row["attempts"] + 1)), \
                    logs.bind(request_id=row["request_id"]):
                result, follow_up = send(row)
        except Exception as exc:
            if not isinstance(exc, DeliveryError):  # e.g. MLflow unreachable: try again
                exc = DeliveryError(f"{type(exc).__name__}: {exc}")
            dead = exc.permanent and row["attempts"] + 1 >= permanent_attempts
            delay = exc.retry_after_s or min(max_backoff_s, 2.0 ** row["attempts"])
            with store.tx() as conn:
                ob.mark_failed(conn, row["id"], str(exc), delay, dead=dead,
                               delivered_nothing=exc.refused)
            if dead:
                log.error("%s notification %s dropped after %d attempt(s): %s", channel,
                          row["key"], row["attempts"] + 1, exc)
                done["dead"] += 1
                continue
            log.warning("%s notification %s not sent (%s); retrying in %.0f s", channel,
                        row["key"], exc, delay)
            done["retry"] += 1
            break  # keep the order
        with store.tx() as conn:
            ob.mark_sent(conn, row["id"], result)
            if follow_up:
                ob.emit(conn, channel=channel, **follow_up)
        done["sent"] += 1
    return done


def _hold(store: Store, channel: str, owner: str, lease_s: float,
          how: Callable[..., bool]) -> bool:
    """Take (``leases.acquire``) or renew (``leases.renew``) the channel's lease; False when
    it is not ours, or could not be written: not sending is always safe, the row waits for
    the next pass."""
    try:
        with store.tx() as conn:
            return how(conn, contract.outbox_lease(channel), owner, lease_s)
    except Exception:  # e.g. another sender inserted the lease row at the same moment
        log.debug("%s lease contended", contract.outbox_lease(channel), exc_info=True)
        return False
