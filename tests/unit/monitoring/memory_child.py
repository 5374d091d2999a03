"""A large `podium labels` run in a fresh interpreter, for its peak memory:
``python -m tests.unit.monitoring.memory_child ROWS CHUNK_ROWS WORKDIR``.

Logs ROWS predictions (in slices, as `podium score` would), writes ROWS outcomes, loads them
into a SQLite store in chunks of CHUNK_ROWS, and prints JSON: the rows stored, the resident
set before the load (after the imports and the files: the floor) and the load's peak (VmHWM,
reset before the load).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

SLICE = 50_000


def _mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _write(rows: int, work: Path) -> None:
    import numpy as np
    import pandas as pd

    from training.inference_log import InferenceLog

    rng = np.random.default_rng(1)
    when = datetime(2026, 6, 1, tzinfo=UTC)
    with InferenceLog(str(work / "log"), model="churn", version="1", now=when) as log, \
            open(work / "outcomes.csv", "w") as out:
        out.write("customerID,Churn,observed_at\n")
        for start in range(0, rows, SLICE):
            ids = [f"c{i:09d}" for i in range(start, min(rows, start + SLICE))]
            scores = rng.random(len(ids))
            log.write(log.entries(pd.DataFrame({"customerID": ids}), scores))
            churn = np.where(rng.random(len(ids)) < scores, "Yes", "No")
            pd.DataFrame({"customerID": ids, "Churn": churn,
                          "observed_at": "2026-06-20"}).to_csv(out, header=False, index=False)


def main(rows: int, chunk_rows: int, work: Path) -> None:
    from webhook_server.monitoring.labels import load_labels
    from webhook_server.store import Store

    _write(rows, work)
    store = Store(f"sqlite:///{work / 'podium.db'}")
    store.migrate()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here: the load's own peak
    floor = _mb("VmRSS")
    report = load_labels(store, "churn", work / "outcomes.csv", str(work / "log"),
                         chunk_rows=chunk_rows)
    store.dispose()
    print(json.dumps({"stored": report.new, "rejected": report.rejected, "floor_mb": floor,
                      "peak_mb": _mb("VmHWM")}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
