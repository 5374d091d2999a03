"""The monitoring figures computed in Spark from counts per score equal the local engine's
(``realised``, from the rows) to 1e-12: AUC with its DeLong interval, the rates and their
Wilson intervals, with ties, a one-class group and a group of one positive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from webhook_server.monitoring.realised import realised
from webhook_server.monitoring.spark_figures import figures

pytestmark = pytest.mark.spark


def _groups() -> pd.DataFrame:
    rng = np.random.default_rng(31)
    parts = []
    for version, period, n, ties in (("3", "2026-W23", 4000, False),
                                     ("3", "2026-W24", 2500, True),
                                     ("4", "2026-W24", 900, True)):
        y = rng.random(n) < 0.27
        s = np.clip(0.35 * y + rng.normal(0.3, 0.2, n), 0, 1)
        s = np.round(s, 2) if ties else s  # ties: mid-ranks must match rankdata's
        parts.append(pd.DataFrame({"version": version, "period": period, "score": s,
                                   "churn": y.astype(int)}))
    parts.append(pd.DataFrame({"version": "5", "period": "2026-W24", "score": [0.2, 0.7, 0.4],
                               "churn": [0, 0, 0]}))  # one class: no AUC
    parts.append(pd.DataFrame({"version": "6", "period": "2026-W24",
                               "score": [0.9, 0.2, 0.4], "churn": [1, 0, 0]}))  # no interval
    return pd.concat(parts, ignore_index=True)


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):  # the holdout's and the verdict's figures
        return set(a) == set(b) and all(_close(_tupled(a[k]), _tupled(b[k])) for k in a)
    if not isinstance(b, float):  # counts, labels, reasons
        return a == b
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_spark_monitoring_figures_equal_the_local_engines(spark):
    data = _groups()
    got = figures(spark.createDataFrame(data).repartition(3), 0.5, 0.9)
    assert set(got) == {("3", "2026-W23"), ("3", "2026-W24"), ("4", "2026-W24"),
                        ("5", "2026-W24"), ("6", "2026-W24")}
    for (version, period), group in data.groupby(["version", "period"]):
        want = realised(group["churn"].to_numpy(), group["score"].to_numpy(), 0.5, 0.9)
        have = got[(version, period)]
        assert set(have) == set(want)
        for key in want:
            assert _close(have[key], want[key]), (version, period, key, have[key], want[key])
    assert got[("5", "2026-W24")]["auc"] is None and got[("6", "2026-W24")]["auc_ci"] is None


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_podium_monitor_reports_the_same_on_both_engines(spark, svc, period):
    from datetime import UTC, datetime

    from podium_policy.policy import parse_policy
    from tests.unit.monitoring.logdata import labelled_batch, promoted
    from webhook_server.monitoring.report import build
    from webhook_server.monitoring.spark_figures import store_engine
    from webhook_server.store import monitoring as rows

    policy = parse_policy({"default": {"monitoring": {"min_labels": 200}}}).for_model("churn")
    promoted(svc.store, "3", auc=0.84)
    labelled_batch(svc.store, datetime(2026, 6, 2, 9, tzinfo=UTC), 600, separation=1.4, seed=1)
    labelled_batch(svc.store, datetime(2027, 1, 1, 9, tzinfo=UTC), 400, separation=0.5,
                   seed=2)  # ISO week 53 of 2026
    with svc.store.read() as conn:
        local = build(conn, "churn", policy, period=period).as_json()
        spark_ = build(conn, "churn", policy, period=period,
                       engine=store_engine(spark, rows.labelled(conn, "churn"))).as_json()
    assert [(r["version"], r["period"]) for r in spark_["rows"]] == \
        [(r["version"], r["period"]) for r in local["rows"]]
    assert local["rows"][-1]["period"] in ("2027-01-01", "2026-W53", "2027-01")
    for have, want in zip(spark_["rows"], local["rows"], strict=True):
        for key, value in want.items():
            assert _close(_tupled(have[key]), _tupled(value)), (key, have[key], value)
    assert _close(spark_["decay"], local["decay"]) and spark_["decayed"] == local["decayed"]


def _tupled(value):
    if isinstance(value, list):
        return tuple(value)
    return value
