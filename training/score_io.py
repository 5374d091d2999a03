"""`podium score`'s reading and writing: the input as text, in chunks of ``chunk_rows`` rows
(CSV or Parquet), and the output files, appended chunk after chunk.

The frames read and the files written are those of pandas (``read_csv(dtype=str)``,
``DataFrame.to_csv``); Arrow does the work wherever it gives the same result, pandas the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from training import data as churn_data


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def read_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of the input as strings (the validator's view of a CSV)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield _parquet_text(batch)
        return
    yield from _csv_chunks(path, chunk_rows)


def _parquet_text(batch) -> pd.DataFrame:
    """A Parquet batch as text. Numbers come from the Arrow column (pandas turns integers
    with missing values into floats)."""
    import pyarrow as pa

    frame = batch.to_pandas()
    names = batch.schema.names
    out = {}
    for i, name in enumerate(frame.columns):
        column = frame.iloc[:, i]
        values = batch.column(name) if isinstance(name, str) and names.count(name) == 1 else None
        if (values is not None and column.dtype.kind in "fiu"
                and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type))):
            out[i] = _number_text(values, column.index)
        else:
            out[i] = _as_text(column)
    text = pd.concat(out, axis=1) if out else frame
    text.columns = frame.columns
    return text


def _as_text(column: pd.Series) -> pd.Series:
    if column.dtype.kind in "fi":
        import pyarrow as pa

        return _number_text(pa.array(column, from_pandas=True), column.index)
    return column.fillna("").astype(str)


def _number_text(values, index: pd.Index) -> pd.Series:
    """Numbers in their shortest exact form (72, not 72.0; 12345.67, not 12345.7), missing
    values (and NaN) blank."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.if_else(pc.is_null(values, nan_is_null=True), "",
                      pc.cast(values, pa.large_string())).to_pandas()
    text.index = index
    return text


# --- CSV in: Arrow's streaming reader, pandas' result -------------------------------------

_CSV_BLOCK_BYTES = 256 << 10  # Arrow reads ahead a few blocks: larger ones cost memory


class _NotAsPandas(Exception):
    """Arrow would not read this file as ``pandas.read_csv`` does (its header, its end)."""


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """``churn_data.read_raw(path, chunksize=chunk_rows)``, read by Arrow (~5x faster).

    Same frames: all columns strings, exactly ``chunk_rows`` rows a chunk, the index running
    on across chunks. Where Arrow cannot read a row as pandas would (a row with too few or too
    many fields, bad UTF-8, an unusual header, a quote left open at the end: anything Arrow
    refuses or may read otherwise), pandas reads the file from the first row not yet yielded,
    and gives its own rows or its own error. One difference is known: lines ended by CR alone,
    a blank line, then a line beginning with an empty field: pandas drops that field (shifting
    the line's values left), Arrow reads the line as written."""
    import pyarrow as pa

    yielded = 0
    tables = _arrow_csv_tables(path, chunk_rows)
    while True:
        try:
            table = next(tables)
        except StopIteration:
            return
        except (pa.ArrowException, _NotAsPandas):
            break
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(yielded, yielded + len(frame))
        yield frame
        yielded += len(frame)
    # Only full chunks were yielded: pandas' chunk i starts at row i * chunk_rows too.
    for i, frame in enumerate(churn_data.read_raw(path, chunksize=chunk_rows)):
        if i * chunk_rows >= yielded:
            yield frame


def _arrow_csv_tables(path: Path, chunk_rows: int):
    """The CSV in tables of exactly ``chunk_rows`` rows (the last may be shorter; one empty
    table for a header-only file, as pandas gives one empty frame). The last is yielded once
    the file is read to its end, and checked (see ``_may_end_in_open_quote``)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # pandas' own reading of the header (and its errors: no file, an empty file).
    names = list(churn_data.read_raw(path, nrows=0).columns)
    if len(names) < 2:
        raise _NotAsPandas  # pandas skips lines of blanks: here Arrow reads them as values
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.large_string() for name in names}, null_values=[],
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    schema = reader.schema
    if schema.names != names or any(t != pa.large_string() for t in schema.types):
        raise _NotAsPandas  # e.g. duplicate or blank names, which pandas renames
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        if _may_miss_a_line_feed(batch):
            raise _NotAsPandas
        pending.append(batch)
        rows += batch.num_rows
        while rows > chunk_rows:  # not the last chunk: rows follow it
            table = pa.Table.from_batches(pending, schema)
            yield table.slice(0, chunk_rows)
            rest = table.slice(chunk_rows)
            pending, rows = rest.to_batches(), rest.num_rows
    last = pa.Table.from_batches(pending, schema)  # 1 to chunk_rows rows, or none at all
    if _may_end_in_open_quote(path, last):
        raise _NotAsPandas
    yield last


def _may_miss_a_line_feed(batch) -> bool:
    """Whether a value holds a CR not followed by LF. Arrow (pyarrow 25.0.1 at least,
    apache/arrow#51368) silently drops the LF of a quoted CRLF split between two of its
    blocks, leaving such a value; pandas reads the (rare) values with a lone CR."""
    import pyarrow.compute as pc

    for column in batch.columns:
        data = column.buffers()[2]  # the values' bytes, end to end: a quick first look
        if (data is not None and data.to_pybytes().find(b"\r") != -1
                and pc.any(pc.match_substring_regex(column, "\r([^\n]|$)")).as_py()):
            return True
    return False


def _may_end_in_open_quote(path: Path, last) -> bool:
    """Whether the file may end inside a quoted value: pandas refuses it ("EOF inside
    string"), Arrow reads a value running to the end of the file, the last of the last row.
    The file then ends with a quote and that value, its quotes doubled. (A few files whose
    last value is closed end so too: pandas reads those, as Arrow would have.)"""
    if not last.num_rows:
        return False
    value = last.column(last.num_columns - 1)[-1].as_py()
    tail = b'"' + value.replace('"', '""').encode()
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size < len(tail):
            return False
        file.seek(size - len(tail))
        return file.read() == tail


# --- output: pandas' text, Arrow's writers ------------------------------------------------

_CSV_SLICE_ROWS = 16_384

class _Writer:
    """Chunks of one output file. CSV: the bytes ``DataFrame.to_csv`` writes, appending chunk
    after chunk; written by Arrow (~20x faster) when it can write them the same, else by
    pandas (values that need quotes, such as rejection reasons; unusual column types)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parquet = None
        self._csv = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if _is_parquet(self.path):
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            elif not table.schema.equals(self._parquet.schema):
                table = table.cast(self._parquet.schema)
            self._parquet.write_table(table)
        else:
            if self._csv is None:
                self._csv = open(self.path, "wb")  # noqa: SIM115  (closed in close())
            if self._first:
                self._csv.write(frame.iloc[:0].to_csv(index=False).encode())
            _write_csv_rows(frame, self._csv)
        self._first = False

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()
        elif self._first:  # nothing written: still leave a file (empty)
            self.path.write_text("")


def _write_csv_rows(frame: pd.DataFrame, file) -> None:
    """Append ``frame.to_csv(index=False, header=False)`` to ``file``. Arrow writes the slices
    of rows it writes the same; pandas writes the others (rows with values that need quotes;
    every row when a column is of a type Arrow writes differently)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = _arrow_csv_table(frame)
    if table is None:
        file.write(frame.to_csv(index=False, header=False).encode())
        return
    # "none": Arrow refuses values with a delimiter, quote or line end; pandas quotes them.
    options = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=4096)
    for start in range(0, len(frame), _CSV_SLICE_ROWS):
        sink = pa.BufferOutputStream()
        try:
            pacsv.write_csv(table.slice(start, _CSV_SLICE_ROWS), sink, options)
        except pa.ArrowInvalid:
            rows = frame.iloc[start:start + _CSV_SLICE_ROWS]
            file.write(rows.to_csv(index=False, header=False).encode())
        else:
            file.write(sink.getvalue())


def _arrow_csv_table(frame: pd.DataFrame):
    """The columns as Arrow writes them in pandas' CSV text, or None."""
    import pyarrow as pa

    if frame.shape[1] < 2 or os.linesep != "\n":  # pandas quotes a lone empty field
        return None
    columns = []
    for i in range(frame.shape[1]):
        column = _arrow_csv_column(frame.iloc[:, i])
        if column is None:
            return None
        columns.append(column)
    return pa.Table.from_arrays(columns, names=[str(i) for i in range(len(columns))])


def _arrow_csv_column(column: pd.Series):
    """The column as Arrow writes it in pandas' CSV text, or None (pandas must write it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        try:  # missing -> null -> blank, as na_rep=""
            values = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all strings
            return None
        ok = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        return values if ok or pa.types.is_null(values.type) else None
    if not isinstance(dtype, np.dtype):
        return None
    if dtype.kind in "iu":
        return pa.array(column.to_numpy())
    if dtype == np.float64:  # pandas writes repr(); Arrow's text is the same in [1e-4, 1)
        values = column.to_numpy()
        text = pc.cast(pa.array(values, from_pandas=True), pa.large_string())
        with np.errstate(invalid="ignore"):
            other = ~((np.abs(values) >= 1e-4) & (np.abs(values) < 1)) & ~np.isnan(values)
        if other.any():
            text = pc.replace_with_mask(text, pa.array(other),
                                        pa.array(values[other].astype(str), pa.large_string()))
        return text
    return None
