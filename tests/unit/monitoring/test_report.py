"""`podium monitor`: realised quality per version and period beside the promotion's figures,
the latest drift report, and exit 1 when the decay rule fires on the champion."""

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from podium_policy.policy import parse_policy
from tests.unit.monitoring.logdata import labelled_batch, promoted
from webhook_server.monitoring.report import build, period_of
from webhook_server.store import audit

W23, W24 = datetime(2026, 6, 2, 9, tzinfo=UTC), datetime(2026, 6, 9, 9, tzinfo=UTC)
POLICY = parse_policy({"default": {"monitoring": {"min_labels": 200}}})


def report(svc, policy=POLICY, **kw):
    with svc.store.read() as conn:
        return build(conn, "churn", policy.for_model("churn"), **kw)


def test_periods_are_days_iso_weeks_or_months():
    when = datetime(2027, 1, 1, tzinfo=UTC)  # a Friday in ISO week 53 of 2026
    assert [period_of(when, p) for p in ("day", "week", "month")] == \
        ["2027-01-01", "2026-W53", "2027-01"]


def test_a_drop_in_the_champions_latest_period_is_decay(svc):
    promoted(svc.store, "3", auc=0.84)
    y1, s1 = labelled_batch(svc.store, W23, 600, separation=1.4, seed=1)
    y2, s2 = labelled_batch(svc.store, W24, 600, separation=0.5, seed=2)
    r = report(svc)
    assert [(row["version"], row["period"], row["scored"], row["labelled"]) for row in r.rows] \
        == [("3", "2026-W23", 600, 600), ("3", "2026-W24", 600, 600)]
    first, last = r.rows
    assert first["auc"] == pytest.approx(roc_auc_score(y1, s1))
    assert last["auc"] == pytest.approx(roc_auc_score(y2, s2))
    assert first["holdout"]["auc"] == 0.84 and first["holdout"]["source"].startswith("request")
    assert not first["verdict"]["decayed"] and last["verdict"]["decayed"]
    assert r.champion == "3" and r.decayed
    assert (r.decay["version"], r.decay["period"]) == ("3", "2026-W24")
    assert last["observed_rate"] == pytest.approx(y2.mean())
    assert last["predicted_rate"] == pytest.approx(s2.mean())
    json.dumps(r.as_json())  # the CLI's --json


def test_the_same_drop_without_enough_labels_is_not_decay(svc):
    promoted(svc.store, "3", auc=0.84)
    labelled_batch(svc.store, W23, 600, separation=1.4, seed=1)
    labelled_batch(svc.store, W24, 150, separation=0.5, seed=2)
    r = report(svc)
    assert r.rows[-1]["verdict"]["reason"] == "150 labelled, fewer than min_labels 200"
    # the verdict that counts is the champion's latest period with enough labels
    assert not r.decayed and r.decay["period"] == "2026-W23"


def test_only_the_champion_counts_and_a_month_groups_both_weeks(svc):
    promoted(svc.store, "2", auc=0.84)
    labelled_batch(svc.store, W23, 600, separation=0.5, seed=2, version="1")  # decayed, old
    labelled_batch(svc.store, W24, 600, separation=1.4, seed=1, version="2")
    r = report(svc)
    assert r.rows[0]["holdout"] is None and not r.rows[0]["verdict"]["judged"]
    assert not r.decayed and r.decay["version"] == "2"
    month = report(svc, period="month")
    assert [(row["version"], row["period"]) for row in month.rows] == \
        [("1", "2026-06"), ("2", "2026-06")]


def test_holdout_figures_come_from_the_run_when_the_store_has_none(svc):
    labelled_batch(svc.store, W23, 400, separation=0.5, seed=2)
    r = report(svc, holdout_of=lambda v: {"auc": 0.85, "precision": None, "recall": None,
                                          "source": "run"})
    assert r.champion is None and r.decayed  # no champion: the newest labelled version


def test_the_latest_drift_report_is_shown(svc):
    with svc.store.tx() as conn:
        audit.record(conn, actor="scheduler", action="drift", subject="churn", detail={
            "job": "drift:churn:d", "model_version": "churn/3", "rows": 10, "threshold": 0.2,
            "drifted": ["Contract"], "psi": {"Contract": 0.4, "tenure": 0.01}})
    r = report(svc)
    assert r.drift["psi"] == {"Contract": 0.4, "tenure": 0.01} and r.drift["drifted"] == \
        ["Contract"]
    assert r.rows == [] and r.decay is None


def test_podium_monitor_prints_a_table_and_exits_1_on_decay(sqlite_url, tmp_path):
    from webhook_server.cli import main
    from webhook_server.store import Store

    store = Store(sqlite_url)
    store.migrate()
    promoted(store, "3", auc=0.84)
    labelled_batch(store, W24, 600, separation=0.5, seed=2)
    store.dispose()
    policy = tmp_path / "podium.yaml"
    policy.write_text("default:\n  monitoring: {max_auc_drop: 0.05, min_labels: 200}\n")
    env = {"PODIUM_DATABASE_URL": sqlite_url, "PODIUM_POLICY": str(policy)}
    out = CliRunner().invoke(main, ["monitor", "--model", "churn"], env=env)
    assert out.exit_code == 1, out.output
    assert "v3       2026-W24  600     600" in out.stdout
    assert "DECAY: churn v3 in 2026-W24: ROC AUC 0.756 vs 0.840 at promotion" in out.stdout
    as_json = CliRunner().invoke(main, ["monitor", "--model", "churn", "--json"], env=env)
    data = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and data["decayed"] is True
    assert data["rows"][0]["holdout"]["auc"] == 0.84
    quiet = CliRunner().invoke(main, ["monitor", "--model", "fraud"], env=env)
    assert quiet.exit_code == 0 and "not judged yet" in quiet.stdout
