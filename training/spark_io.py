"""The Spark engine's session and input: a session (the one the environment made, under
``spark-submit`` or Databricks Connect, else a local one on ``master``), and the input read
as text columns, as ``podium score``'s local engine sees it.

pyspark is an optional extra (``pip install podium[spark]``); Java comes from the system.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from training.input_file import InputError

DEFAULT_MASTER = "local[*]"
LOCAL_DRIVER_MEMORY = "4g"  # the default of PODIUM_SPARK_DRIVER_MEMORY


def missing() -> str | None:
    """Why the Spark engine cannot run here (None when it can)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'podium[spark]')"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "Java is not installed (Debian: openjdk-17-jre-headless)"
    return None


def session(master: str | None = None, driver_memory: str = LOCAL_DRIVER_MEMORY):
    """The active session when there is one (spark-submit, Databricks Connect), else a
    local one on ``master`` (default ``local[*]``) whose driver JVM's heap ceiling is
    ``driver_memory`` (``PODIUM_SPARK_DRIVER_MEMORY``). Executors run this Python."""
    reason = missing()
    if reason:
        raise InputError(f"the spark engine cannot run: {reason}")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master or DEFAULT_MASTER).appName("podium")
    if (master or DEFAULT_MASTER).startswith("local"):  # no network beyond this machine
        # the executors live in the driver's JVM: its default 1 GiB heap runs out past ~1 M
        # rows (a maximum, not an allocation)
        builder = builder.config("spark.driver.host", "127.0.0.1") \
            .config("spark.driver.bindAddress", "127.0.0.1") \
            .config("spark.driver.memory", driver_memory)
    return (builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate())


def _kind(path: Path) -> str:
    """``parquet`` or ``csv``: by suffix, or for a directory by the files in it."""
    if path.is_dir():
        names = [p.suffix.lower() for p in path.rglob("*") if p.is_file()
                 and not p.name.startswith((".", "_"))]
        return "parquet" if any(s in (".parquet", ".pq") for s in names) or not names \
            else "csv"
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


def read_text(spark, source: str):
    """``source`` (a file, a directory of files, or a table in the session's catalog) as a
    DataFrame of text columns. ``InputError`` (one line) when it cannot be read."""
    from pyspark.sql import functions as F

    path = Path(source)
    kind = "Parquet" if source.lower().endswith((".parquet", ".pq")) else "CSV"
    try:
        if "://" in source or path.exists():
            kind = kind if "://" in source else _kind(path).replace("parquet", "Parquet") \
                .replace("csv", "CSV")
            if kind == "Parquet":
                frame = spark.read.parquet(source)
            else:
                frame = (spark.read.option("header", True).option("inferSchema", False)
                         .option("mode", "FAILFAST")  # one line a row: splittable
                         .option("ignoreLeadingWhiteSpace", False)
                         .option("ignoreTrailingWhiteSpace", False)
                         .option("escape", '"').csv(source))
            frame.schema  # noqa: B018  (reads the footer or the header now)
        elif spark.catalog.tableExists(source):
            frame = spark.table(source)
        else:
            raise InputError(f"{source}: no such file, directory or table")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (the JVM's error, reduced to one line)
        raise InputError(f"{source}: cannot be read as {kind} ({first_line(exc)})") from None
    return frame.select([F.col(f"`{c}`").cast("string").alias(c) for c in frame.columns])


def first_line(exc: BaseException) -> str:
    """The first line of a (Spark) error, without the JVM's class prefixes."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for marker in ("Exception: ", "Error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip()[:200]
