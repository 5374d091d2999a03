"""`podium labels --engine spark` stores the labels the local engine stores (one per outcome
and version, each version's latest prediction at or before the outcome), rejects the same
rows with the same reasons, and is idempotent, also across engines; `podium monitor` then
gives the same figures on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from sqlalchemy import delete, select

from tests.support.settings import make_settings
from tests.unit.monitoring.logdata import log_batch, outcomes
from webhook_server.monitoring.labels import load_labels, load_labels_spark
from webhook_server.store.schema import labels as labels_table

pytestmark = pytest.mark.spark

JUNE_1 = datetime(2026, 6, 1, 9, tzinfo=UTC)
NOW = datetime(2026, 7, 1, tzinfo=UTC)
COLUMNS = ("customer_id", "version", "batch_id", "churn", "score", "scored_at", "observed_at",
           "outcome")


def stored(store) -> list[tuple]:
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(
            select(*[labels_table.c[c] for c in COLUMNS])
            .order_by(labels_table.c.customer_id, labels_table.c.version))]


def _rejects(path) -> list[tuple]:
    """The rejects as (customerID, reason): one CSV (local) or a directory of parts."""
    files = sorted(path.glob("part-*.csv")) if path.is_dir() else [path]
    frame = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files])
    return list(zip(frame["customerID"], frame["reject_reason"], strict=True))


@pytest.fixture
def fixture_log(tmp_path):
    """Two versions over two weeks: v3 scores c0..c299 each week, v4 (a shadow) scores
    c100..c299 in the second week, and v3 again scores c0..c49 a day later."""
    root = tmp_path / "log"
    rng = np.random.default_rng(31)
    for week in range(2):
        when = JUNE_1 + timedelta(days=7 * week)
        log_batch(root, when, {f"c{i}": float(rng.random()) for i in range(300)},
                  version="3", batch_id=f"v3-w{week}")
    log_batch(root, JUNE_1 + timedelta(days=7), {f"c{i}": float(rng.random())
                                                 for i in range(100, 300)},
              version="4", batch_id="v4-w1")
    log_batch(root, JUNE_1 + timedelta(days=8), {f"c{i}": float(rng.random())
                                                 for i in range(50)},
              version="3", batch_id="v3-w1b")
    return str(root)


def _outcomes(tmp_path) -> str:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(300):
        day = JUNE_1 + timedelta(days=int(rng.integers(1, 20)), hours=int(rng.integers(0, 24)))
        observed = "" if i % 17 == 0 else day.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append((f"c{i}", "Yes" if rng.random() < 0.3 else "No", observed))
    rows += [("c5", "No", "2026-06-09"),         # the same customer again in the file
             ("c999", "Yes", "2026-06-05"),      # never scored
             ("c7", "Yes", "2026-05-01"),        # before the customer's first prediction
             ("c8", "Maybe", "2026-06-05"), ("c9", "Yes", "last week"),
             ("", "No", "2026-06-05"), ("c10", "No", "2026-08-01T00:00:00Z")]  # future
    return outcomes(tmp_path / "outcomes.csv", rows)


@pytest.fixture
def other_store(make_svc, tmp_path):
    return make_svc(make_settings(f"sqlite:///{tmp_path / 'other.db'}")).store


def test_spark_labels_equal_the_local_engines_labels_and_rejects(spark, svc, other_store,
                                                                 tmp_path, fixture_log):
    path = _outcomes(tmp_path)
    local = load_labels(svc.store, "churn", path, fixture_log, now=NOW,
                        rejects_path=tmp_path / "local.rejects.csv")
    # the file read in several partitions: line numbers (a duplicate's "first on line")
    # and the order of the rows must still be the file's
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2048")
    try:
        on_spark = load_labels_spark(other_store, spark, "churn", path, fixture_log, now=NOW,
                                     rejects_path=tmp_path / "spark.rejects.csv",
                                     chunk_rows=50)
        assert spark.read.csv(path).rdd.getNumPartitions() > 2
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert (on_spark.rows, on_spark.joined, on_spark.new, on_spark.rejected) == \
        (local.rows, local.joined, local.new, local.rejected) == (307, 440, 440, 7)
    assert stored(other_store) == stored(svc.store)
    assert ("c120", "4") in {(r[0], r[1]) for r in stored(svc.store)}  # the shadow's too
    assert _rejects(tmp_path / "spark.rejects.csv") == _rejects(tmp_path / "local.rejects.csv")
    assert ("c5", "customerID: duplicate customerID 'c5' (first on line 7)") in \
        _rejects(tmp_path / "spark.rejects.csv")


def test_spark_labels_loaded_again_change_nothing_on_either_engine(spark, svc, tmp_path,
                                                                   fixture_log):
    path = _outcomes(tmp_path)
    first = load_labels_spark(svc.store, spark, "churn", path, fixture_log, now=NOW)
    before = stored(svc.store)
    # later, v4 scores the undated customers again: a reload must not judge it with them
    log_batch(fixture_log, datetime(2026, 6, 25, tzinfo=UTC), {"c0": 0.5, "c17": 0.5},
              version="4", batch_id="v4-late")
    again = load_labels_spark(svc.store, spark, "churn", path, fixture_log,
                              now=NOW + timedelta(days=1))
    local = load_labels(svc.store, "churn", path, fixture_log, now=NOW + timedelta(days=2),
                        rejects_path=tmp_path / "local.rejects.csv")
    assert first.new == 440 and again.new == 0 and local.new == 0
    assert stored(svc.store) == before


def test_monitor_figures_equal_across_engines_on_labels_from_either_engine(
        spark, svc, tmp_path, fixture_log):
    from podium_policy.policy import parse_policy
    from tests.unit.monitoring.test_spark_figures import _close, _tupled
    from webhook_server.monitoring.report import build
    from webhook_server.monitoring.spark_figures import store_engine
    from webhook_server.store import monitoring as rows

    policy = parse_policy({"default": {"monitoring": {"min_labels": 20}}}).for_model("churn")
    path = _outcomes(tmp_path)
    reports = {}
    for labels_engine in ("local", "spark"):
        with svc.store.tx() as conn:
            conn.execute(delete(labels_table))
        if labels_engine == "local":
            load_labels(svc.store, "churn", path, fixture_log, now=NOW)
        else:
            load_labels_spark(svc.store, spark, "churn", path, fixture_log, now=NOW)
        with svc.store.read() as conn:
            reports[labels_engine, "local"] = build(conn, "churn", policy).as_json()
            reports[labels_engine, "spark"] = build(
                conn, "churn", policy,
                engine=store_engine(spark, rows.labelled(conn, "churn"))).as_json()
    want = reports["local", "local"]
    assert {(r["version"], r["period"]) for r in want["rows"]} == {
        ("3", "2026-W23"), ("3", "2026-W24"), ("4", "2026-W24")}
    for key, have in reports.items():
        assert len(have["rows"]) == len(want["rows"]), key
        for a, b in zip(have["rows"], want["rows"], strict=True):
            for name, value in b.items():
                assert _close(_tupled(a[name]), _tupled(value)), (key, name, a[name], value)


def test_spark_labels_never_read_a_hidden_part(spark, svc, tmp_path, fixture_log):
    """A batch still being written (or failed) sits under a dot-name: never joined."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = next(p for p in ds.dataset(fixture_log).files if p.endswith("/v4-w1.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.set_column(table.schema.get_field_index("batch_id"), "batch_id",
                                    pa.array(["hidden"] * len(table))),
                   part.replace("/v4-w1.parquet", "/.hidden-0.parquet"))
    path = outcomes(tmp_path / "o.csv", [("c150", "Yes", "2026-06-20")])
    load_labels_spark(svc.store, spark, "churn", path, fixture_log, now=NOW)
    assert {r[2] for r in stored(svc.store)} == {"v3-w1", "v4-w1"}
