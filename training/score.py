"""Batch inference in chunks: read (CSV or Parquet), validate, score, write.

Memory is bounded by the chunk size, whatever the file size. Rows that fail validation go
to a rejects file (CSV, the row plus ``reject_reason``) and are counted, never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training import data as churn_data

THRESHOLD = 0.5


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    scored: int
    rejected: int
    seconds: float
    output: str
    rejects: str | None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of the input as strings (the validator's view of a CSV)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            yield frame.apply(_as_text)
        return
    yield from churn_data.read_raw(path, chunksize=chunk_rows)


def _as_text(column: pd.Series) -> pd.Series:
    if column.dtype.kind in "fi":
        text = column.map(lambda v: "" if pd.isna(v) else f"{v:g}" if column.dtype.kind == "f"
                          else str(v))
        return text.astype(object)
    return column.fillna("").astype(str)


class _Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._parquet = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if _is_parquet(self.path):
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        else:
            frame.to_csv(self.path, mode="w" if self._first else "a", header=self._first,
                         index=False)
        self._first = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif self._first:  # nothing written: still leave a file with the header
            self.path.write_text("")


def score_file(predict_proba: Callable[[pd.DataFrame], np.ndarray], input_path: str | Path,
               output_path: str | Path, *, model_version: str, chunk_rows: int = 100_000,
               rejects_path: str | Path | None = None,
               progress: Callable[[int], None] | None = None) -> ScoreReport:
    """Score every valid row of ``input_path`` into ``output_path``.

    ``predict_proba`` takes typed feature rows and returns the churn probability per row.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else output_path.with_name(
        output_path.stem + ".rejects.csv")
    started = time.perf_counter()
    out, rejects = _Writer(output_path), _Writer(rejects_path)
    rows = scored = rejected = 0
    try:
        for raw in read_chunks(input_path, chunk_rows):
            raw = raw.reset_index(drop=True)
            problems, typed = churn_data.check(raw, require_target=False,
                                               first_line=rows + 2)
            if typed is None:  # missing columns: the file is unusable
                raise churn_data.DataError(problems, str(input_path))
            bad = _reasons(problems, rows + 2)
            if bad:
                mask = np.zeros(len(raw), dtype=bool)
                mask[list(bad)] = True
                rej = raw[mask].copy()
                rej["reject_reason"] = [bad[i] for i in np.flatnonzero(mask)]
                rejects.write(rej)
                rejected += len(rej)
                raw, typed = raw[~mask], typed[~mask]
            if len(raw):
                proba = np.asarray(predict_proba(typed[list(churn_data.FEATURES)]))
                result = raw.copy()
                result["churn_probability"] = proba
                result["churn_prediction"] = (proba >= THRESHOLD).astype(np.int8)
                result["model_version"] = model_version
                out.write(result)
                scored += len(raw)
            rows += len(raw) + (len(bad) if bad else 0)
            if progress:
                progress(rows)
    finally:
        out.close()
        rejects.close()
    if not rejected:
        rejects_path.unlink(missing_ok=True)
    return ScoreReport(rows, scored, rejected, time.perf_counter() - started,
                       str(output_path), str(rejects_path) if rejected else None)


def _reasons(problems, first_line: int) -> dict[int, str]:
    """Row position in the chunk -> '; '-joined problems of that row."""
    out: dict[int, list[str]] = {}
    for p in problems:
        out.setdefault(p.line - first_line, []).append(f"{p.column}: {p.message}")
    return {i: "; ".join(msgs) for i, msgs in out.items()}


def load_predictor(model_uri: str) -> tuple[Callable[[pd.DataFrame], np.ndarray], str]:
    """The model's ``predict_proba`` for class 1, and the version the URI resolves to."""
    import mlflow

    model = mlflow.sklearn.load_model(model_uri)
    version = resolve_version(model_uri)
    return (lambda X: model.predict_proba(X)[:, 1]), version


def resolve_version(model_uri: str, client=None) -> str:
    """``models:/churn@champion`` -> ``"churn/3"``; other URIs are returned as they are.
    ``client``: an ``MlflowClient`` (default: one on this process's tracking URI)."""
    if not model_uri.startswith("models:/"):
        return model_uri
    from mlflow import MlflowClient

    ref = model_uri[len("models:/"):]
    client = client or MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{client.get_model_version_by_alias(name, alias).version}"
    if "/" in ref:
        return ref
    latest = max(client.search_model_versions(f"name = '{ref}'"), key=lambda v: int(v.version))
    return f"{ref}/{latest.version}"


def default_model_uri(model: str, alias: str = "champion", client=None) -> str:
    """``models:/<model>@<alias>`` when the alias exists, else the newest version's URI."""
    from mlflow import MlflowClient

    client = client or MlflowClient()
    try:
        client.get_model_version_by_alias(model, alias)
        return f"models:/{model}@{alias}"
    except Exception:  # no champion yet
        return f"models:/{resolve_version(f'models:/{model}', client)}"
