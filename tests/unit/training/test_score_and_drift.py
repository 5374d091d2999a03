"""Batch scoring (chunks, rejects, formats) and PSI drift, with an in-memory model."""

import numpy as np
import pandas as pd
import pytest

from training import profile
from training.data import FEATURES, DataError, generate, to_typed
from training.score import score_file


def fake_predict(X: pd.DataFrame) -> np.ndarray:
    """A deterministic stand-in model: tenure-based probability."""
    return (1 - X["tenure"].to_numpy() / 72).clip(0, 1)


@pytest.fixture
def csv_in(tmp_path):
    raw, _ = generate(1000, seed=3)
    raw = raw.drop(columns=["Churn"])
    raw.loc[10, "Contract"] = "Weekly"
    raw.loc[777, "tenure"] = "abc"
    path = tmp_path / "in.csv"
    raw.to_csv(path, index=False)
    return path


def test_valid_rows_are_scored_and_invalid_rows_go_to_rejects_with_reasons(csv_in, tmp_path):
    report = score_file(fake_predict, csv_in, tmp_path / "out.csv", model_version="churn/1",
                        chunk_rows=300)
    assert (report.rows, report.scored, report.rejected) == (1000, 998, 2)
    out = pd.read_csv(tmp_path / "out.csv", dtype={"customerID": str})
    assert len(out) == 998 and set(out["model_version"]) == {"churn/1"}
    assert out["churn_prediction"].isin([0, 1]).all()
    rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
    assert list(rejects["reject_reason"]) == [
        "Contract: unknown category 'Weekly' (expected one of Month-to-month, One year, "
        "Two year)", "tenure: expected whole months 0-72, got 'abc'"]


def test_non_finite_and_absurd_numbers_are_rejected_rows_not_scores(tmp_path):
    raw, _ = generate(50, seed=4)
    raw = raw.drop(columns=["Churn"])
    raw.loc[[5, 6], ["MonthlyCharges", "TotalCharges"]] = [["inf", "100"], ["50", "1e308"]]
    raw.to_csv(tmp_path / "in.csv", index=False)
    report = score_file(fake_predict, tmp_path / "in.csv", tmp_path / "out.csv",
                        model_version="churn/1", chunk_rows=20)
    assert (report.scored, report.rejected) == (48, 2)
    rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
    assert list(rejects["reject_reason"]) == [
        "MonthlyCharges: 'inf' is not a finite number",
        "TotalCharges: '1e308' is beyond the bound for charges (1e+09)"]


def test_chunking_does_not_change_the_output(csv_in, tmp_path):
    score_file(fake_predict, csv_in, tmp_path / "a.csv", model_version="v", chunk_rows=97)
    score_file(fake_predict, csv_in, tmp_path / "b.csv", model_version="v", chunk_rows=5000)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_parquet_in_and_out(tmp_path):
    raw, _ = generate(500, seed=4)
    raw.drop(columns=["Churn"]).to_parquet(tmp_path / "in.parquet")
    report = score_file(fake_predict, tmp_path / "in.parquet", tmp_path / "out.parquet",
                        model_version="v", chunk_rows=128)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert report.scored == 500 and len(out) == 500 and report.rejects is None
    expected = fake_predict(to_typed(raw)[list(FEATURES)])
    assert np.allclose(out["churn_probability"], expected)


def test_a_file_missing_a_column_is_refused(tmp_path):
    raw, _ = generate(20, seed=4)
    raw.drop(columns=["tenure"]).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match="tenure: missing column"):
        score_file(fake_predict, tmp_path / "in.csv", tmp_path / "out.csv", model_version="v")


def test_psi_is_near_zero_for_the_same_population_and_large_after_drift():
    ref_raw, _ = generate(20000, seed=1)
    X = to_typed(ref_raw)[list(FEATURES)]
    ref = profile.build(X, fake_predict(X))
    same = to_typed(generate(20000, seed=2)[0])[list(FEATURES)]
    drifted = to_typed(generate(20000, seed=2, drift=1.0)[0])[list(FEATURES)]
    psi_same = profile.compare(ref, same, fake_predict(same))
    psi_drift = profile.compare(ref, drifted, fake_predict(drifted))
    assert max(psi_same.values()) < 0.02
    assert psi_drift["MonthlyCharges"] > 0.2 and psi_drift["Contract"] > psi_same["Contract"]
