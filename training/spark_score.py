"""``podium score --engine spark``: the local engine's batch inference, on Spark.

The same rules as ``training.score``: each partition is validated by ``training.data.check``
(a row that fails goes to the rejects with the same reasons, never scored), the valid rows
are scored by ``mlflow.pyfunc.spark_udf`` (the model's ``predict_proba``, class 1), the output
has the local engine's columns (the row as read, ``churn_probability``, ``churn_prediction``,
``model_version``), and the executors write the inference log in its layout
(``model=/version=/date=/<batch id>-<part>.parquet``, each part under a hidden name until the
driver has seen every part finish). The batch's summary (rows, mean, flagged, deciles,
histogram) is added up from the parts' counts: only aggregates reach the driver. The
policy's shadows (``SparkShadow``) are scored in the same run, one job each on the
persisted valid rows: each on its share of them, by its own ``spark_udf`` in the executors
(no sandbox: the local engine's shadows run in sandboxes of their own), into its own log,
never into the output.

Spark writes the output (and the rejects) as a directory of part files at the given path,
Parquet when the path ends in ``.parquet``, else CSV with a header.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from training import data as churn_data
from training.score import THRESHOLD, ScoreReport
from training.spark_io import read_text

if TYPE_CHECKING:
    from training.inference_log import InferenceLog

_REASON = "__podium_reject"
_SCORE = "__podium_score"


@dataclass(frozen=True)
class SparkShadow:
    """A version scored in shadow in the Spark pass: its model (loaded by ``spark_udf`` in
    the executors, as the champion is), its log (role shadow) and its ``max_share``."""

    model_uri: str
    log: InferenceLog
    max_share: float = 1.0


def _raw(i: int) -> str:
    return f"__podium_raw_{i}"


def _typed_schema():
    """The typed features as Spark types (``to_typed``'s numbers are doubles)."""
    from pyspark.sql import types as T

    sample, _ = churn_data.generate(2, seed=0)
    _, typed = churn_data.check(sample.astype(str), require_target=False)
    return [T.StructField(c, T.DoubleType() if typed[c].dtype.kind == "f"
                          else T.StringType()) for c in churn_data.FEATURES]


def _validator(columns: list[str]):
    """mapInPandas: each batch checked; the raw text, the typed features and the reasons."""

    def check(batches):
        import numpy as np
        import pandas as pd

        from training.score import _reasons

        for raw in batches:
            raw = raw.reset_index(drop=True)
            problems, typed = churn_data.check(raw, require_target=False)
            bad = _reasons(problems, 2)
            reason = pd.Series([bad.get(i) for i in range(len(raw))], dtype=object)
            out = pd.DataFrame({_raw(i): raw[c] for i, c in enumerate(columns)})
            for c in churn_data.FEATURES:
                values = typed[c]
                out[c] = values.astype(np.float64) if values.dtype.kind == "f" \
                    else values.astype(object).where(values.notna(), None)
            out[_REASON] = reason
            yield out

    return check


def _log_writer(root: str, log_args: dict):
    """mapInPandas: one part of the inference log per Spark partition; its counts out."""

    def write(batches):
        import json

        import pandas as pd
        from pyspark import TaskContext

        from training.inference_log import InferenceLog

        log = InferenceLog(root, part=TaskContext.get().partitionId(), **log_args)
        try:
            for frame in batches:
                if len(frame):
                    log.write(log.entries(frame, frame[_SCORE].to_numpy()))
            partial = log.close_part()
        except BaseException:
            log.abort()
            raise
        yield pd.DataFrame({"partial": [partial], "counts": [json.dumps(log.counts())]})

    return write


def score_spark(spark, model_uri: str, source: str, output_path: str | Path, *,
                model_version: str, rejects_path: str | Path | None = None,
                log: InferenceLog | None = None, log_root: str | None = None,
                shadows: Sequence[SparkShadow] = (), warn=print) -> ScoreReport:
    """Score every valid row of ``source`` (a file, a directory or a catalog table) with the
    model at ``model_uri`` into ``output_path``; ``log`` (opened by the caller, with
    ``log_root`` its root) gets the batch, written by the executors. Each of ``shadows``
    scores its share of the same valid rows into its own log (opened by the caller), never
    into the output; a shadow that fails is said (``warn``) and logs nothing, and scoring
    goes on. ``DataError`` when the input lacks columns; ``InputError`` when it cannot be
    read."""
    import mlflow.pyfunc
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    started = time.perf_counter()
    output_path = Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else output_path.with_name(
        output_path.stem + ".rejects" + (".parquet" if _is_parquet(output_path) else ".csv"))
    text = read_text(spark, source)
    columns = text.columns
    missing = [c for c in churn_data.FEATURES if c not in columns]
    if missing:
        raise churn_data.DataError([churn_data.Problem(None, c, "missing column")
                                    for c in missing], source)
    schema = T.StructType([T.StructField(_raw(i), T.StringType()) for i in range(len(columns))]
                          + _typed_schema() + [T.StructField(_REASON, T.StringType())])
    checked = text.mapInPandas(_validator(columns), schema).persist(
        StorageLevel.MEMORY_AND_DISK)
    try:
        predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="array<double>",
                                          env_manager="local")
        valid = checked.where(F.col(_REASON).isNull())
        scored = valid.withColumn(_SCORE, predict(*[F.col(c) for c in churn_data.FEATURES])
                                  .getItem(1)).persist(StorageLevel.MEMORY_AND_DISK)
        out = scored.select(*[F.col(_raw(i)).alias(c) for i, c in enumerate(columns)],
                            F.col(_SCORE).alias("churn_probability"),
                            (F.col(_SCORE) >= THRESHOLD).cast("byte").alias("churn_prediction"),
                            F.lit(model_version).alias("model_version"))
        _write(out, output_path)
        rejects = checked.where(F.col(_REASON).isNotNull()).select(
            *[F.col(_raw(i)).alias(c) for i, c in enumerate(columns)],
            F.col(_REASON).alias("reject_reason"))
        rejected = rejects.count()
        if rejected:
            _write(rejects, rejects_path)
        if log is not None:
            _write_log(scored.select(F.col(_raw(columns.index(churn_data.ID)))
                                     .alias(churn_data.ID), _SCORE), log, log_root or "")
        scored_rows = scored.count()
        shadow_started = time.perf_counter()
        shadow_rows = tuple(_shadow(spark, scored, shadow, columns, log_root or "", warn)
                            for shadow in shadows)
        shadow_seconds = time.perf_counter() - shadow_started
        scored.unpersist()
    finally:
        with contextlib.suppress(Exception):  # a dead context: the error above is the news
            checked.unpersist()
    return ScoreReport(scored_rows + rejected, scored_rows, rejected,
                       time.perf_counter() - started, str(output_path),
                       str(rejects_path) if rejected else None, shadow_rows, shadow_seconds)


def _shadow(spark, scored, shadow: SparkShadow, columns: list[str], root: str, warn) -> int:
    """One shadow's pass over the champion's valid rows: its ``max_share`` of them (the ids
    ``training.score.sampled`` picks, as the local engine does) scored by its own
    ``spark_udf`` and written to its log; the rows it logged (0 when it failed)."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from training.spark_io import first_line

    share = shadow.max_share

    @F.pandas_udf("boolean")
    def in_share(ids):
        import pandas as pd

        from training.score import sampled

        return pd.Series(sampled(ids, share))

    ids = F.col(_raw(columns.index(churn_data.ID)))
    rows = scored if share >= 1.0 else scored.where(in_share(ids))
    try:
        predict = mlflow.pyfunc.spark_udf(spark, shadow.model_uri, result_type="array<double>",
                                          env_manager="local")
        frame = rows.select(ids.alias(churn_data.ID), predict(
            *[F.col(c) for c in churn_data.FEATURES]).getItem(1).alias(_SCORE))
        _write_log(frame, shadow.log, root)
    except Exception as exc:  # noqa: BLE001  (a shadow never stops production scoring)
        warn(f"shadow {shadow.model_uri}: stopped, nothing of it logged: {first_line(exc)}")
        return 0
    return int(shadow.log.counts()["rows"])


def _write_log(scored, log: InferenceLog, root: str) -> None:
    """The executors write the batch's parts; the driver moves them in place and adds up
    their counts (on failure, removes the parts written)."""
    import json

    args = {"model": log.model, "version": log.version, "run_id": log.run_id,
            "threshold": log.threshold, "batch_id": log.batch_id, "now": log.scored_at,
            "role": log.role}
    parts_schema = "partial string, counts string"
    try:
        parts = scored.mapInPandas(_log_writer(root, args), parts_schema).collect()
    except BaseException:
        _remove_parts(log)
        raise
    for row in parts:
        log.absorb(json.loads(row["counts"]))
    log.close_parts([r["partial"] for r in parts if r["partial"]],
                    f"{log.dir}/{log.batch_id}-*.parquet")


def _remove_parts(log: InferenceLog) -> None:
    import pyarrow.fs as pafs

    for info in log.fs.get_file_info(pafs.FileSelector(log.dir, allow_not_found=True)):
        if Path(info.path).name.lstrip(".").startswith(log.batch_id):
            log.fs.delete_file(info.path)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _write(frame, path: Path) -> None:
    writer = frame.write.mode("overwrite")
    if _is_parquet(path):
        writer.parquet(str(path))
    else:
        writer.option("header", True).option("escape", '"') \
            .option("ignoreLeadingWhiteSpace", False) \
            .option("ignoreTrailingWhiteSpace", False).csv(str(path))
