"""The scores' PSI per version and period against the version's training reference: the
local engine's equals the drift report's PSI of those scores (``training.profile``), the
Spark engine's equals the local engine's, and `podium monitor` shows it per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.unit.monitoring.logdata import log_batch
from training import profile
from webhook_server.monitoring.score_psi import local_counts, psi_of, spark_counts

JUNE_1 = datetime(2026, 6, 1, 9, tzinfo=UTC)


def _reference(version: str):
    """v3's training scores centred low; v4 has none (no PSI); edges as training's."""
    if version != "3":
        return None
    scores = np.random.default_rng(3).beta(2, 5, 5000)
    return profile.build(_features(), scores)["prediction"]


def _features():
    from training.data import FEATURES, generate, to_typed

    raw, _ = generate(50, seed=1)
    return to_typed(raw)[list(FEATURES)]


@pytest.fixture
def logged(tmp_path) -> tuple[str, dict]:
    """v3 over three weeks drifting upwards (with a score exactly on an edge), v4 in one."""
    root, scores = str(tmp_path / "log"), {}
    rng = np.random.default_rng(31)
    for week, days in enumerate((0, 7, 35)):  # ISO weeks 23, 24 and 28 (in July)
        when = JUNE_1 + timedelta(days=days)
        s = np.clip(rng.beta(2, 5 - week, 400), 0, 1)
        s[:3] = [0.1, 0.5, 1.0]
        log_batch(root, when, {f"c{i}": float(v) for i, v in enumerate(s)}, version="3",
                  batch_id=f"w{week}")
        scores[("3", f"2026-W{when.isocalendar()[1]}")] = s
    log_batch(root, JUNE_1, {"c1": 0.4}, version="4", batch_id="v4")
    return root, scores


def test_local_psi_per_period_is_the_drift_reports_psi_of_those_scores(logged):
    root, scores = logged
    got = psi_of(local_counts(root, "churn", "week", _reference), _reference)
    ref = _reference("3")
    assert set(got) == set(scores)  # v4 has no reference: no PSI
    for key, s in scores.items():
        assert got[key] == profile.psi(ref["share"], profile._numeric_share(s, ref["edges"]))
    assert got[("3", "2026-W23")] < 0.1 < got[("3", "2026-W28")]  # the drift shows


@pytest.mark.spark
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_spark_psi_equals_the_local_engines(spark, logged, period):
    root, _ = logged
    local = psi_of(local_counts(root, "churn", period, _reference), _reference)
    on_spark = psi_of(spark_counts(spark, root, "churn", period, _reference), _reference)
    assert on_spark == local and len(local) >= 2


def test_podium_monitor_rows_carry_the_psi_of_their_version_and_period(svc, logged):
    from podium_policy.policy import parse_policy
    from tests.unit.monitoring.logdata import labelled_batch
    from webhook_server.monitoring.report import build
    from webhook_server.monitoring.text import table

    root, _ = logged
    labelled_batch(svc.store, JUNE_1, 50, separation=1.0, seed=1, batch_id="w0")
    policy = parse_policy({}).for_model("churn")
    with svc.store.read() as conn:
        report = build(conn, "churn", policy, psi=lambda p: psi_of(
            local_counts(root, "churn", p, _reference), _reference))
    (row,) = report.rows
    assert row["psi"] == psi_of(local_counts(root, "churn", "week", _reference),
                                _reference)[("3", "2026-W23")]
    assert "score PSI" in table(report) and f"{row['psi']:.3f}" in table(report)
