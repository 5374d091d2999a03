"""``podium labels --engine spark``: outcomes joined to the inference log in Spark SQL, by the
rules of ``training.labels`` (one row per outcome and version that predicted the customer,
with that version's latest prediction at or before the outcome; the same rejects with the
same reasons).

Two differences of scale, both documented: an id twice in the file is a duplicate wherever
the second one is (the local engine sees a chunk at a time), and ``observed_at`` is parsed by
Spark's timestamp rules (ISO 8601 dates and times with or without a zone, as the local
engine's; exotic ISO forms such as week dates are refused by both, compact ``20260605`` by
Spark only). Only the joined rows and the rejects leave Spark: the driver stores the joined
rows chunk by chunk (``webhook_server.monitoring.labels``) and Spark writes the rejects.
"""

from __future__ import annotations

from datetime import UTC, datetime

from training.data import ID, TARGET, YES_NO, DataError, Problem
from training.inference_log import model_dir, open_root
from training.labels import MAX_ID, OBSERVED
from training.spark_io import read_text

LINE = "__podium_line"
LOG_SCHEMA = ("customer_id string, score double, run_id string, batch_id string, "
              "scored_at timestamp, role string, version string, date string")
_STAMP = "yyyy-MM-dd HH:mm:ss"


def read_log(spark, log_root: str, model: str):
    """The logged predictions of ``model`` (every version, role and day) as a DataFrame of
    ``LOG_SCHEMA``; None when nothing was logged. Hidden parts (a batch still being
    written, or one that failed) are never read: Spark skips names starting with a dot."""
    import pyarrow.fs as pafs

    fs, base = open_root(log_root)
    where = model_dir(base, model)
    if fs.get_file_info(where).type != pafs.FileType.Directory:
        return None
    uri = where if "://" in log_root else f"file://{where}"
    return spark.read.schema(LOG_SCHEMA).option("basePath", uri).parquet(uri)


def join(spark, source: str, log_root: str, model: str, now: datetime | None = None, *,
         cached: list | None = None):
    """``(rows, joined, rejected)``: the outcomes' row count, the joined labels (customer_id,
    churn, observed_at, outcome, version, batch_id, score, scored_at and the outcome's
    ``LINE``; times as microseconds since the epoch) and the rejected rows (as read, with
    ``reject_reason``, and ``LINE``). The numbered outcomes stay cached while both are read:
    ``cached`` gets that frame, for the caller to unpersist. ``DataError`` when the file
    lacks the columns."""
    from pyspark.sql import functions as F

    now = (now or datetime.now(UTC)).astimezone(UTC)
    text = read_text(spark, source)
    missing = [c for c in (ID, TARGET) if c not in text.columns]
    if missing:
        raise DataError([Problem(None, c, "missing column") for c in missing], source)
    columns = text.columns
    text = text.select(*[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in columns])
    numbered = _numbered(text, [] if cached is None else cached)
    checked = _checked(numbered, now)
    valid = checked.where(F.size("reasons") == 0)
    joined, unmatched = _join(valid, read_log(spark, log_root, model), model)
    rejected = checked.where(F.size("reasons") > 0).unionByName(unmatched).select(
        *[F.col(f"`{c}`") for c in columns], F.array_join("reasons", "; ")
        .alias("reject_reason"), LINE)
    return numbered.count(), joined, rejected


def _numbered(text, cached: list):
    """``text`` with ``LINE``: each row's line in the file (2 for the first row; for a
    directory, in the order Spark lists its files), in the JVM: a partition's rows are
    numbered by ``monotonically_increasing_id`` (the partition index in the upper bits) and
    offset by the rows of the partitions before it (one small count per partition)."""
    from pyspark.sql import functions as F

    tagged = text.withColumn("__part", F.spark_partition_id()).withColumn(
        "__seq", F.monotonically_increasing_id() - F.shiftleft(
            F.spark_partition_id().cast("long"), 33)).cache()
    cached.append(tagged)
    sizes = sorted((r["__part"], r["count"]) for r in tagged.groupBy("__part").count()
                   .collect())
    offsets, before = [], 2
    for part, n in sizes:
        offsets.append((part, before))
        before += n
    spark = text.sparkSession
    if not offsets:
        return tagged.withColumn(LINE, F.col("__seq")).drop("__part", "__seq")
    starts = spark.createDataFrame(offsets, "__part int, __start long")
    return (tagged.join(F.broadcast(starts), "__part")
            .withColumn(LINE, F.col("__start") + F.col("__seq"))
            .drop("__part", "__seq", "__start"))


def _checked(frame, now: datetime):
    """``frame`` with ``reasons`` (the validation's, in the local engine's order and words),
    and the outcome's customer id, churn (1/0), time observed and key (``__`` names)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ids = F.trim(F.col(ID))
    first = F.min(LINE).over(Window.partitionBy(ids))
    now_at = F.lit(now.replace(tzinfo=None)).cast("timestamp")  # the session's zone is UTC
    has_observed = OBSERVED in frame.columns
    text = F.trim(F.col(OBSERVED)) if has_observed else F.lit("")
    parsed = F.try_to_timestamp(F.when(text != "", text)) if has_observed else F.lit(None)
    rules = [
        (ids == "", F.lit(f"{ID}: empty customerID")),
        (F.length(ids) > MAX_ID, F.lit(f"{ID}: longer than {MAX_ID} characters")),
        ((ids != "") & (first < F.col(LINE)),
         F.format_string(f"{ID}: duplicate customerID '%s' (first on line %d)", ids, first)),
        (~F.col(TARGET).isin(*YES_NO),
         F.format_string(f"{TARGET}: unknown value '%s' (expected Yes or No)", F.col(TARGET))),
    ]
    if has_observed:
        rules += [
            (parsed.isNull() & (text != ""), F.format_string(
                f"{OBSERVED}: not a date '%s' (expected ISO 8601, e.g. 2026-06-03T09:30:00Z)",
                F.col(OBSERVED))),
            (parsed > now_at, F.format_string(
                f"{OBSERVED}: in the future (%s UTC; now {now:%Y-%m-%d %H:%M:%S} UTC)",
                F.date_format(parsed, _STAMP))),
        ]
    reasons = F.filter(F.array(*[F.when(test, message) for test, message in rules]),
                       lambda r: r.isNotNull())
    # derived columns under names no input column has (Spark's names are case-blind:
    # ``churn`` would be the input's ``Churn``)
    return frame.select(
        "*", reasons.alias("reasons"), ids.alias("__id"),
        (F.col(TARGET) == "Yes").cast("long").alias("__churn"),
        F.coalesce(parsed, now_at).alias("__observed"),
        F.coalesce(F.date_format(parsed, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"), F.lit(""))
        .alias("__outcome"))


def _join(valid, log, model: str):
    """(the joined labels, the valid rows no prediction judges, with their reason)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = ["customer_id", "churn", "observed_at", "outcome", LINE]
    outcomes = valid.select(*[F.col(f"__{k}").alias(k) for k in ("id", "churn")],
                            F.col("__observed").alias("observed_at"),
                            F.col("__outcome").alias("outcome"), LINE) \
        .withColumnRenamed("id", "customer_id")
    if log is None:
        log = valid.sparkSession.createDataFrame([], LOG_SCHEMA)
    preds = log.select("customer_id", "version", "batch_id", "score", "scored_at")
    firsts = preds.groupBy("customer_id").agg(F.min("scored_at").alias("first_scored"))
    latest = Window.partitionBy(LINE, "version").orderBy(F.col("scored_at").desc(),
                                                         F.col("batch_id").desc())
    joined = (outcomes.join(preds, "customer_id")
              .where(F.col("scored_at") <= F.col("observed_at"))
              .withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
              .select(*keys, "version", "batch_id", "score",
                      F.unix_micros("scored_at").alias("scored_at"),
                      F.unix_micros("observed_at").alias("observed_at_us")))
    matched = joined.select(LINE).distinct()
    reason = F.when(F.col("first_scored").isNull(), F.lit(
        f"{ID}: no logged prediction of {model} for this customer")).otherwise(F.format_string(
            f"{OBSERVED}: before the customer's first prediction (%s UTC)",
            F.date_format("first_scored", _STAMP)))
    unmatched = (valid.join(matched, LINE, "left_anti")
                 .join(firsts.withColumnRenamed("customer_id", "__id"), "__id", "left")
                 .withColumn("reasons", F.array(reason)))
    return joined, unmatched.drop("first_scored")
