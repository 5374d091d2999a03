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
