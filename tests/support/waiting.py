"""Waiting for an observable condition, with a deadline (never a bare sleep)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 30, what: str = "condition", poll: float = 0.1):
    """Poll an observable condition until it holds; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
