"""`podium labels`: each outcome joined, per version, to that version's latest logged
prediction before it; bad,
duplicate, unknown and too-early outcomes rejected with reasons; loading twice changes
nothing."""

from datetime import UTC, datetime

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.unit.monitoring.logdata import log_batch, outcomes
from training.data import DataError
from webhook_server.monitoring.labels import load_labels
from webhook_server.store.schema import labels as labels_table

JUNE_1, JUNE_8 = datetime(2026, 6, 1, 9, tzinfo=UTC), datetime(2026, 6, 8, 9, tzinfo=UTC)
NOW = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def logged(tmp_path):
    root = tmp_path / "log"
    a = log_batch(root, JUNE_1, {"c1": 0.9, "c2": 0.2, "c3": 0.7, "c4": 0.4, "c5": 0.1},
                  version="3", batch_id="A")
    b = log_batch(root, JUNE_8, {"c1": 0.3, "c2": 0.8, "c6": 0.5}, version="4", batch_id="B")
    return str(root), a, b


def stored(svc):
    with svc.store.read() as conn:
        rows = conn.execute(select(labels_table.c.customer_id, labels_table.c.batch_id,
                                   labels_table.c.version, labels_table.c.churn,
                                   labels_table.c.score)
                            .order_by(labels_table.c.customer_id, labels_table.c.batch_id))
        return [tuple(r) for r in rows]


def test_each_outcome_joins_each_versions_latest_prediction_before_it(svc, tmp_path, logged):
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [
        ("c1", "Yes", "2026-06-05"),            # between the batches: A, not the later B
        ("c2", "No", "2026-06-20T10:00:00Z"),   # late: after both: v3's A and v4's B
        ("c3", "Yes", ""),                      # no date: observed now, A is the latest
        ("c6", "No", "2026-06-08T09:00:00Z"),   # at the very moment of B: B counts
    ])
    report = load_labels(svc.store, "churn", path, root, now=NOW)
    assert (report.rows, report.joined, report.new, report.rejected) == (4, 5, 5, 0)
    assert report.rejects is None and not (tmp_path / "o.rejects.csv").exists()
    assert stored(svc) == [("c1", "A", "3", 1, 0.9), ("c2", "A", "3", 0, 0.2),
                           ("c2", "B", "4", 0, 0.8), ("c3", "A", "3", 1, 0.7),
                           ("c6", "B", "4", 0, 0.5)]


def test_each_version_takes_its_own_latest_prediction_not_the_newest_of_any(svc, tmp_path,
                                                                          logged):
    """v3 scored c1 again after v4 (a shadow's batch in between): each version's label is
    its own latest prediction before the outcome."""
    root, _, _ = logged
    log_batch(root, datetime(2026, 6, 10, tzinfo=UTC), {"c1": 0.6}, version="3",
              batch_id="A2")
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-06-20")])
    assert load_labels(svc.store, "churn", path, root, now=NOW).new == 2
    assert stored(svc) == [("c1", "A2", "3", 1, 0.6), ("c1", "B", "4", 1, 0.3)]


def test_bad_duplicate_unknown_and_too_early_outcomes_are_rejected_with_reasons(
        svc, tmp_path, logged):
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [
        ("c1", "Yes", "2026-06-05"),
        ("c4", "No", "2026-05-01"),      # before the customer's first prediction
        ("c9", "Yes", "2026-06-05"),     # never scored
        ("c1", "No", "2026-06-06"),      # the same customer again in the file
        ("c5", "Maybe", "2026-06-05"),
        ("c3", "Yes", "last week"),
        ("", "Yes", "2026-06-05"),
    ])
    report = load_labels(svc.store, "churn", path, root, now=NOW)
    assert (report.rows, report.joined, report.new, report.rejected) == (7, 1, 1, 6)
    rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
    assert list(rejects["customerID"]) == ["c4", "c9", "c1", "c5", "c3", ""]
    assert list(rejects["reject_reason"]) == [
        "observed_at: before the customer's first prediction (2026-06-01 09:00:00 UTC)",
        "customerID: no logged prediction of churn for this customer",
        "customerID: duplicate customerID 'c1' (first on line 2)",
        "Churn: unknown value 'Maybe' (expected Yes or No)",
        "observed_at: not a date 'last week' (expected ISO 8601, e.g. 2026-06-03T09:30:00Z)",
        "customerID: empty customerID"]
    assert stored(svc) == [("c1", "A", "3", 1, 0.9)]


def test_loading_the_same_outcomes_twice_changes_nothing(svc, tmp_path, logged):
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-06-05"), ("c2", "No", ""),
                                         ("c9", "No", "")])
    first = load_labels(svc.store, "churn", path, root, now=NOW)
    before = stored(svc)
    again = load_labels(svc.store, "churn", path, root, now=NOW)
    assert (first.new, again.new, again.joined, again.rejected) == (3, 0, 3, 1)
    assert stored(svc) == before
    # an outcome for another prediction of the same customer is a new label
    more = outcomes(tmp_path / "more.csv", [("c1", "No", "2026-06-09")])
    assert load_labels(svc.store, "churn", more, root, now=NOW).new == 1
    assert [r[:2] for r in stored(svc) if r[0] == "c1"] == [("c1", "A"), ("c1", "B")]


def test_outcomes_without_a_date_loaded_again_after_a_newer_batch_change_nothing(
        svc, tmp_path, logged):
    """Without observed_at an outcome is observed at the first load: loading the file again
    later, after the customer was scored again, must not join it to the newer prediction."""
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [("c3", "Yes", ""), ("c5", "No", "")])
    assert load_labels(svc.store, "churn", path, root, now=NOW).new == 2
    log_batch(root, datetime(2026, 7, 2, tzinfo=UTC), {"c3": 0.1, "c5": 0.9}, version="5",
              batch_id="C")
    again = load_labels(svc.store, "churn", path, root, now=datetime(2026, 7, 3, tzinfo=UTC))
    assert (again.joined, again.new) == (2, 0)
    assert stored(svc) == [("c3", "A", "3", 1, 0.7), ("c5", "A", "3", 0, 0.1)]


def test_outcomes_from_the_future_and_overlong_ids_are_rejected(svc, tmp_path, logged):
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-08-01"), ("x" * 256, "No", "")])
    report = load_labels(svc.store, "churn", path, root, now=NOW)
    assert (report.joined, report.rejected) == (0, 2)
    rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
    assert list(rejects["reject_reason"]) == [
        "observed_at: in the future (2026-08-01 00:00:00 UTC; now 2026-07-01 00:00:00 UTC)",
        "customerID: longer than 255 characters"]
    assert stored(svc) == []


def test_chunks_join_like_one_piece(svc, tmp_path, logged):
    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-06-05"), ("c2", "No", ""),
                                         ("c3", "Yes", ""), ("c5", "No", "2026-06-02"),
                                         ("c6", "No", "")])
    report = load_labels(svc.store, "churn", path, root, now=NOW, chunk_rows=2)
    assert (report.rows, report.new) == (5, 6)


def test_a_file_without_the_columns_is_refused_whole(svc, tmp_path, logged):
    root, _, _ = logged
    pd.DataFrame({"id": ["c1"], "Churn": ["Yes"]}).to_csv(tmp_path / "o.csv", index=False)
    with pytest.raises(DataError, match="customerID: missing column"):
        load_labels(svc.store, "churn", tmp_path / "o.csv", root)


def test_podium_labels_prints_the_counts_and_writes_the_rejects(sqlite_url, tmp_path, logged):
    import json

    from webhook_server.cli import main

    root, _, _ = logged
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-06-05"), ("c9", "No", "")])
    env = {"PODIUM_DATABASE_URL": sqlite_url, "PODIUM_INFERENCE_LOG": root}
    args = ["labels", "--model", "churn", "--input", path]
    table = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert table.exit_code == 0 and "already loaded" in table.stdout
    again = CliRunner().invoke(main, [*args, "--json"], env=env, catch_exceptions=False)
    data = json.loads(again.stdout)
    assert (data["joined"], data["new"], data["rejected"]) == (1, 0, 1)
    assert data["rejects"] == str(tmp_path / "o.rejects.csv")
    (tmp_path / "bad.csv").write_text("Churn\nYes\n")
    bad = CliRunner().invoke(main, ["labels", "--model", "churn", "--input",
                                    str(tmp_path / "bad.csv")], env=env)
    assert bad.exit_code == 1 and "customerID: missing column" in bad.output
