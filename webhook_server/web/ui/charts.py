"""Inline SVG charts, computed on the server: an interval against the decision bound.

``interval`` returns the geometry (pixel positions and labels); the template draws it with
classes only (no style attributes: the Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

import math

WIDTH, HEIGHT, PAD = 560, 84, 24


def _finite(*values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in values)


def interval(low, high, point, bound, *, label: str = "bound",
             fmt: str = "{:+.4f}") -> dict | None:
    """The interval ``[low, high]`` with ``point`` inside, the vertical line ``bound`` the
    lower end must clear, and zero. None when a number is missing."""
    if not _finite(low, high, point, bound):
        return None
    low, high = min(low, high), max(low, high)
    lo, hi = min(low, point, bound, 0.0), max(high, point, bound, 0.0)
    span = hi - lo or max(abs(hi), 1e-3)
    lo, hi = lo - 0.12 * span, hi + 0.12 * span

    def x(v: float) -> float:
        return round(PAD + (v - lo) / (hi - lo) * (WIDTH - 2 * PAD), 1)

    clears = low > bound
    return {
        "width": WIDTH, "height": HEIGHT, "axis_y": 36, "bar_y": 28, "bar_h": 16,
        "x_low": x(low), "x_high": x(high), "x_point": x(point), "x_bound": x(bound),
        "x_zero": x(0.0), "bar_w": max(round(x(high) - x(low), 1), 1.0),
        "low": fmt.format(low), "high": fmt.format(high), "point": fmt.format(point),
        "bound": f"{label} {fmt.format(bound)}", "clears": clears,
        "title": (f"interval {fmt.format(low)} to {fmt.format(high)}, estimate "
                  f"{fmt.format(point)}; {label} {fmt.format(bound)}: "
                  + ("the lower end clears it" if clears else "the lower end does not "
                                                               "clear it")),
        "anchor_low": "end" if x(low) > 60 else "start",
        "anchor_high": "start" if x(high) < WIDTH - 60 else "end",
    }
