"""``podium labels``: outcomes joined to the logged predictions (``training.labels``) and
stored one per prediction (one per version that predicted the customer: the champion's and
each shadow's), chunk by chunk, each chunk in its own transaction. Loading the same file again
stores nothing new (the keys are the prediction's batch and customer, and the outcome and
version)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
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


def load_labels_spark(store: Store, spark, model: str, input_path: str, log_root: str, *,
                      rejects_path: str | Path | None = None, chunk_rows: int = 100_000,
                      now: datetime | None = None,
                      progress: Callable[[int], None] | None = None) -> LabelReport:
    """``load_labels`` with the join in Spark (``training.spark_labels``): the joined rows
    reach the driver a partition at a time and are stored ``chunk_rows`` at a time, never
    splitting one outcome's rows (an undated outcome's versions are judged together); the
    rejects are written by Spark (a directory of part files at the rejects path)."""
    from training.spark_labels import LINE, join

    started = time.perf_counter()
    rejects_path = Path(rejects_path) if rejects_path else default_rejects(input_path)
    cached: list = []
    try:
        total, joined, rejected = join(spark, input_path, log_root, model, now, cached=cached)
        bad = _write_rejects(rejected.orderBy(LINE).drop(LINE), rejects_path)
        stored = new = 0
        chunk: list[dict] = []
        for row in joined.orderBy(LINE, "version").toLocalIterator(prefetchPartitions=True):
            if len(chunk) >= chunk_rows and row[LINE] != chunk[-1]["line"]:
                found, added = _store(store, model, chunk)
                stored, new, chunk = stored + found, new + added, []
                if progress:
                    progress(stored)
            chunk.append(_record(model, row, LINE))
        found, added = _store(store, model, chunk)
        stored, new = stored + found, new + added
    finally:
        for frame in cached:
            frame.unpersist()
    return LabelReport(total, stored, new, bad, time.perf_counter() - started,
                       str(rejects_path) if bad else None)


def _write_rejects(rejected, path: Path) -> int:
    """Spark writes the rejected rows (a directory of parts) at ``path``; how many. With
    none, an earlier load's rejects there are removed."""
    from training.spark_score import _write

    rejected = rejected.persist()
    try:
        bad = rejected.count()
        if bad:
            _write(rejected, path)
        elif (path / "_SUCCESS").is_file():  # an earlier load's: not this one's
            shutil.rmtree(path)
    finally:
        rejected.unpersist()
    return bad


def _store(store: Store, model: str, chunk: list[dict]) -> tuple[int, int]:
    """(labels kept, labels new) of one chunk, stored in one transaction."""
    if not chunk:
        return 0, 0
    records_ = [{k: v for k, v in r.items() if k != "line"} for r in chunk]
    with store.tx() as conn:
        found = rows.undated_once(conn, model, records_)
        return len(found), rows.add_labels(conn, found)


def _record(model: str, row, line: str) -> dict:
    def at(micros: int) -> datetime:
        return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(
            microsecond=micros % 1_000_000)

    return {"model": model, "version": str(row["version"]), "batch_id": row["batch_id"],
            "customer_id": row["customer_id"], "churn": int(row["churn"]),
            "score": float(row["score"]), "scored_at": at(row["scored_at"]),
            "observed_at": at(row["observed_at_us"]), "outcome": row["outcome"],
            "line": row[line]}


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
