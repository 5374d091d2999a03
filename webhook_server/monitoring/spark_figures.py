"""``podium monitor --engine spark``: the realised figures of each version and period
(``realised.realised``) computed in Spark, so only aggregates reach Podium.

The ROC AUC and its DeLong interval need only counts per distinct score: with ``p(s)`` and
``q(s)`` the positives and negatives scored ``s`` in a group, a positive's placement is
``(negatives below s + q(s) / 2) / n`` and a negative's ``1 - (positives below s + p(s) / 2)
/ m`` (mid-ranks, as ``rankdata``). Spark counts per (group, score), runs the cumulative sums
over the score, and adds up the placements and their squares per group; the variance, the
interval and the Wilson rates are then computed here from a handful of numbers per group.
"""

from __future__ import annotations

import math

from scipy.stats import norm

from webhook_server.monitoring.realised import rate

_GROUP = ("version", "period")


def figures(frame, threshold: float, confidence: float = 0.95) -> dict[tuple, dict]:
    """``frame``: a Spark DataFrame of ``version``, ``period``, ``score``, ``churn`` (1/0).
    ``{(version, period): the figures realised() gives for that group}``."""
    return {key: _finish(agg, confidence) for key, agg in aggregates(frame, threshold).items()}


def aggregates(frame, threshold: float) -> dict[tuple, dict]:
    """The per-group sums the figures come from (computed by Spark)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    y = F.col("churn").cast("long")
    counts = frame.groupBy(*_GROUP, "score").agg(
        F.sum(y).alias("p"), F.sum(1 - y).alias("q"))
    ordered = Window.partitionBy(*_GROUP).orderBy("score").rowsBetween(
        Window.unboundedPreceding, -1)
    totals = Window.partitionBy(*_GROUP)
    placed = (counts
              .withColumn("p_below", F.coalesce(F.sum("p").over(ordered), F.lit(0)))
              .withColumn("q_below", F.coalesce(F.sum("q").over(ordered), F.lit(0)))
              .withColumn("m", F.sum("p").over(totals))
              .withColumn("n", F.sum("q").over(totals))
              .withColumn("v01", F.try_divide(F.col("q_below") + F.col("q") / 2, F.col("n")))
              .withColumn("v10", 1 - F.try_divide(F.col("p_below") + F.col("p") / 2,
                                                  F.col("m"))))
    flagged = F.col("score") >= threshold
    rows = placed.groupBy(*_GROUP).agg(
        F.first("m").alias("m"), F.first("n").alias("n"),
        F.sum(F.col("p") * F.col("v01")).alias("s01"),
        F.sum(F.col("p") * F.col("v01") ** 2).alias("ss01"),
        F.sum(F.col("q") * F.col("v10")).alias("s10"),
        F.sum(F.col("q") * F.col("v10") ** 2).alias("ss10"),
        F.sum(F.when(flagged, F.col("p")).otherwise(0)).alias("tp"),
        F.sum(F.when(flagged, F.col("p") + F.col("q")).otherwise(0)).alias("flagged"),
        F.sum(F.col("score") * (F.col("p") + F.col("q"))).alias("score_sum")).collect()
    return {(r["version"], r["period"]): r.asDict() for r in rows}


def _finish(a: dict, confidence: float) -> dict:
    """The figures of one group from its sums (the same shape as ``realised``)."""
    m, n = int(a["m"] or 0), int(a["n"] or 0)
    auc = auc_ci = None
    if m and n:
        auc = float(a["s01"] / m)
        if m >= 2 and n >= 2:
            var01 = (a["ss01"] - a["s01"] ** 2 / m) / (m - 1)
            var10 = (a["ss10"] - a["s10"] ** 2 / n) / (n - 1)
            se = math.sqrt(max(var01, 0.0) / m + max(var10, 0.0) / n)
            half = float(norm.ppf(1 - (1 - confidence) / 2)) * se
            auc_ci = (max(0.0, auc - half), min(1.0, auc + half))
    tp, labelled = int(a["tp"]), m + n
    precision, precision_ci = rate(tp, int(a["flagged"]), confidence)
    recall, recall_ci = rate(tp, m, confidence)
    observed, observed_ci = rate(m, labelled, confidence)
    return {"labelled": labelled, "churned": m,
            "predicted_rate": float(a["score_sum"] / labelled) if labelled else None,
            "observed_rate": observed, "observed_rate_ci": observed_ci,
            "auc": auc, "auc_ci": auc_ci, "precision": precision, "precision_ci": precision_ci,
            "recall": recall, "recall_ci": recall_ci}


def with_period(frame, period: str):
    """``frame`` (with ``scored_at``) with the ``period`` label of ``report.period_of``:
    ``2026-06-03``, ISO week ``2026-W23`` (the year of the week's Thursday) or ``2026-06``."""
    from pyspark.sql import functions as F

    at = F.col("scored_at")
    if period == "day":
        label = F.date_format(at, "yyyy-MM-dd")
    elif period == "month":
        label = F.date_format(at, "yyyy-MM")
    else:
        weekday = (F.dayofweek(at) + 5) % 7 + 1  # Monday 1 ... Sunday 7
        thursday = F.date_add(F.to_date(at), (4 - weekday).cast("int"))
        label = F.concat(F.year(thursday).cast("string"), F.lit("-W"),
                         F.lpad(F.weekofyear(at).cast("string"), 2, "0"))
    return frame.withColumn("period", label)


def store_engine(spark, labelled: list[tuple]):
    """The report's engine over the store's labels (``store.monitoring.labelled`` rows:
    version, scored_at, score, churn), moved into Spark once and grouped there."""
    import pyarrow as pa

    def run(period: str, threshold: float, confidence: float) -> dict[tuple, dict]:
        if not labelled:
            return {}
        version, scored_at, score, churn = zip(*labelled, strict=True)
        # an Arrow table (pyspark's pandas path for zoned times warns on pandas 3)
        frame = spark.createDataFrame(pa.table({
            "version": pa.array(version, pa.string()),
            "scored_at": pa.array(scored_at, pa.timestamp("us", tz="UTC")),
            "score": pa.array(score, pa.float64()), "churn": pa.array(churn, pa.int64())}))
        return figures(with_period(frame, period), threshold, confidence)

    return run
