"""Every command that reads a file refuses a bad one in one line, exit status non-zero,
no traceback: not UTF-8, a CSV ending inside a quote, /dev/zero, a FIFO, a directory, a
file over PODIUM_MAX_INPUT_BYTES, a Parquet file that is not one."""

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.unit.monitoring.logdata import outcomes
from training.input_file import InputError, check, reading
from webhook_server.cli import main


@pytest.fixture
def env(sqlite_url, tmp_path):
    return {"PODIUM_DATABASE_URL": sqlite_url, "PODIUM_INFERENCE_LOG": str(tmp_path / "log")}


def labels(env, path, **extra):
    return CliRunner().invoke(main, ["labels", "--model", "churn", "--input", str(path)],
                              env={**env, **extra})


def one_line_error(result, code, text):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("Error")]
    assert text in line, result.output
    return line


def test_a_file_that_is_not_utf8_is_one_line(env, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("customerID,Churn\nc1,Yes\nJos\xe9,No\n".encode("latin-1"))
    line = one_line_error(labels(env, path), 1, "not UTF-8 text (byte 0xe9")
    assert str(path) in line


def test_a_csv_ending_inside_a_quote_is_one_line(env, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('customerID,Churn\nc1,Yes\n"c2,No\n')
    one_line_error(labels(env, path), 1, "not a well-formed CSV (EOF inside string")


@pytest.mark.parametrize("make,text", [
    (lambda tmp: "/dev/zero", "is a device, not a regular file"),
    (lambda tmp: str(tmp), "is a directory, not a file"),
    (lambda tmp: (os.mkfifo(tmp / "fifo"), str(tmp / "fifo"))[1], "is a FIFO, not a regular"),
    (lambda tmp: str(tmp / "absent.csv"), "no such file"),
])
def test_what_is_not_a_regular_file_is_refused_before_reading(env, tmp_path, make, text):
    one_line_error(labels(env, make(tmp_path)), 2, text)


def test_dev_zero_does_not_hang_the_real_command(sqlite_url, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", "labels", "--model",
                           "churn", "--input", "/dev/zero"],
                          env={"PODIUM_DATABASE_URL": sqlite_url, "PATH": "",
                               "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "/dev/zero: is a device, not a regular file" in proc.stderr


def test_a_file_over_the_limit_is_refused(env, tmp_path):
    path = outcomes(tmp_path / "o.csv", [("c1", "Yes", "2026-06-05")])
    one_line_error(labels(env, path, PODIUM_MAX_INPUT_BYTES="10"), 2,
                   "is over the limit of 10 bytes (PODIUM_MAX_INPUT_BYTES)")


def test_a_parquet_file_that_is_not_one_is_one_line(env, tmp_path):
    path = tmp_path / "o.parquet"
    path.write_text("customerID,Churn\nc1,Yes\n")
    one_line_error(labels(env, path), 1, "cannot be read as Parquet")


def test_score_and_train_readers_say_the_same(tmp_path):
    """The readers behind `podium score --input` and `podium train --data`."""
    from training.score import score_file
    from training.train import Dataset

    path = tmp_path / "in.csv"
    path.write_bytes(b"customerID,gender\n\xff\xfe,Male\n")
    with pytest.raises(InputError, match="not UTF-8 text"), reading(path):
        score_file(lambda X: X, path, tmp_path / "out.csv", model_version="m/1")
    with pytest.raises(InputError, match="not UTF-8 text"), reading(path):
        Dataset.from_csv(path)
    with pytest.raises(InputError, match="is a device"):
        check("/dev/zero")
