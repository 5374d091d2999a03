"""One measurement of bench/scoring.py, run in a fresh interpreter so that its peak resident
memory is its own: ``python -m bench.scoring_child MODE MODEL INPUT OUTPUT CHUNK_ROWS``.

- ``score``: ``training.score.score_file`` (read, validate, score, write) of INPUT into OUTPUT;
- ``bare``: the model's ``predict_proba`` on the same rows, one chunk of CHUNK_ROWS rows at a
  time, typed and held in memory before its clock starts (reading and typing are not timed).

Prints one JSON object: rows, seconds, the memory before the measurement (interpreter, imports
and model: the floor) and the peak resident set of the whole process (``VmHWM``, which counts
the native allocations of LightGBM and Arrow that tracemalloc misses).
"""

from __future__ import annotations

import json
import pickle
import resource
import sys
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise KeyError(field)


def _score(model, src: Path, dst: Path, chunk_rows: int) -> dict:
    from training.score import score_file

    report = score_file(lambda X: model.predict_proba(X)[:, 1], src, dst,
                        model_version="bench", chunk_rows=chunk_rows)
    return {"rows": report.rows, "scored": report.scored, "rejected": report.rejected,
            "seconds": report.seconds}


def _bare(model, src: Path, chunk_rows: int) -> dict:
    from training.data import FEATURES, to_typed
    from training.score import read_chunks

    rows, seconds, chunk_mb = 0, 0.0, 0.0
    for raw in read_chunks(src, chunk_rows):
        X = to_typed(raw)[list(FEATURES)]
        chunk_mb = max(chunk_mb, X.memory_usage(deep=True).sum() / 1e6)
        t = time.perf_counter()
        model.predict_proba(X)[:, 1]
        seconds += time.perf_counter() - t
        rows += len(X)
        del X, raw
    return {"rows": rows, "scored": rows, "rejected": 0, "seconds": seconds,
            "typed_chunk_mb": chunk_mb}


def main(argv: list[str]) -> None:
    mode, model_path, src, dst, chunk_rows = argv
    import training.data  # noqa: F401  (the imports podium score makes, before the floor)
    import training.score  # noqa: F401

    with open(model_path, "rb") as f:
        model = pickle.load(f)  # noqa: S301  (written by bench/scoring.py in this run)
    floor, floor_hwm = _status_mb("VmRSS"), _status_mb("VmHWM")
    if mode == "score":
        out = _score(model, Path(src), Path(dst), int(chunk_rows))
    elif mode == "bare":
        out = _bare(model, Path(src), int(chunk_rows))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    out.update(floor_rss_mb=floor, floor_hwm_mb=floor_hwm, peak_rss_mb=_status_mb("VmHWM"),
               ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
