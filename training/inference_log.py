"""The inference log: what each scored batch predicted, as Parquet files partitioned
``model=<name>/version=<n>/date=<YYYY-MM-DD>/<batch id>.parquet`` under a directory or any
URI pyarrow's filesystems open (``s3://``, ``gs://``, ``hdfs://``, ``file://``). A row is a
customer id, the score, the version's run id, the batch id, the time of the batch and the
version's role in it: ``champion`` (its scores were the output) or ``shadow`` (scored beside
the champion on the same rows, for live evidence, never written out). Files written before
the role existed read as role null (champion).

``score_file(..., log=InferenceLog(...))`` writes it chunk by chunk beside the output, so
memory stays one chunk's ids and scores plus a fixed histogram (the batch's deciles are read
from 1,000 bins of 0.001). ``close()`` gives the batch's summary for the store; a batch that
fails is removed (``abort``), so the log never holds half a batch.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa

from training.data import ID

DEFAULT_ROOT = "inference-log"
SCHEMA = pa.schema([("customer_id", pa.string()), ("score", pa.float64()),
                    ("run_id", pa.string()), ("batch_id", pa.string()),
                    ("scored_at", pa.timestamp("us", tz="UTC")), ("role", pa.string())])
ROLES = ("champion", "shadow")
PARTITIONS = pa.schema([("version", pa.string()), ("date", pa.string())])
_BINS = 1000


@dataclass(frozen=True)
class BatchSummary:
    """One scored batch, as the store keeps it."""

    batch_id: str
    model: str
    version: str
    run_id: str | None
    scored_at: datetime
    rows: int
    mean_score: float | None  # the predicted churn rate
    flagged: int  # rows at or above ``threshold``
    threshold: float
    deciles: list[float] | None  # min, p10 ... p90, max (to 0.001)
    histogram: list[int]  # 10 equal-width bins of the score
    path: str
    role: str = "champion"  # or "shadow": scored beside the champion, never written out

    def as_json(self) -> dict:
        return {**asdict(self), "scored_at": self.scored_at.isoformat()}


def open_root(root: str):
    """(filesystem, base path) of a log root: a local directory (relative to the working
    directory) or any URI pyarrow opens."""
    from pathlib import Path

    import pyarrow.fs as pafs

    if "://" not in root:
        root = str(Path(root).resolve())
    fs, base = pafs.FileSystem.from_uri(root)
    return fs, base.rstrip("/")


def model_dir(base: str, model: str) -> str:
    return f"{base}/model={quote(model, safe='')}"


class InferenceLog:
    """The log of one batch scored by ``model`` ``version`` (a number, e.g. ``"3"``)."""

    def __init__(self, root: str, *, model: str, version: str, run_id: str | None = None,
                 threshold: float = 0.5, batch_id: str | None = None,
                 now: datetime | None = None, role: str = "champion",
                 part: int | None = None) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.model, self.version, self.run_id, self.threshold = model, version, run_id, threshold
        self.role = role
        self.batch_id = batch_id or uuid.uuid4().hex
        self.scored_at = (now or datetime.now(UTC)).astimezone(UTC)
        self.fs, base = open_root(root)
        self.dir = (f"{model_dir(base, model)}/version={quote(version, safe='')}"
                    f"/date={self.scored_at:%Y-%m-%d}")
        # ``part``: one of the batch's files, written by a Spark executor (``spark_score``)
        name = self.batch_id if part is None else f"{self.batch_id}-{part:05d}"
        self.path = f"{self.dir}/{name}.parquet"
        # written under a name readers skip (pyarrow ignores "." files), moved at close
        self._partial = f"{self.dir}/.{name}.parquet.partial"
        self._writer = None
        self._hist = np.zeros(_BINS, dtype=np.int64)
        self._rows, self._sum, self._flagged = 0, 0.0, 0
        self._lo, self._hi = np.inf, -np.inf
        self._summary: BatchSummary | None = None

    def entries(self, raw: pd.DataFrame, proba: np.ndarray) -> pa.Table:
        """The log rows of one scored chunk (``raw``: its rows as read)."""
        import pyarrow.compute as pc

        n = len(raw)
        ids = pc.utf8_trim_whitespace(pa.array(raw[ID].to_numpy(dtype=object), pa.string()))
        return pa.Table.from_arrays(
            [ids, pa.array(np.asarray(proba, dtype=np.float64)),
             pa.repeat(pa.scalar(self.run_id, pa.string()), n),
             pa.repeat(pa.scalar(self.batch_id, pa.string()), n),
             pa.repeat(pa.scalar(self.scored_at, SCHEMA.field("scored_at").type), n),
             pa.repeat(pa.scalar(self.role, pa.string()), n)],
            schema=SCHEMA)

    def write(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self.fs.create_dir(self.dir, recursive=True)
            self._writer = pq.ParquetWriter(self._partial, SCHEMA, filesystem=self.fs)
        self._writer.write_table(table)
        scores = table.column("score").to_numpy()
        if len(scores):
            self._rows += len(scores)
            self._sum += float(scores.sum())
            self._flagged += int((scores >= self.threshold).sum())
            self._lo, self._hi = min(self._lo, scores.min()), max(self._hi, scores.max())
            bins = np.clip((scores * _BINS).astype(np.int64), 0, _BINS - 1)
            self._hist += np.bincount(bins, minlength=_BINS)

    def close(self) -> BatchSummary:
        """Finish the file; the batch's summary."""
        if self._summary is None:
            if self._writer is not None:
                self._writer.close()
                self.fs.move(self._partial, self.path)
            self._summary = self._summarise()
        return self._summary

    def counts(self) -> dict:
        """What this log holds so far, for ``absorb`` in another process."""
        return {"rows": self._rows, "sum": self._sum, "flagged": self._flagged,
                "lo": float(self._lo) if self._rows else None,
                "hi": float(self._hi) if self._rows else None,
                "hist": [int(v) for v in self._hist]}

    def absorb(self, counts: dict) -> None:
        """Add the ``counts`` of rows another log wrote (a Spark executor's part)."""
        if counts["rows"]:
            self._rows += counts["rows"]
            self._sum += counts["sum"]
            self._flagged += counts["flagged"]
            self._lo, self._hi = min(self._lo, counts["lo"]), max(self._hi, counts["hi"])
            self._hist += np.asarray(counts["hist"], dtype=np.int64)

    def close_part(self) -> str | None:
        """Close a part's file, leaving it under its partial name (the driver moves the
        parts of a finished batch); that name, None when nothing was written."""
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        return self._partial

    def close_parts(self, partials: list[str], pattern: str) -> BatchSummary:
        """Finish a batch written in parts: move each part's file to its name, and the
        summary (``path``: the ``pattern`` that names the parts)."""
        for partial in sorted(partials):
            where, name = partial.rsplit("/", 1)
            self.fs.move(partial, f"{where}/{name.removeprefix('.').removesuffix('.partial')}")
        self.path = pattern if partials else ""
        self._summary = self._summarise(written=bool(partials))
        return self._summary

    def abort(self) -> None:
        """Remove what was written of a batch that failed."""
        if self._writer is not None and self._summary is None:
            self._writer.close()
            self._writer = None
            self.fs.delete_file(self._partial)

    def __enter__(self) -> InferenceLog:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def _summarise(self, written: bool | None = None) -> BatchSummary:
        n = self._rows
        deciles = None
        if n:
            cum = np.cumsum(self._hist)
            lo, hi = float(self._lo), float(self._hi)
            inner = [(int(np.searchsorted(cum, q * n / 10)) + 1) / _BINS for q in range(1, 10)]
            deciles = [round(v, 3) for v in (lo, *(min(max(v, lo), hi) for v in inner), hi)]
        return BatchSummary(
            self.batch_id, self.model, self.version, self.run_id, self.scored_at, n,
            self._sum / n if n else None, self._flagged, self.threshold, deciles,
            [int(v) for v in self._hist.reshape(10, -1).sum(axis=1)],
            self.path if (self._writer is not None if written is None else written) else "",
            self.role)


def read_predictions(root: str, model: str, customer_ids=None) -> pa.Table:
    """The logged predictions of ``model`` (every version and day), only those of
    ``customer_ids`` when given: columns customer_id, score, run_id, batch_id, scored_at,
    version, date. Empty when nothing was logged."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    fs, base = open_root(root)
    where = model_dir(base, model)
    if fs.get_file_info(where).type != pafs.FileType.Directory:
        return pa.Table.from_batches([], SCHEMA.append(PARTITIONS.field(0))
                                     .append(PARTITIONS.field(1)))
    data = ds.dataset(where, schema=SCHEMA.append(PARTITIONS.field(0))
                      .append(PARTITIONS.field(1)), format="parquet", filesystem=fs,
                      partitioning=ds.partitioning(PARTITIONS, flavor="hive"))
    wanted = None
    if customer_ids is not None:
        wanted = ds.field("customer_id").isin(pa.array(list(customer_ids), pa.string()))
    # a few batches in flight, whatever the log's size (the scan reads every file)
    return data.to_table(filter=wanted, batch_size=64_000, batch_readahead=2,
                         fragment_readahead=1)
