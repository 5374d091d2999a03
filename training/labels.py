"""Outcomes (``customerID``, ``Churn`` Yes/No, optional ``observed_at``) joined to the
predictions each one judges: per version that scored the customer (the champion and any
shadow), that version's latest logged prediction at or before the outcome was observed
(``podium labels``), so one outcome gives one row per version. Read, validated and joined
chunk by chunk, so memory is bounded by the chunk (and that chunk's customers' predictions),
whatever the file size.

Validation follows ``podium score``: a file without the columns is refused whole; a bad row
goes to the rejects file with its reasons (``column: message``, ``; ``-joined), never
loaded: an empty id, a ``Churn`` that is not Yes or No, an ``observed_at`` that is not a
date, an id twice in a chunk, a customer with no logged prediction, an outcome observed
before the customer's first prediction (by any version). Without ``observed_at`` (or blank),
an outcome counts as observed when it is loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from training.data import ID, TARGET, YES_NO, DataError, Problem, read_raw
from training.inference_log import read_predictions
from training.score_io import read_chunks

OBSERVED = "observed_at"
MAX_ID = 255  # the store's customer_id column
_TIME = "datetime64[ns, UTC]"


def join_file(path: str | Path, log_root: str, model: str, *, chunk_rows: int = 100_000,
              now: datetime | None = None) -> Iterator[tuple[int, pd.DataFrame, pd.DataFrame]]:
    """Per chunk: its row count, its joined outcomes, one row per outcome and version that
    predicted it before (customer_id, churn, observed_at, version, batch_id, score,
    scored_at) and its rejected rows (the row as read plus
    ``reject_reason``; empty when none)."""
    now = pd.Timestamp(now or datetime.now(UTC)).tz_convert(UTC)
    columns = _header(Path(path))
    missing = [c for c in (ID, TARGET) if c not in columns]
    if missing:
        raise DataError([Problem(None, c, "missing column") for c in missing], str(path))
    first = 2
    with contextlib.closing(read_chunks(Path(path), chunk_rows)) as chunks:
        for raw in chunks:
            raw = raw.reset_index(drop=True)
            yield len(raw), *_join(raw, first, log_root, model, now)
            first += len(raw)


def _header(path: Path) -> list[str]:
    """The file's column names (read before any row)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    try:
        return list(read_raw(path, nrows=0).columns)
    except pd.errors.EmptyDataError:
        raise DataError([Problem(None, None, "empty file")], str(path)) from None


def _join(raw: pd.DataFrame, first: int, log_root: str, model: str,
          now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = raw[ID].str.strip()
    reasons: list[list[str]] = [[] for _ in range(len(raw))]

    def reject(mask, message) -> None:
        for i in np.flatnonzero(np.asarray(mask)):
            reasons[i].append(message(i))

    reject(ids == "", lambda i: f"{ID}: empty customerID")
    reject(ids.str.len() > MAX_ID, lambda i: f"{ID}: longer than {MAX_ID} characters")
    dup = ids.duplicated(keep="first") & (ids != "")
    first_seen = {v: i for i, v in reversed(list(enumerate(ids)))}
    reject(dup, lambda i: f"{ID}: duplicate customerID {ids[i]!r} (first on line "
                          f"{first_seen[ids[i]] + first})")
    reject(~raw[TARGET].isin(YES_NO), lambda i: f"{TARGET}: unknown value "
                                                f"{raw[TARGET][i]!r} (expected Yes or No)")
    observed = pd.Series(now, index=raw.index, dtype=_TIME)
    # Which outcome a row is, for idempotency: its observed_at as given, "" without one (an
    # undated outcome is observed at its first load; loading it again later, after newer
    # predictions, must not join it to them).
    given = pd.Series("", index=raw.index, dtype=object)
    if OBSERVED in raw.columns:
        text = raw[OBSERVED].str.strip()
        parsed = pd.to_datetime(text.where(text != ""), errors="coerce", utc=True,
                                format="ISO8601")
        reject(parsed.isna() & (text != ""), lambda i: f"{OBSERVED}: not a date "
               f"{raw[OBSERVED][i]!r} (expected ISO 8601, e.g. 2026-06-03T09:30:00Z)")
        stamp = "%Y-%m-%d %H:%M:%S UTC"
        reject(parsed > now, lambda i: f"{OBSERVED}: in the future "
               f"({parsed[i].strftime(stamp)}; now {now.strftime(stamp)})")
        observed = parsed.fillna(now).astype(_TIME)
        given = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").fillna("")
    ok = np.array([not r for r in reasons])
    outcomes = pd.DataFrame({"customer_id": ids[ok], "churn": (raw[TARGET][ok] == "Yes")
                             .astype(np.int64), OBSERVED: observed[ok], "outcome": given[ok],
                             "row": raw.index[ok]})
    joined = _latest_before(outcomes, log_root, model)
    unmatched = joined["score"].isna()
    for row, had in zip(joined["row"][unmatched], joined["first_scored"][unmatched],
                        strict=True):
        reasons[row].append(
            f"{ID}: no logged prediction of {model} for this customer" if pd.isna(had) else
            f"{OBSERVED}: before the customer's first prediction ({had:%Y-%m-%d %H:%M:%S} "
            "UTC)")
    rejected = raw[[bool(r) for r in reasons]].copy()
    rejected["reject_reason"] = ["; ".join(r) for r in reasons if r]
    return joined[~unmatched].drop(columns=["row", "first_scored"]), rejected


def _latest_before(outcomes: pd.DataFrame, log_root: str, model: str) -> pd.DataFrame:
    """Each outcome once per version that predicted its customer, with that version's latest
    prediction at or before it (score NaN when none: then one row, version None), and the
    customer's first prediction time by any version (NaT when never predicted)."""
    if not len(outcomes):  # every row of the chunk was rejected: nothing to look up
        return outcomes.assign(score=np.nan, scored_at=pd.NaT, batch_id=None, version=None,
                               first_scored=pd.NaT)
    preds = read_predictions(log_root, model, outcomes["customer_id"].unique()).to_pandas()
    preds = preds[["customer_id", "score", "scored_at", "batch_id", "version"]]
    preds = preds.astype({"scored_at": _TIME, "version": object})
    preds = preds.sort_values("scored_at", kind="stable")
    firsts = preds.groupby("customer_id")["scored_at"].min().rename("first_scored")
    # one row per outcome and version that scored the customer: each version's prediction
    # is judged by the outcome on its own row (a shadow's too)
    pairs = outcomes.merge(preds[["customer_id", "version"]].drop_duplicates(),
                           on="customer_id", how="left")
    pairs["version"] = pairs["version"].fillna("")
    joined = pd.merge_asof(pairs.sort_values(OBSERVED, kind="stable"), preds,
                           left_on=OBSERVED, right_on="scored_at", by=["customer_id", "version"],
                           direction="backward")
    joined = joined.join(firsts, on="customer_id").sort_values(["row", "version"],
                                                               kind="stable")
    # an outcome some version predicted before keeps only those versions' rows; one that no
    # version predicted before keeps one row (score NaN): it is rejected
    matched = joined["score"].notna()
    any_match = matched.groupby(joined["row"]).transform("any")
    keep = matched | (~any_match & ~joined["row"].duplicated())
    joined = joined[keep].reset_index(drop=True)
    joined["version"] = joined["version"].replace("", None)
    return joined
