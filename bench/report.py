"""One table of every benchmark figure, its target and its ratio, from the JSON files the
benchmarks write (bench/results/{intake,scoring,decision}.json); written again as
bench/results/latest.json so two runs can be compared. `make bench` runs the benchmarks,
then this.

    python bench/report.py
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    """(measure, figure, target, met) for each figure found."""
    out = []
    d = _load("decision")
    if d:
        for level, r in d["latency"].items():
            out.append((f"decision latency, {level} (median of {r['requests']})",
                        f"{r['median_s']:.2f} s, {r['x_floor']:.1f}x floor {d['floor_s']:.2f} s",
                        "<= 2.0 s and <= 3x floor",
                        _met(r["median_s"] <= 2.0 and r["x_floor"] <= 3)))
            out.append((f"decision latency p95, {level}", f"{r['p95_s']:.2f} s", "<= 3 s",
                        _met(r["p95_s"] <= 3)))
            outcomes = r.get("outcomes", {})
            promoted = outcomes.get("promoted", 0)
            out.append((f"decisions promoted, {level}", f"{promoted}/{r['requests']}",
                        "every one (the figure includes a promotion)",
                        _met(promoted == r["requests"])))
        bursts = d.get("throughput") or {}
        if "requests" in bursts:  # a result written before the zygote: one burst
            bursts = {bursts.get("isolation", "?"): bursts}
        for level, t in bursts.items():
            against = "".join(f"; {k[:-2]} does {v:.2f}x as many" for k, v in t.items()
                              if k.endswith("_x"))
            out.append((f"decision throughput, {level} ({t['requests']} over "
                        f"{t['models']} models)",
                        f"{t['decisions_per_minute']:.0f}/min, {t['x_burst_floor']:.1f}x "
                        f"{t['requests']} x floor{against}", ">= 30/min",
                        _met(t["decisions_per_minute"] >= 30)))
    s = _load("scoring")
    if s:
        for r in s["runs"]:
            out.append((f"scoring {r['rows']:,} rows {r['format']} (chunk {r['chunk_rows']:,})",
                        f"{r['ratio']:.2f}x bare ({r['podium_rows_per_s']:,} rows/s), "
                        f"peak {r['peak_rss_mb']} MB", ">= 0.9x, memory bounded",
                        _met(r["ratio"] >= 0.9)))
    i = _load("intake")
    if i:
        for name, r in i["runs"].items():
            if name == "bare_flask":
                out.append(("intake, bare Flask (baseline)", f"{r['rate']:,.0f}/s, p99 "
                            f"{r['p99_ms']:.1f} ms", "(baseline)", ""))
                continue
            if "sqlite" in name:  # and no worse than 1,132/s (idle cores, 2026-11-27)
                target = ">= 2,000/s, p99 <= 25 ms, >= 0.5x; not below 1,132/s"
                met = r["p99_ms"] <= 25 and r["ratio"] >= 0.5 and r["rate"] >= 2000
                if r["rate"] < 1132:
                    target += " (WORSE)"
            else:  # PostgreSQL, one node or several (issue 32)
                target = ">= 1,000/s, p99 <= 25 ms"
                met = r["rate"] >= 1000 and r["p99_ms"] <= 25
            out.append((f"intake, {name.replace('_', ' ')}", f"{r['rate']:,.0f}/s, p99 "
                        f"{r['p99_ms']:.1f} ms, {r['ratio']:.2f}x", target, _met(met)))
    return out


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main() -> int:
    table = rows()
    if not table:
        print("no results in bench/results/: run the benchmarks first (make bench)")
        return 1
    widths = [max(len(r[i]) for r in table + [("measure", "figure", "target", "")])
              for i in range(4)]
    for r in [("measure", "figure", "target", "")] + table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    latest = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "rows": [dict(zip(("measure", "figure", "target", "met"), r, strict=True))
                       for r in table],
              "raw": {n: _load(n) for n in ("decision", "scoring", "intake")}}
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
