"""PSI of the scores per version and period (``podium monitor``'s ``psi`` column): every
prediction the inference log holds for a version in a period (champion and shadow batches)
against the prediction distribution of the version's training reference (the profile
training logs, ``reference/profile.json``, as ``podium drift`` reads it), in that
reference's bins (``training.profile``: a score goes to the bin of the number of inner edges
at or below it; a missing score to the last bucket).

Two engines count the bins, the rest is shared: ``local_counts`` scans the log with pyarrow a
few batches at a time (memory: one batch and the counts), ``spark_counts`` groups it in Spark
(only the counts reach the driver). Equal counts give equal PSI, to the last digit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Reference = Callable[[str], dict[str, Any] | None]  # version -> {"edges", "share"} or None
Counts = dict[tuple[str, str], np.ndarray]  # (version, period) -> counts per bin


def psi_of(counts: Counts, reference: Reference) -> dict[tuple[str, str], float | None]:
    """``{(version, period): PSI}`` (None for a version without a reference)."""
    from training.profile import psi

    refs: dict[str, dict | None] = {}
    out: dict[tuple[str, str], float | None] = {}
    for (version, label), n in sorted(counts.items()):
        if version not in refs:
            refs[version] = reference(version)
        ref = refs[version]
        out[(version, label)] = None if ref is None or not n.sum() else psi(
            ref["share"], list(n / n.sum()))
    return out


def local_counts(log_root: str, model: str, period: str, reference: Reference) -> Counts:
    """The bin counts of every logged score of ``model``, per version and period."""
    import pandas as pd
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    from training.inference_log import PARTITIONS, SCHEMA, model_dir, open_root
    from webhook_server.monitoring.report import period_of

    fs, base = open_root(log_root)
    where = model_dir(base, model)
    if fs.get_file_info(where).type != pafs.FileType.Directory:
        return {}
    data = ds.dataset(where, schema=SCHEMA.append(PARTITIONS.field(0))
                      .append(PARTITIONS.field(1)), format="parquet", filesystem=fs,
                      partitioning=ds.partitioning(PARTITIONS, flavor="hive"))
    counts: Counts = {}
    edges_of: dict[str, np.ndarray | None] = {}
    for batch in data.to_batches(columns=["version", "scored_at", "score"], batch_size=1 << 20,
                                 batch_readahead=2, fragment_readahead=1):
        frame = batch.to_pandas()
        for (version, at), scores in frame.groupby(["version", "scored_at"])["score"]:
            if version not in edges_of:
                ref = reference(version)
                edges_of[version] = None if ref is None else np.asarray(ref["edges"], float)
            edges = edges_of[version]
            if edges is None:
                continue
            values = scores.to_numpy(dtype=float)
            finite = np.isfinite(values)
            n = np.bincount(np.searchsorted(edges, values[finite], side="right"),
                            minlength=len(edges) + 1)
            key = (version, period_of(pd.Timestamp(at).to_pydatetime(), period))
            cell = counts.setdefault(key, np.zeros(len(edges) + 2, np.int64))
            cell[:-1] += n
            cell[-1] += int((~finite).sum())
    return counts


def spark_counts(spark, log_root: str, model: str, period: str,
                 reference: Reference) -> Counts:
    """``local_counts`` computed by Spark over the same log."""
    from pyspark.sql import functions as F

    from training.spark_labels import read_log
    from webhook_server.monitoring.spark_figures import with_period

    log = read_log(spark, log_root, model)
    if log is None:
        return {}
    versions = [r["version"] for r in log.select("version").distinct().collect()]
    edges_of = {}
    for v in versions:
        ref = reference(v)
        if ref is not None:
            edges_of[v] = [float(e) for e in ref["edges"]]
    if not edges_of:
        return {}
    score = F.col("score")
    bins = None
    for v, edges in edges_of.items():
        inner = sum((score >= e).cast("int") for e in edges) if edges else F.lit(0)
        value = F.when(score.isNull() | F.isnan(score), len(edges) + 1).otherwise(inner)
        bins = (F if bins is None else bins).when(F.col("version") == v, value)
    rows = (with_period(log.where(F.col("version").isin(list(edges_of))), period)
            .groupBy("version", "period", bins.alias("bin")).count().collect())
    counts: Counts = {}
    for r in rows:
        cell = counts.setdefault((r["version"], r["period"]),
                                 np.zeros(len(edges_of[r["version"]]) + 2, np.int64))
        cell[r["bin"]] += r["count"]
    return counts


def psi_engine(reference: Reference | None, log_root: str, model: str, spark=None):
    """``report.build``'s ``psi``: period -> ``{(version, period): PSI}`` counted by Spark
    when ``spark`` is given, else locally; None without a reference source."""
    if reference is None:
        return None

    def run(period: str) -> dict[tuple[str, str], float | None]:
        counts = (spark_counts(spark, log_root, model, period, reference) if spark is not None
                  else local_counts(log_root, model, period, reference))
        return psi_of(counts, reference)

    return run


def reference_of(tracking_uri: str | None, model: str) -> Reference | None:
    """The ``prediction`` part of each version's training reference on the MLflow server at
    ``tracking_uri`` (None for a version without one); None without a server."""
    if not tracking_uri:
        return None
    from mlflow.exceptions import MlflowException

    from training.drift import read_reference
    from webhook_server.adapters.registry import mlflow_client

    client = mlflow_client(tracking_uri)

    def of(version: str) -> dict[str, Any] | None:
        try:
            run_id = client.get_model_version(model, version).run_id
            return read_reference(run_id, tracking_uri)["prediction"]
        except (MlflowException, OSError, KeyError):
            return None

    return of
