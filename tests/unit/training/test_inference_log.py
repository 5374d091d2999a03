"""The inference log: Parquet partitions model=/version=/date= that pyarrow reads back, the
batch summary, and a failed batch leaving nothing behind."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from training.data import ID, generate
from training.inference_log import InferenceLog, read_predictions
from training.score import score_file

WHEN = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)


def fake_predict(X: pd.DataFrame) -> np.ndarray:
    return (1 - X["tenure"].to_numpy() / 72).clip(0, 1)


@pytest.fixture
def customers(tmp_path):
    raw, _ = generate(1000, seed=3)
    raw = raw.drop(columns=["Churn"])
    raw.loc[10, "Contract"] = "Weekly"  # rejected: never logged
    path = tmp_path / "in.csv"
    raw.to_csv(path, index=False)
    return path, raw


def scored(tmp_path, customers, root, **kw):
    path, _ = customers
    with InferenceLog(str(root), model="churn", version="3", run_id="run-1", now=WHEN,
                      **kw) as log:
        report = score_file(fake_predict, path, tmp_path / "out.csv", model_version="churn/3",
                            chunk_rows=300, log=log)
    return report, log.close()


def test_each_scored_row_is_logged_in_a_hive_partition_pyarrow_reads(tmp_path, customers):
    report, summary = scored(tmp_path, customers, tmp_path / "log")
    out = pd.read_csv(tmp_path / "out.csv", dtype={ID: str})
    part = tmp_path / "log" / "model=churn" / "version=3" / "date=2026-06-03"
    assert summary.path == str(part / f"{summary.batch_id}.parquet")
    assert [p.name for p in part.iterdir()] == [f"{summary.batch_id}.parquet"]
    table = ds.dataset(tmp_path / "log", format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    assert len(frame) == report.scored == 999
    assert set(frame["model"]) == {"churn"} and set(frame["version"].astype(str)) == {"3"}
    assert set(frame["run_id"]) == {"run-1"} and set(frame["batch_id"]) == {summary.batch_id}
    assert (frame["scored_at"] == pd.Timestamp(WHEN)).all()
    assert list(frame["customer_id"]) == list(out[ID])
    assert np.allclose(frame["score"], out["churn_probability"])
    assert pq.read_table(summary.path).num_rows == 999  # one file, readable on its own


def test_the_summary_counts_the_rates_and_the_deciles(tmp_path, customers):
    _, summary = scored(tmp_path, customers, tmp_path / "log")
    scores = pd.read_csv(tmp_path / "out.csv")["churn_probability"].to_numpy()
    assert summary.rows == 999 and summary.model == "churn" and summary.version == "3"
    assert summary.mean_score == pytest.approx(scores.mean())
    assert summary.flagged == int((scores >= 0.5).sum())
    assert sum(summary.histogram) == 999 and len(summary.histogram) == 10
    exact = np.quantile(scores, np.linspace(0, 1, 11))
    assert np.allclose(summary.deciles, exact, atol=0.0011)


def test_read_predictions_filters_by_customer_and_knows_no_other_model(tmp_path, customers):
    _, raw = customers
    scored(tmp_path, customers, tmp_path / "log")
    some = list(raw[ID][:3]) + ["nobody"]
    table = read_predictions(str(tmp_path / "log"), "churn", some)
    assert sorted(table.column("customer_id").to_pylist()) == sorted(some[:3])
    assert set(table.column("version").to_pylist()) == {"3"}
    assert read_predictions(str(tmp_path / "log"), "fraud").num_rows == 0


def test_a_uri_root_and_a_model_name_that_needs_quoting(tmp_path, customers):
    path, _ = customers
    with InferenceLog(f"file://{tmp_path}/uri-log", model="churn eu/1", version="12",
                      now=WHEN) as log:
        score_file(fake_predict, path, tmp_path / "o.csv", model_version="v", log=log)
    assert "model=churn%20eu%2F1" in log.close().path
    assert read_predictions(f"file://{tmp_path}/uri-log", "churn eu/1").num_rows == 999


def test_a_failed_batch_leaves_no_file_and_readers_skip_a_batch_being_written(
        tmp_path, customers):
    path, _ = customers
    calls = []

    def dies_on_the_third_chunk(X):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("model crashed")
        return fake_predict(X)

    with pytest.raises(RuntimeError), InferenceLog(str(tmp_path / "log"), model="churn",
                                                    version="3", now=WHEN) as log:
        score_file(dies_on_the_third_chunk, path, tmp_path / "o.csv", model_version="v",
                   chunk_rows=300, log=log)
    part = tmp_path / "log" / "model=churn" / "version=3" / "date=2026-06-03"
    assert list(part.iterdir()) == []
    open_log = InferenceLog(str(tmp_path / "log"), model="churn", version="3", now=WHEN)
    open_log.write(open_log.entries(pd.DataFrame({ID: ["a", "b"]}), np.array([0.1, 0.9])))
    assert read_predictions(str(tmp_path / "log"), "churn").num_rows == 0  # not closed yet
    open_log.close()
    assert read_predictions(str(tmp_path / "log"), "churn").num_rows == 2


def test_a_batch_with_nothing_scored_writes_no_file(tmp_path):
    with InferenceLog(str(tmp_path / "log"), model="churn", version="1", now=WHEN) as log:
        pass
    summary = log.close()
    assert summary.rows == 0 and summary.path == "" and summary.deciles is None
    assert not (tmp_path / "log").exists() or not any((tmp_path / "log").rglob("*.parquet"))


def test_a_shadows_rows_carry_their_role_and_files_from_before_roles_read_as_null(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.inference_log import SCHEMA, InferenceLog, read_predictions

    when = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with InferenceLog(str(tmp_path), model="churn", version="4", role="shadow", now=when,
                      batch_id="S") as log:
        log.write(log.entries(pd.DataFrame({"customerID": ["c1"]}), np.array([0.4])))
    assert log.close().role == "shadow"
    old = tmp_path / "model=churn" / "version=3" / "date=2026-06-01"
    old.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(
        [{"customer_id": "c1", "score": 0.5, "run_id": "r", "batch_id": "B",
          "scored_at": when}], schema=pa.schema([f for f in SCHEMA if f.name != "role"])),
        old / "B.parquet")
    got = read_predictions(str(tmp_path), "churn").to_pandas().sort_values("version")
    assert list(got["version"]) == ["3", "4"] and pd.isna(got["role"].iloc[0])
    assert got["role"].iloc[1] == "shadow"
    with pytest.raises(ValueError, match="role must be one of champion, shadow, not 'x'"):
        InferenceLog(str(tmp_path), model="churn", version="4", role="x")


def test_a_shadow_scores_its_share_of_the_same_rows_into_its_log_never_the_output(tmp_path):
    from training.score import Shadow, sampled

    raw, _ = generate(3000, seed=5)
    raw.drop(columns=["Churn"]).to_csv(tmp_path / "in.csv", index=False)
    log = InferenceLog(str(tmp_path / "log"), model="churn", version="3", now=WHEN)
    shadow_log = InferenceLog(str(tmp_path / "log"), model="churn", version="4",
                              role="shadow", now=WHEN)
    with log, shadow_log:
        report = score_file(fake_predict, tmp_path / "in.csv", tmp_path / "out.csv",
                            model_version="churn/3", chunk_rows=700, log=log,
                            shadows=[Shadow(lambda X: np.full(len(X), 0.123457), shadow_log,
                                            0.3)])
    out = pd.read_csv(tmp_path / "out.csv")
    assert set(out["model_version"]) == {"churn/3"} and (out["churn_probability"] != 0.123457).all()
    wanted = raw[ID][sampled(raw[ID], 0.3)]
    shadowed = pq.read_table(shadow_log.close().path).to_pandas()
    assert report.shadow_rows == (len(wanted),) and 700 < len(wanted) < 1100
    assert shadowed["customer_id"].tolist() == wanted.str.strip().tolist()
    assert set(shadowed["score"]) == {0.123457} and set(shadowed["role"]) == {"shadow"}
    assert report.shadow_seconds > 0 and report.rows_per_s_without_shadows > report.rows_per_s


def test_a_batch_written_in_parts_reads_back_and_sums_to_the_same_summary(tmp_path):
    """The Spark engine's executors write one part each (``part=``), hidden until the driver
    moves them; the summary summed from their counts is the one-file summary."""
    raw, _ = generate(900, seed=8)
    scores = fake_predict(raw.assign(tenure=raw["tenure"].astype(float)))
    whole = InferenceLog(str(tmp_path / "whole"), model="churn", version="3", run_id="r",
                         now=WHEN, batch_id="b1")
    whole.write(whole.entries(raw, scores))
    one = whole.close()
    driver = InferenceLog(str(tmp_path / "parts"), model="churn", version="3", run_id="r",
                          now=WHEN, batch_id="b2")
    partials = []
    for part, rows in enumerate((slice(0, 400), slice(400, 900))):
        log = InferenceLog(str(tmp_path / "parts"), model="churn", version="3", run_id="r",
                           now=WHEN, batch_id="b2", part=part)
        log.write(log.entries(raw[rows], scores[rows]))
        partials.append(log.close_part())
        driver.absorb(log.counts())
    assert read_predictions(str(tmp_path / "parts"), "churn").num_rows == 0  # hidden so far
    summary = driver.close_parts(partials, f"{driver.dir}/b2-*.parquet")
    back = read_predictions(str(tmp_path / "parts"), "churn").to_pandas()
    assert sorted(back["customer_id"]) == sorted(raw[ID])
    assert sorted(p.name for p in (tmp_path / "parts").rglob("*.parquet")) == \
        ["b2-00000.parquet", "b2-00001.parquet"]
    assert (summary.rows, summary.flagged, summary.deciles, summary.histogram) == \
        (one.rows, one.flagged, one.deciles, one.histogram)
    assert summary.mean_score == pytest.approx(one.mean_score, rel=1e-12)
    assert summary.path.endswith("date=2026-06-03/b2-*.parquet")
