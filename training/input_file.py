"""The files the commands read (``podium labels --input``, ``podium score --input``,
``podium drift --input``, ``podium train --data``), refused in one line when they cannot be:
not a regular file (a directory, ``/dev/zero``, a FIFO or a socket would hang or be
endless), larger than the limit (``PODIUM_MAX_INPUT_BYTES``), unreadable, not UTF-8, a CSV
that breaks off inside a quoted field, a Parquet file that is not one.

``check(path, max_bytes)`` looks before reading; ``reading(path)`` turns what a reader
raises into ``InputError`` with the file's name and the cause, never a traceback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_MAX_BYTES = 16 << 30  # 16 GiB


class InputError(ValueError):
    """The input file cannot be read; the message is one line."""


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def check(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """``path`` when it is a readable regular file of at most ``max_bytes``; else
    ``InputError`` saying why (without opening it: a FIFO would block)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{p}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket"
                if stat.S_ISSOCK(st.st_mode) else "a device")
        raise InputError(f"{p}: is {kind}, not a regular file")
    if st.st_size > max_bytes:
        raise InputError(f"{p}: {_size(st.st_size)} is over the limit of {_size(max_bytes)} "
                         "(PODIUM_MAX_INPUT_BYTES)")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: cannot be read (permission denied)")
    return p


@contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Errors of reading ``path`` (encoding, CSV syntax, Parquet, I/O) as ``InputError``."""
    import pandas as pd
    import pyarrow as pa

    try:
        yield
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start:exc.start + 1].hex() if exc.object else "?"
        raise InputError(f"{path}: not UTF-8 text (byte 0x{byte} cannot be decoded); save "
                         "it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (no header line)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a well-formed CSV ({_first_line(exc)})") from None
    except pa.ArrowException as exc:
        raise InputError(f"{path}: cannot be read as {_kind(path)} ({_first_line(exc)})") \
            from None
    except (IsADirectoryError, PermissionError, FileNotFoundError) as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None


def _kind(path: str | Path) -> str:
    return "Parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "CSV"


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for prefix in ("Error tokenizing data. ", "C error: "):
        text = text.removeprefix(prefix)
    return text[:200]
