"""Monitoring trends as inline SVG (pure functions: data in, one ``<svg>`` string out): realised
ROC AUC per version and period with its interval and the champion's moves marked, PSI per
feature over time, predicted against observed churn rate, and intervals side by side (each
shadow's live gain over the champion). Every text from outside is
escaped; no data gives a small chart that says so. No script, no external resource."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 46, 130, 26, 34
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")

Series = dict[str, list[float | None]]  # name -> one value (or None) per x label


def line_chart(title: str, xs: Sequence[str], series: Series, *, y_range=(0.0, 1.0),
               intervals: dict[str, list] | None = None, markers: Sequence[tuple] = (),
               threshold: float | None = None, y_format: str = "{:.2f}") -> str:
    """One chart: ``xs`` are ordered labels; ``intervals[name][i]`` an optional (lo, hi);
    ``markers`` (x label, text) draw a dashed vertical line; ``threshold`` a dashed
    horizontal one."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not xs or not values:
        return _svg(title, [_text(W / 2, H / 2, "no data yet", anchor="middle",
                                  cls="empty")])
    lo = min(y_range[0], *values, *([threshold] if threshold is not None else []))
    hi = max(y_range[1], *values, *([threshold] if threshold is not None else []))
    lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 1e-9 else (lo, hi)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (pw / 2 if len(xs) == 1 else pw * i / (len(xs) - 1))

    def y(v: float) -> float:
        return TOP + ph * (hi - v) / (hi - lo)

    parts = [f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" '
             'stroke="#999"/>']
    for v in _ticks(lo, hi):
        parts += [f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{LEFT + pw}" y2="{y(v):.1f}" '
                  'stroke="#eee"/>', _text(LEFT - 4, y(v) + 4, y_format.format(v),
                                           anchor="end")]
    step = max(1, math.ceil(len(xs) / 6))
    for i, label in enumerate(xs):  # x labels, thinned
        if i % step == 0 or i == len(xs) - 1:
            parts.append(_text(x(i), TOP + ph + 16, label, anchor="middle"))
    if threshold is not None:
        parts.append(f'<line x1="{LEFT}" y1="{y(threshold):.1f}" x2="{LEFT + pw}" '
                     f'y2="{y(threshold):.1f}" stroke="#d62728" stroke-dasharray="4 3"/>')
    merged: dict[str, list[str]] = {}
    for label, text in markers:  # one line per x label, its texts joined
        if label in xs:
            merged.setdefault(label, []).append(text)
    for label, texts in merged.items():
        i = list(xs).index(label)
        px, last = x(i), i == len(xs) - 1 and len(xs) > 1
        parts += [f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{TOP + ph}" '
                  'stroke="#555" stroke-dasharray="2 3"/>',
                  _text(px - 3 if last else px + 3, TOP + 9, ", ".join(texts),
                        anchor="end" if last else "start", cls="marker")]
    for n, (name, vs) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        parts += _series(name, vs, (intervals or {}).get(name), colour, xs, x, y, y_format)
        ly = TOP + 14 * n + 6
        parts += [f'<rect x="{W - RIGHT + 10}" y="{ly - 8}" width="10" height="10" '
                  f'fill="{colour}"/>', _text(W - RIGHT + 24, ly + 1, name)]
    return _svg(title, parts)


def interval_rows(title: str, rows: Sequence[tuple[str, float, float, float]], *,
                  bound: float = 0.0, empty: str = "no data yet") -> str:
    """One horizontal interval per row: (label, estimate, low, high), on a shared axis with
    zero and ``bound`` (dashed) marked; ``empty`` when there are no rows."""
    if not rows:
        return _svg(title, [_text(W / 2, 60, empty, anchor="middle", cls="empty")], height=90)
    height = TOP + 26 * len(rows) + BOTTOM
    ends = [v for _, d, lo, hi in rows for v in (d, lo, hi)] + [0.0, bound]
    lo, hi = min(ends), max(ends)
    pad = (hi - lo) * 0.08 or 0.01
    lo, hi = lo - pad, hi + pad
    left, width = 190, W - 190 - 20

    def x(v: float) -> float:
        return left + width * (v - lo) / (hi - lo)

    bottom = height - BOTTOM + 6
    parts = [f'<line x1="{x(0):.1f}" y1="{TOP}" x2="{x(0):.1f}" y2="{bottom}" stroke="#999"/>',
             _text(x(0), bottom + 12, "0", anchor="middle")]
    if bound != 0.0:
        parts += [f'<line x1="{x(bound):.1f}" y1="{TOP}" x2="{x(bound):.1f}" y2="{bottom}" '
                  'stroke="#d62728" stroke-dasharray="4 3"/>',
                  _text(x(bound), bottom + 12, f"{bound:+g}", anchor="middle")]
    for n, (label, d, low, high) in enumerate(rows):
        colour, cy = COLOURS[n % len(COLOURS)], TOP + 26 * n + 14
        tip = f"{label}: {d:+.4f} ({low:+.4f} to {high:+.4f})"
        parts += [_text(left - 8, cy + 4, label, anchor="end"),
                  f'<line x1="{x(low):.1f}" y1="{cy}" x2="{x(high):.1f}" y2="{cy}" '
                  f'stroke="{colour}" stroke-width="4" stroke-opacity="0.5"/>',
                  f'<circle cx="{x(d):.1f}" cy="{cy}" r="4" fill="{colour}">'
                  f"<title>{escape(tip)}</title></circle>",
                  _text(x(high) + 4, cy + 4, f"{d:+.3f}")]
    return _svg(title, parts, height=height)


def _ticks(lo: float, hi: float) -> list[float]:
    """Round values between ``lo`` and ``hi``, 3 to 6 of them."""
    raw = (hi - lo) / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _series(name, vs, bands, colour, xs, x, y, y_format) -> list[str]:
    parts, run = [], []
    for i, v in enumerate(list(vs) + [None]):  # a None breaks the line
        if v is None:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                             f'points="{" ".join(run)}"/>')
            run = []
            continue
        run.append(f"{x(i):.1f},{y(v):.1f}")
        band = bands[i] if bands and i < len(bands) else None
        if band:
            parts.append(f'<line x1="{x(i):.1f}" y1="{y(band[0]):.1f}" x2="{x(i):.1f}" '
                         f'y2="{y(band[1]):.1f}" stroke="{colour}" stroke-opacity="0.5"/>')
        tip = f"{name} {xs[i]}: {y_format.format(v)}" + (
            f" ({y_format.format(band[0])} to {y_format.format(band[1])})" if band else "")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                     f"<title>{escape(tip)}</title></circle>")
    return parts


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}>'
            f"{escape(str(text))}</text>")


def _svg(title: str, parts: list[str], *, height: int = H) -> str:
    t = escape(title)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" '
            f'height="{height}" role="img" aria-label="{t}" font-family="sans-serif" '
            f'font-size="10"><title>{t}</title>'
            f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{t}</text>'
            + "".join(parts) + "</svg>")
