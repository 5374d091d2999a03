"""Data tests: the layout contract, the validator's reports, the generator's structure."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import COLUMNS, DataError, generate, load_csv, read_raw, validate

GOLDEN = Path(__file__).parents[2] / "data" / "telco_sample.csv"


def test_the_golden_sample_in_the_real_layout_loads_with_a_blank_total_as_missing():
    df = load_csv(GOLDEN)
    assert list(df.columns) == list(COLUMNS) and len(df) == 14
    new = df[df["customerID"] == "4472-LVYGI"].iloc[0]
    assert new["tenure"] == 0 and np.isnan(new["TotalCharges"])
    assert df["MonthlyCharges"].dtype == np.float64


def test_generated_data_passes_the_loaders_validation(tmp_path):
    raw, prob = generate(3000, seed=1)
    assert list(raw.columns) == list(COLUMNS)
    assert validate(raw) == []
    raw.to_csv(tmp_path / "gen.csv", index=False)
    assert len(load_csv(tmp_path / "gen.csv")) == 3000
    assert prob.shape == (3000,) and ((0 < prob) & (prob < 1)).all()


def test_generated_data_has_the_telco_structure():
    raw, prob = generate(40000, seed=2)
    churn = raw["Churn"] == "Yes"
    assert 0.24 < churn.mean() < 0.29
    rate = churn.groupby(raw["Contract"]).mean()
    assert rate["Month-to-month"] > 3 * rate["Two year"]
    by_net = churn.groupby(raw["InternetService"]).mean()
    assert by_net["Fiber optic"] > by_net["DSL"] > by_net["No"]
    assert churn[raw["PaymentMethod"] == "Electronic check"].mean() > churn.mean()
    short = raw["tenure"].astype(int) <= 6
    assert churn[short].mean() > churn[~short].mean()
    no_net = raw["InternetService"] == "No"
    assert (raw.loc[no_net, "OnlineSecurity"] == "No internet service").all()
    assert (raw.loc[raw["PhoneService"] == "No", "MultipleLines"] == "No phone service").all()
    tenure = raw["tenure"].astype(float)
    total = pd.to_numeric(raw["TotalCharges"], errors="coerce")
    ratio = (total / (tenure * raw["MonthlyCharges"].astype(float)))[tenure > 0]
    assert ratio.between(0.85, 1.15).mean() > 0.99
    assert (raw.loc[tenure == 0, "TotalCharges"] == " ").all()


def test_the_generator_is_seeded():
    a, _ = generate(500, seed=3)
    b, _ = generate(500, seed=3)
    c, _ = generate(500, seed=4)
    assert a.equals(b) and not a.equals(c)


def test_drift_raises_prices_and_shifts_contracts_and_churn():
    base, _ = generate(30000, seed=5)
    drifted, _ = generate(30000, seed=5, drift=1.0)
    assert drifted["MonthlyCharges"].astype(float).mean() > \
        1.1 * base["MonthlyCharges"].astype(float).mean()
    assert (drifted["Contract"] == "Month-to-month").mean() > \
        (base["Contract"] == "Month-to-month").mean()
    assert (drifted["Churn"] == "Yes").mean() > (base["Churn"] == "Yes").mean() + 0.05


@pytest.mark.parametrize("column,value,message", [
    ("Contract", "Weekly", "unknown category 'Weekly'"),
    ("gender", "F", "unknown category 'F'"),
    ("SeniorCitizen", "2", "expected 0 or 1, got '2'"),
    ("tenure", "abc", "expected whole months 0-72, got 'abc'"),
    ("tenure", "80", "expected whole months 0-72, got '80'"),
    ("tenure", "3.5", "expected whole months"),
    ("MonthlyCharges", "lots", "bad number 'lots'"),
    ("TotalCharges", "n/a", "bad number 'n/a'"),
    ("TotalCharges", " ", "blank, but tenure is not 0"),
    ("MonthlyCharges", "inf", "'inf' is not a finite number"),
    ("MonthlyCharges", "-Infinity", "'-Infinity' is not a finite number"),
    ("TotalCharges", "1e999", "'1e999' is not a finite number"),
    ("TotalCharges", "1e308", "'1e308' is beyond the bound for charges (1e+09)"),
    ("MonthlyCharges", "2e9", "'2e9' is beyond the bound for charges (1e+09)"),
    ("tenure", "inf", "'inf' is not a finite number"),
    ("tenure", "1e12", "expected whole months 0-72, got '1e12'"),
    ("Churn", "Maybe", "unknown value 'Maybe'"),
    ("customerID", "", "empty customerID"),
])
def test_each_defect_is_reported_with_its_csv_line(column, value, message):
    problems = validate(read_raw(GOLDEN).pipe(_set, 3, column, value))
    assert len(problems) == 1
    assert (problems[0].line, problems[0].column) == (5, column)  # header + 0-based row 3
    assert message in problems[0].message


def _set(df, row, column, value):
    df.loc[row, column] = value
    return df


def test_a_duplicate_id_names_the_first_line():
    raw = read_raw(GOLDEN)
    raw.loc[5, "customerID"] = raw.loc[1, "customerID"]
    (problem,) = validate(raw)
    assert problem.line == 7 and "duplicate customerID '5575-GNVDE' (first on line 3)" in \
        problem.message


def test_every_problem_is_reported_at_once_and_training_refuses(tmp_path):
    raw = read_raw(GOLDEN)
    raw.loc[0, "Contract"] = "Weekly"
    raw.loc[4, "tenure"] = "-1"
    raw.drop(columns=["PaymentMethod"]).to_csv(tmp_path / "missing.csv", index=False)
    raw.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(DataError) as err:
        load_csv(tmp_path / "two.csv")
    assert [(p.line, p.column) for p in err.value.problems] == [(2, "Contract"), (6, "tenure")]
    assert "2 problem(s)" in str(err.value)
    with pytest.raises(DataError, match="PaymentMethod: missing column"):
        load_csv(tmp_path / "missing.csv")


def test_scoring_input_may_omit_the_label():
    raw = read_raw(GOLDEN).drop(columns=["Churn"])
    assert validate(raw, require_target=False) == []
    assert [str(p) for p in validate(raw)] == ["file, Churn: missing column"]


def test_training_refuses_a_non_finite_charge_naming_the_line_and_column(tmp_path):
    raw = read_raw(GOLDEN)
    raw.loc[3, "MonthlyCharges"] = "inf"
    raw.to_csv(tmp_path / "inf.csv", index=False)
    with pytest.raises(DataError, match="line 5, MonthlyCharges: 'inf' is not a finite "
                                        "number"):
        load_csv(tmp_path / "inf.csv")
