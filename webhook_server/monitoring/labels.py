"""``podium labels``: outcomes joined to the logged predictions (``training.labels``) and
stored one per prediction (one per version that predicted the customer: the champion's and
each shadow's), chunk by chunk, each chunk in its own transaction. Loading the same file again
stores nothing new (the keys are the prediction's batch and customer, and the outcome and
version)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from webhook_server.store import Store
from webhook_server.store import monitoring as rows


@dataclass(frozen=True)
class LabelReport:
    rows: int  # outcomes read
    joined: int  # labels: outcomes matched to a prediction, one per version that made one
    new: int  # stored now (the others were stored by an earlier load)
    rejected: int
    seconds: float
    rejects: str | None  # the rejects file, when a row was rejected

    def as_json(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def default_rejects(input_path: str | Path) -> Path:
    path = Path(input_path)
    return path.with_name(path.stem + ".rejects.csv")


def load_labels(store: Store, model: str, input_path: str | Path, log_root: str, *,
                rejects_path: str | Path | None = None, chunk_rows: int = 100_000,
                now: datetime | None = None,
                progress: Callable[[int], None] | None = None) -> LabelReport:
    """Join ``input_path``'s outcomes to ``model``'s predictions under ``log_root`` and store
    them. ``DataError`` when the file lacks the columns."""
    from training.labels import join_file
    from training.score_io import _Writer

    started = time.perf_counter()
    rejects_path = Path(rejects_path) if rejects_path else default_rejects(input_path)
    writer = _Writer(rejects_path)
    total = joined = new = rejected = 0
    try:
        for n, chunk, bad in join_file(input_path, log_root, model, chunk_rows=chunk_rows,
                                       now=now):
            if len(bad):
                writer.write(bad)
                rejected += len(bad)
            if len(chunk):
                with store.tx() as conn:
                    # an undated outcome judges the versions that scored before its first
                    # load, never one that scored after
                    found = rows.undated_once(conn, model, records(model, chunk))
                    new += rows.add_labels(conn, found)
                joined += len(found)
            total += n
            if progress:
                progress(total)
    finally:
        writer.close()
    if not rejected:
        rejects_path.unlink(missing_ok=True)
    return LabelReport(total, joined, new, rejected, time.perf_counter() - started,
                       str(rejects_path) if rejected else None)


def records(model: str, chunk: pd.DataFrame) -> list[dict]:
    """Joined outcomes as the store's rows (plain Python values)."""
    return [{"model": model, "version": str(v), "batch_id": b, "customer_id": c,
             "churn": int(y), "score": float(s), "scored_at": t.to_pydatetime(),
             "observed_at": o.to_pydatetime(), "outcome": k}
            for v, b, c, y, s, t, o, k in zip(chunk["version"].tolist(),
                                              chunk["batch_id"].tolist(),
                                              chunk["customer_id"].tolist(),
                                              chunk["churn"].tolist(), chunk["score"].tolist(),
                                              chunk["scored_at"], chunk["observed_at"],
                                              chunk["outcome"].tolist(), strict=True)]
