"""A Spark batch that fails part-way leaves nothing a reader sees: the executors write their
parts under hidden names, only the driver moves them in place once every part has finished,
and on failure it removes what was written; the summary counts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.inference_log import InferenceLog, read_predictions
from training.spark_score import _SCORE, _write_log

pytestmark = pytest.mark.spark


def _frame(spark, fail_at: int | None):
    """3,000 scored customers in three partitions; the score of ``fail_at`` raises (in the
    last partition: the first two have written their parts by then, or are writing)."""
    from pyspark.sql import functions as F

    @F.udf("double")
    def score(i):
        if i == fail_at:
            raise ValueError(f"the model broke on row {i}")
        return i / 3000

    return spark.range(0, 3000, numPartitions=3).select(
        F.format_string("c%05d", "id").alias("customerID"), score("id").alias(_SCORE))


def _visible(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


def test_a_failed_spark_batch_leaves_no_visible_part_in_the_log(spark, tmp_path):
    root = tmp_path / "log"
    good = InferenceLog(str(root), model="churn", version="3", batch_id="good")
    _write_log(_frame(spark, None), good, str(root))
    assert len(_visible(root)) == 3 and good.counts()["rows"] == 3000  # the control

    failing = InferenceLog(str(root), model="churn", version="3", batch_id="failing")
    with pytest.raises(Exception, match="the model broke on row 2999"):
        _write_log(_frame(spark, 2999), failing, str(root))
    assert sorted(p.name for p in _visible(root)) == [f"good-{i:05d}.parquet" for i in range(3)]
    assert set(read_predictions(str(root), "churn").column("batch_id").to_pylist()) == {"good"}
    assert failing.counts()["rows"] == 0  # no summary of it reaches the store
