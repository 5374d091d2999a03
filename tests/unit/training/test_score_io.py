"""`podium score` reading and writing: the text the validator sees and the files written are
what pandas reads and writes, whichever reader or writer does the work."""

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training import score, score_io
from training.data import generate, read_raw
from training.score import score_file
from training.score_io import read_chunks


def fake_predict(X: pd.DataFrame) -> np.ndarray:
    return (1 - X["tenure"].to_numpy() / 72).clip(0, 1)


def _typed(raw: pd.DataFrame) -> pd.DataFrame:
    """The layout with the numbers as int64/float64 columns (blank TotalCharges missing), as
    most Parquet files carry them."""
    out = raw.copy()
    for column, dtype in (("SeniorCitizen", "int64"), ("tenure", "int64"),
                          ("MonthlyCharges", "float64"), ("TotalCharges", "float64")):
        out[column] = pd.to_numeric(raw[column].str.strip().replace("", None)).astype(dtype)
    return out


def test_numbers_in_a_parquet_file_keep_every_digit(tmp_path):
    raw, _ = generate(10, seed=5)
    typed = _typed(raw.drop(columns=["Churn"]))
    typed.loc[0, ["tenure", "TotalCharges"]] = [72, 12345.67]
    typed.loc[1, "TotalCharges"] = 1234567.891
    typed.loc[2, "MonthlyCharges"] = -1234.5678  # rejected: the reason quotes the value
    typed.index = typed.index * 10 + 5  # stored in the file, restored by pandas
    typed.to_parquet(tmp_path / "in.parquet")
    report = score_file(fake_predict, tmp_path / "in.parquet", tmp_path / "out.csv",
                        model_version="v", chunk_rows=4)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(out["TotalCharges"][:2]) == ["12345.67", "1234567.891"]
    rejects = pd.read_csv(report.rejects, dtype=str, keep_default_na=False)
    assert list(rejects["reject_reason"]) == ["MonthlyCharges: bad number '-1234.5678'"]


def test_text_of_parquet_numbers_round_trips_and_missing_is_blank(tmp_path):
    values = [0.1, 0.1 + 0.2, 72.0, -0.0, 1e-05, 123456789.125, 2.0 ** 60, np.nan, np.inf]
    table = pa.table({"f": pa.array(values), "f32": pa.array(values, pa.float32()),
                      "i": pa.array([1, None, 3, -4, 2 ** 62, 0, 7, 8, 9], pa.int64()),
                      "s": pa.array(["a", None, "", " b ", "c", "d", "e", "f", "g"])})
    pq.write_table(table, tmp_path / "in.parquet")
    (chunk,) = read_chunks(tmp_path / "in.parquet", 100)
    assert list(chunk["f"]) == ["0.1", "0.30000000000000004", "72", "-0", "0.00001",
                                "123456789.125", "1.152921504606847e+18", "", "inf"]
    assert [float(v) for v in chunk["f"][:7]] == values[:7]
    assert [np.float32(v) for v in chunk["f32"][:7]] == list(np.float32(values[:7]))
    assert list(chunk["i"]) == ["1", "", "3", "-4", str(2 ** 62), "0", "7", "8", "9"]
    assert list(chunk["s"]) == ["a", "", "", " b ", "c", "d", "e", "f", "g"]


# --- CSV in: the frames (or the error) pandas.read_csv gives ------------------------------

def _pandas_chunks(path, chunk_rows):
    try:
        return list(read_raw(path, chunksize=chunk_rows))
    except Exception as e:  # noqa: BLE001  (whatever pandas raises, read_chunks must too)
        return e


def _our_chunks(path, chunk_rows):
    try:
        return list(read_chunks(path, chunk_rows))
    except Exception as e:  # noqa: BLE001
        return e


def _assert_same_reading(path, chunk_rows):
    expected, got = _pandas_chunks(path, chunk_rows), _our_chunks(path, chunk_rows)
    if isinstance(expected, Exception):
        assert (type(got), str(got)) == (type(expected), str(expected)), path.read_bytes()
        return
    assert not isinstance(got, Exception), (got, path.read_bytes())
    assert len(got) == len(expected), path.read_bytes()
    for a, b in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(a, b)


_FIELDS = ["a", "1.5", "b c", "", " ", " x ", '"q"', '"a,b"', '"x""y"', '"l1\nl2"', 'ab"c',
           '"a"b', "é", '"\r\n"', "a\x00b"]


def _random_csv(rng) -> bytes:
    header = rng.choice(["a,b,c", "a,b,c", "a,b,c", '"a","b",c', "a,a,b", "a,,c", "\ufeffa,b,c",
                         "a,b"])
    end = rng.choice(["\n", "\n", "\r\n", "\r"])
    lines = [header]
    for _ in range(rng.integers(0, 12)):
        kind = rng.random()
        if kind < 0.04:
            lines.append(rng.choice(["", " ", "a,b", "a,b,c,d", '"open,b,c']))
        else:
            lines.append(",".join(rng.choice(_FIELDS) for _ in range(3)))
    text = end.join(lines) + (end if rng.random() < 0.8 else "")
    data = text.encode()
    if rng.random() < 0.03:
        data = data + b"\xff,b,c\n"
    return data if rng.random() > 0.01 else b""


def test_csv_chunks_are_the_frames_or_the_error_pandas_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(score_io, "_CSV_BLOCK_BYTES", 64)  # batches straddle chunks; long rows
    rng = np.random.default_rng(0)
    path = tmp_path / "in.csv"
    for _ in range(250):
        path.write_bytes(_random_csv(rng))
        for chunk_rows in (1, 4, 100):
            _assert_same_reading(path, chunk_rows)


def test_arrow_reads_files_it_reads_as_pandas_does(tmp_path, monkeypatch):
    """The fast path is taken (pandas reads nothing but the header) and gives pandas' frames,
    the index running on across chunks, quoted commas and line breaks included."""
    raw, _ = generate(1000, seed=6)
    raw.loc[5, "customerID"] = "0006,with comma"
    raw.loc[600, "customerID"] = 'quote " and\nline break'
    raw.to_csv(tmp_path / "in.csv", index=False)
    calls = []
    real = score_io.churn_data.read_raw
    monkeypatch.setattr(score_io.churn_data, "read_raw",
                        lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    _assert_same_reading(tmp_path / "in.csv", 300)
    assert calls and all(c == {"nrows": 0} for c in calls)  # pandas read the header only
    chunks = list(read_chunks(tmp_path / "in.csv", 300))
    assert [c.index[0] for c in chunks] == [0, 300, 600, 900]


def test_a_bad_row_in_a_later_chunk_fails_as_pandas_does_after_the_rows_before(tmp_path):
    raw, _ = generate(10, seed=6)
    text = raw.to_csv(index=False).splitlines()
    text[8] += ",extra"  # data row 8: one field too many
    (tmp_path / "in.csv").write_text("\n".join(text) + "\n")
    chunks = read_chunks(tmp_path / "in.csv", 3)
    assert [len(next(chunks)) for _ in range(2)] == [3, 3]
    with pytest.raises(pd.errors.ParserError, match="Expected 21 fields in line 9, saw 22"):
        next(chunks)


@pytest.mark.parametrize("end", [b"", b"\n", b"\r\n"])
def test_a_quote_left_open_at_the_end_fails_as_pandas_does(tmp_path, end):
    """Arrow reads the rest of the file as one value; pandas refuses it."""
    raw, _ = generate(10, seed=6)
    text = raw.to_csv(index=False).encode() + b"y," * 19  # a last row: 19 fields, then 2
    path = tmp_path / "in.csv"
    for tail in (b'x,"open', b'x,"open ""quoted"" text', b'x,"', b'x,"a\nb,c'):
        path.write_bytes(text + tail + end)
        for chunk_rows in (3, 11, 100):
            _assert_same_reading(path, chunk_rows)
        with pytest.raises(pd.errors.ParserError, match="EOF inside string"):
            list(read_chunks(path, 11))


def test_a_one_column_file_skips_lines_of_blanks_as_pandas_does(tmp_path):
    (tmp_path / "in.csv").write_bytes(b"a;b;c\r\nx\r\n\t\r\n \r\ny\r\n")
    _assert_same_reading(tmp_path / "in.csv", 1)
    assert [list(c["a;b;c"]) for c in read_chunks(tmp_path / "in.csv", 5)] == [["x", "y"]]


def test_a_quoted_line_break_split_between_arrow_blocks_is_read_whole(tmp_path, monkeypatch):
    """Arrow drops the LF of a quoted CRLF split between two of its blocks (apache/arrow
    #51368): every block size, so that the split falls between the CR and the LF once."""
    path = tmp_path / "in.csv"
    path.write_bytes(b'a,b\r\nxx,"1\r\n2"\r\nyy,"3\r\n"\r\nzz,z\r\n')
    for block in range(8, 40):
        monkeypatch.setattr(score_io, "_CSV_BLOCK_BYTES", block)
        _assert_same_reading(path, 2)


# --- CSV out: the bytes DataFrame.to_csv writes -------------------------------------------

def _pandas_file(frames) -> bytes:
    return b"".join(f.to_csv(index=False, header=i == 0).encode() for i, f in enumerate(frames))


def _written(path, frames) -> bytes:
    w = score_io._Writer(path)
    for f in frames:
        w.write(f)
    w.close()
    return path.read_bytes()


def test_csv_output_is_the_bytes_pandas_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(score_io, "_CSV_SLICE_ROWS", 100)  # Arrow's and pandas' slices mixed
    rng = np.random.default_rng(1)
    n = 20_000
    probability = np.concatenate([rng.random(n - 12), [0.0, 1.0, 1e-05, 9.99e-5, 1e-4, 0.5,
                                                       np.nan, np.inf, -0.25, 3.0, 1e16, 0.1]])
    probability[:500] = 10.0 ** rng.uniform(-9, 20, 500)
    text = rng.choice(["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", " pad ", "é"],
                      n, p=[0.9965, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005])
    frame = pd.DataFrame({"id": pd.Series(np.arange(n).astype(str), dtype="str"),
                          "text": pd.Series(text, dtype="str"), "p": probability,
                          "flag": (probability > 0.5).astype(np.int8),
                          "version": "churn/3"})
    clean = frame[~frame["text"].str.contains('[,"\r\n]', regex=True)]
    frames = [clean.iloc[:7000], frame.iloc[7000:14000], clean.iloc[7000:]]
    assert _written(tmp_path / "out.csv", frames) == _pandas_file(frames)
    odd = pd.DataFrame({"object": ["x", None, "y"], "missing": [None, "b", np.nan],
                        "f32": np.float32([0.1, 2, np.nan]), "b": [True, False, True],
                        "n": pd.array([1, None, 3], dtype="Int64"), "u": np.uint64([1, 2, 3])})
    assert _written(tmp_path / "odd.csv", [odd, odd]) == _pandas_file([odd, odd])
    lone = pd.DataFrame({"a": pd.Series(["", "x"], dtype="str")})  # pandas writes ""
    assert _written(tmp_path / "lone.csv", [lone]) == _pandas_file([lone]) == b'a\n""\nx\n'


def test_an_output_with_no_rows_is_an_empty_file(tmp_path):
    w = score_io._Writer(tmp_path / "out.csv")
    w.close()
    assert (tmp_path / "out.csv").read_bytes() == b""


# --- end to end: the same files as with pandas doing all the reading and writing ---------

def _pandas_only(monkeypatch):
    def refuse(*_a, **_kw):
        raise score_io._NotAsPandas
        yield

    monkeypatch.setattr(score_io, "_arrow_csv_tables", refuse)
    monkeypatch.setattr(score_io, "_arrow_csv_table", lambda frame: None)


@pytest.mark.parametrize("chunk_rows", [37, 97, 300, 5000])
def test_score_file_writes_what_pandas_alone_writes(tmp_path, monkeypatch, chunk_rows):
    raw, _ = generate(1000, seed=3)
    raw = raw.drop(columns=["Churn"])
    raw.loc[10, "Contract"] = "Weekly"
    raw.loc[301, "tenure"] = "abc"
    raw.loc[303, "customerID"] = raw.loc[302, "customerID"]  # duplicate within a chunk
    raw.loc[900, "customerID"] = raw.loc[5, "customerID"]  # in another chunk
    raw.loc[400, "customerID"] = "0401,comma"
    raw.loc[401, "PaymentMethod"] = "Cash,\nin hand"
    (tmp_path / "in.csv").write_bytes(raw.to_csv(index=False, lineterminator="\r\n").encode())
    report = score_file(fake_predict, tmp_path / "in.csv", tmp_path / "fast.csv",
                        model_version="churn/1", chunk_rows=chunk_rows)
    _pandas_only(monkeypatch)
    expected = score_file(fake_predict, tmp_path / "in.csv", tmp_path / "slow.csv",
                          model_version="churn/1", chunk_rows=chunk_rows)
    assert (report.rows, report.scored, report.rejected) == (
        expected.rows, expected.scored, expected.rejected)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "slow.csv").read_bytes()
    assert Path(report.rejects).read_bytes() == Path(expected.rejects).read_bytes()
    assert report.rejected >= 4


def test_a_header_only_file_gives_an_empty_output_and_no_rejects(tmp_path):
    raw, _ = generate(3, seed=3)
    raw.drop(columns=["Churn"]).iloc[:0].to_csv(tmp_path / "in.csv", index=False)
    report = score_file(fake_predict, tmp_path / "in.csv", tmp_path / "out.csv",
                        model_version="v")
    assert (report.rows, report.rejects) == (0, None)
    assert (tmp_path / "out.csv").read_bytes() == b""


# --- the threads: same files, errors where they were, no thread left behind ---------------

def _threads_left():
    return [t.name for t in threading.enumerate() if t.name.startswith("podium-score")]


def _bad_file(tmp_path, bad_row: int) -> Path:
    raw, _ = generate(50, seed=8)
    text = raw.drop(columns=["Churn"]).to_csv(index=False).splitlines()
    text[bad_row + 1] += ",extra"
    path = tmp_path / "in.csv"
    path.write_text("\n".join(text) + "\n")
    return path


@pytest.mark.parametrize("threads", [True, False])
def test_a_read_error_comes_after_the_chunks_before_it_are_written(tmp_path, monkeypatch,
                                                                   threads):
    monkeypatch.setattr(score, "_THREADS", threads)
    path = _bad_file(tmp_path, 23)
    with pytest.raises(pd.errors.ParserError, match="Expected 20 fields in line 25, saw 21"):
        score_file(fake_predict, path, tmp_path / "out.csv", model_version="v", chunk_rows=10)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert len(out) == 20 and not _threads_left()


def test_a_model_error_stops_the_reading(tmp_path):
    raw, _ = generate(50, seed=8)
    raw.to_csv(tmp_path / "in.csv", index=False)
    calls = []

    def failing(X):
        calls.append(len(X))
        if len(calls) == 2:
            raise RuntimeError("model down")
        return fake_predict(X)

    with pytest.raises(RuntimeError, match="model down"):
        score_file(failing, tmp_path / "in.csv", tmp_path / "out.csv", model_version="v",
                   chunk_rows=10)
    assert calls == [10, 10] and not _threads_left()
    assert len(pd.read_csv(tmp_path / "out.csv")) == 10


def test_a_write_error_is_raised_and_nothing_after_it_is_written(tmp_path, monkeypatch):
    raw, _ = generate(50, seed=8)
    raw.to_csv(tmp_path / "in.csv", index=False)
    real, writes = score_io._Writer.write, []

    def failing(self, frame):
        writes.append(len(frame))
        if len(writes) == 2:
            raise OSError("disk full")
        real(self, frame)

    monkeypatch.setattr(score_io._Writer, "write", failing)
    with pytest.raises(OSError, match="disk full"):
        score_file(fake_predict, tmp_path / "in.csv", tmp_path / "out.csv", model_version="v",
                   chunk_rows=10)
    assert writes == [10, 10] and not _threads_left()
    assert len(pd.read_csv(tmp_path / "out.csv")) == 10


def test_threads_change_nothing_in_the_files(tmp_path, monkeypatch):
    raw, _ = generate(2000, seed=9)
    raw = raw.drop(columns=["Churn"])
    raw.loc[[3, 1500], "Contract"] = "Weekly"
    raw.to_csv(tmp_path / "in.csv", index=False)
    _typed(raw).to_parquet(tmp_path / "in.parquet")
    for src in ("in.csv", "in.parquet"):
        for threads in (True, False):
            monkeypatch.setattr(score, "_THREADS", threads)
            score_file(fake_predict, tmp_path / src, tmp_path / f"{threads}-{src}",
                       model_version="v", chunk_rows=300)
        assert (tmp_path / f"True-{src}").read_bytes() == (tmp_path / f"False-{src}").read_bytes()
        rejects = [(tmp_path / f"{t}-{Path(src).stem}.rejects.csv").read_bytes()
                   for t in (True, False)]
        assert rejects[0] == rejects[1] and rejects[0].count(b"Weekly") == 4  # value, reason
