"""Bad input to `podium score`: a malformed file and a missing column give the same one clear
refusal from both engines, before any model is loaded; the Spark engine also reads a
directory of files and a table of the session's catalog."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from training.data import generate
from webhook_server.cli import main

pytestmark = pytest.mark.spark

URI = "runs:/0123456789abcdef/model"  # never loaded: the input is refused first


@pytest.fixture
def no_model(monkeypatch):
    import training.score

    def refuse(uri):  # the local engine loads the model before reading: never this one
        return (lambda X: pytest.fail("a refused input was scored")), uri

    monkeypatch.setattr(training.score, "load_predictor", refuse)


def _score(tmp_path, sqlite_url, engine: str, source) -> tuple[int, str]:
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log")}
    result = CliRunner().invoke(main, ["score", "--engine", engine, "--model-uri", URI,
                                       "--input", str(source), "--output",
                                       str(tmp_path / f"{engine}.csv")], env=env)
    error = result.stderr[result.stderr.index("Error: "):]  # after the progress lines
    return result.exit_code, error.strip()


def test_score_refuses_a_malformed_parquet_file_in_one_line_on_both_engines(
        spark, tmp_path, sqlite_url, no_model):
    bad = tmp_path / "customers.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file at all")
    lines = {}
    for engine in ("local", "spark"):
        code, lines[engine] = _score(tmp_path, sqlite_url, engine, bad)
        assert code == 1
    for line in lines.values():
        assert "\n" not in line
        assert line.startswith(f"Error: {bad}: cannot be read as Parquet (")
    assert not (tmp_path / "log").exists()


def test_score_names_a_missing_column_the_same_on_both_engines(spark, tmp_path, sqlite_url,
                                                               no_model):
    raw, _ = generate(20, seed=3)
    path = tmp_path / "customers.csv"
    raw.drop(columns=["Churn", "tenure"]).to_csv(path, index=False)
    lines = {engine: _score(tmp_path, sqlite_url, engine, path) for engine in ("local", "spark")}
    assert lines["local"] == lines["spark"] == (
        1, f"Error: {path}: 1 problem(s)\n  file, tenure: missing column")


def test_spark_engine_reads_a_directory_and_a_catalog_table(spark, tmp_path):
    from training.spark_io import read_text

    raw, _ = generate(30, seed=4)
    (tmp_path / "parts").mkdir()
    raw[:10].to_parquet(tmp_path / "parts" / "a.parquet")
    raw[10:].to_parquet(tmp_path / "parts" / "b.parquet")
    frame = read_text(spark, str(tmp_path / "parts"))
    assert frame.count() == 30 and dict(frame.dtypes)["tenure"] == "string"
    spark.createDataFrame(raw.astype(str)).createOrReplaceTempView("podium_customers")
    assert read_text(spark, "podium_customers").count() == 30
    from training.input_file import InputError

    with pytest.raises(InputError, match="^nowhere_table: no such file, directory or table$"):
        read_text(spark, "nowhere_table")


def test_score_takes_the_engine_from_the_policys_scoring_section(spark, tmp_path, sqlite_url,
                                                                 no_model):
    """Without --engine, `scoring.engine: spark` for the model runs the Spark engine (it
    reads a directory, which the local engine refuses)."""
    raw, _ = generate(20, seed=3)
    (tmp_path / "parts").mkdir()
    raw.drop(columns=["Churn", "tenure"]).to_parquet(tmp_path / "parts" / "a.parquet")
    policy = tmp_path / "podium.yaml"
    policy.write_text("models:\n  churn:\n    scoring:\n      engine: spark\n")
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log"), "PODIUM_POLICY": str(policy)}
    result = CliRunner().invoke(main, ["score", "--model-uri", "models:/churn/1", "--input",
                                       str(tmp_path / "parts"), "--output",
                                       str(tmp_path / "out.csv"), "--no-log"], env=env)
    assert result.exit_code == 1
    assert "(churn/1, spark engine)" in result.stderr
    assert result.stderr.strip().endswith("file, tenure: missing column")
