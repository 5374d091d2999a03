"""One local SparkSession per test process (the JVM takes seconds to start), or the reason
the Spark tests skip (no pyspark, no Java)."""

from __future__ import annotations

import os

import pytest

_SESSION = []


def spark_session():
    """The process's session on ``local[2]`` (made on first use, stopped at exit by
    pyspark's own hook); skips the test, with the reason, where Spark cannot run."""
    from training.spark_io import missing

    reason = missing()
    if reason:
        pytest.skip(f"the spark engine cannot run here: {reason}")
    if not _SESSION:
        from training.spark_io import session

        # A test's JVM lives seconds on a few thousand rows: the quick JIT compiler only and
        # one garbage-collector thread (measured: 36 -> 21 s of CPU for the Spark unit
        # tests, wall 22 -> 16 s; the suite runs more workers than cores). Podium's own
        # sessions keep the JVM's defaults (long scoring runs want the optimising JIT).
        os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        _SESSION.append(session("local[2]"))
    return _SESSION[0]
