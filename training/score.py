"""Batch inference in chunks: read (CSV or Parquet), validate, score, write.

Memory is bounded by the chunk size, whatever the file size. Rows that fail validation go
to a rejects file (CSV, the row plus ``reject_reason``) and are counted, never scored.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training import data as churn_data
from training.score_io import _Writer, read_chunks  # read_chunks: training.drift's too

if TYPE_CHECKING:
    from training.inference_log import InferenceLog

THRESHOLD = 0.5


@dataclass(frozen=True)
class Shadow:
    """A version scored in shadow beside the champion: its ``predict_proba``, its log (role
    shadow) and the share of rows it scores (chosen by ``sampled``: the same ids every run)."""

    predict_proba: Callable[[pd.DataFrame], np.ndarray]
    log: InferenceLog
    max_share: float = 1.0


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    scored: int
    rejected: int
    seconds: float
    output: str
    rejects: str | None
    shadow_rows: tuple[int, ...] = ()  # rows each shadow scored, in the order given
    shadow_seconds: float = 0.0  # time spent predicting with the shadows

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def rows_per_s_without_shadows(self) -> float:
        """The rate without the shadows' predictions (their logging overlaps the scoring)."""
        spent = self.seconds - self.shadow_seconds
        return self.rows / spent if spent > 0 else 0.0


def sampled(ids: pd.Series, share: float) -> np.ndarray:
    """Which rows a shadow with ``max_share`` ``share`` scores: a stable 64-bit hash of the
    stripped id below ``share`` of its range, so the same customers are shadowed every run
    and in every process (no seed, no state)."""
    if share >= 1.0:
        return np.ones(len(ids), dtype=bool)
    keys = pd.util.hash_pandas_object(ids.astype(str).str.strip(), index=False).to_numpy()
    return keys < np.uint64(min(int(share * 2.0**64), 2**64 - 1))


def score_file(predict_proba: Callable[[pd.DataFrame], np.ndarray], input_path: str | Path,
               output_path: str | Path, *, model_version: str, chunk_rows: int = 100_000,
               rejects_path: str | Path | None = None,
               progress: Callable[[int], None] | None = None,
               log: InferenceLog | None = None, shadows: Sequence[Shadow] = ()) -> ScoreReport:
    """Score every valid row of ``input_path`` into ``output_path``.

    ``predict_proba`` takes typed feature rows and returns the churn probability per row.
    While a chunk is scored, a thread reads and validates the next one and another writes
    the one before. ``log`` (the caller opens and closes it) gets each chunk's customer ids
    and scores, written by the same writing thread. Each of ``shadows`` scores its share of
    the same valid rows into its own log (the caller opens and closes those too); its
    scores never reach ``output_path``.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else output_path.with_name(
        output_path.stem + ".rejects.csv")
    started = time.perf_counter()
    out, rejects = _Writer(output_path), _Writer(rejects_path)
    lane = _WriteLane() if _THREADS else None
    write = lane.write if lane else (lambda writer, frame: writer.write(frame))
    rows = scored = rejected = 0
    shadow_rows, shadow_seconds = [0] * len(shadows), 0.0
    try:
        chunks = _checked(read_chunks(input_path, chunk_rows), str(input_path))
        with contextlib.closing(_read_ahead(chunks) if _THREADS else chunks) as chunks:
            for n, rej, raw, typed in chunks:
                if rej is not None:
                    write(rejects, rej)
                    rejected += len(rej)
                if len(raw):
                    proba = np.asarray(predict_proba(typed[list(churn_data.FEATURES)]))
                    result = raw.copy()
                    result["churn_probability"] = proba
                    result["churn_prediction"] = (proba >= THRESHOLD).astype(np.int8)
                    result["model_version"] = model_version
                    write(out, result)
                    if log is not None:
                        write(log, log.entries(raw, proba))
                    tick = time.perf_counter()
                    for i, shadow in enumerate(shadows):
                        shadow_rows[i] += _shadow(shadow, raw, typed, write)
                    shadow_seconds += time.perf_counter() - tick
                    scored += len(raw)
                rows += n
                if progress:
                    progress(rows)
        if lane:
            lane.finish()  # a write's error, if any
    finally:
        if lane:
            lane.join()
        out.close()
        rejects.close()
    if not rejected:
        rejects_path.unlink(missing_ok=True)
    return ScoreReport(rows, scored, rejected, time.perf_counter() - started,
                       str(output_path), str(rejects_path) if rejected else None,
                       tuple(shadow_rows), shadow_seconds)


def _shadow(shadow: Shadow, raw: pd.DataFrame, typed: pd.DataFrame, write) -> int:
    """Score ``shadow``'s share of a chunk's valid rows into its log; how many it scored."""
    mask = sampled(raw[churn_data.ID], shadow.max_share)
    if not mask.any():
        return 0
    rows = typed[mask] if not mask.all() else typed
    proba = shadow.predict_proba(rows[list(churn_data.FEATURES)])
    if proba is None:  # the shadow failed (its scorer said why): production scoring goes on
        return 0
    proba = np.asarray(proba)
    write(shadow.log, shadow.log.entries(raw[mask] if not mask.all() else raw, proba))
    return int(mask.sum())


# --- overlap: reading the next chunk and writing the last one while a chunk is scored -----
# Arrow reads, parses and writes without holding the GIL; the model's own preprocessing runs
# on one core: there is a core free for them most of the time.

_THREADS = True
_DONE = object()


def _read_ahead(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``chunks``, each read in a thread while the caller works on the one before: one chunk
    ahead at most. An error comes out where it would have, after the chunks before it. Close
    the iterator to stop the thread (it finishes the read under way)."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    wanted, stop = threading.Semaphore(1), threading.Event()

    def produce() -> None:
        try:
            while wanted.acquire() and not stop.is_set():
                try:
                    item = next(chunks)
                except StopIteration:
                    handoff.put((_DONE, None))
                    return
                except BaseException as exc:  # noqa: BLE001  (re-raised by the caller)
                    handoff.put((None, exc))
                    return
                handoff.put((item, None))
                del item
        finally:
            chunks.close()

    thread = threading.Thread(target=produce, name="podium-score-read", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            wanted.release()  # read the next chunk while this one is scored
            yield item
            del item
    finally:
        stop.set()
        wanted.release()
        thread.join()


class _WriteLane:
    """Writes in a thread, one at a time and in order: ``write`` waits for the write before
    it to finish (and raises its error), starts this one and returns."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, writer: _Writer, frame: pd.DataFrame) -> None:
        self.finish()
        self._thread = threading.Thread(target=self._run, args=(writer, frame),
                                        name="podium-score-write", daemon=True)
        self._thread.start()

    def _run(self, writer: _Writer, frame: pd.DataFrame) -> None:
        try:
            writer.write(frame)
        except BaseException as exc:  # noqa: BLE001  (raised by the next write or finish)
            self._error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        self.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _checked(chunks: Iterator[pd.DataFrame], source: str) -> Iterator[tuple]:
    """Each chunk validated: its row count, its rejected rows with their reasons (or None),
    its valid rows as read and the same rows typed."""
    rows = 0
    for raw in chunks:
        raw = raw.reset_index(drop=True)
        problems, typed = churn_data.check(raw, require_target=False, first_line=rows + 2)
        if typed is None:  # missing columns: the file is unusable
            raise churn_data.DataError(problems, source)
        bad = _reasons(problems, rows + 2)
        rej = None
        if bad:
            mask = np.zeros(len(raw), dtype=bool)
            mask[list(bad)] = True
            rej = raw[mask].copy()
            rej["reject_reason"] = [bad[i] for i in np.flatnonzero(mask)]
            raw, typed = raw[~mask], typed[~mask]
        n = len(raw) + (len(rej) if rej is not None else 0)
        yield n, rej, raw, typed
        rows += n


def _reasons(problems, first_line: int) -> dict[int, str]:
    """Row position in the chunk -> '; '-joined problems of that row."""
    out: dict[int, list[str]] = {}
    for p in problems:
        out.setdefault(p.line - first_line, []).append(f"{p.column}: {p.message}")
    return {i: "; ".join(msgs) for i, msgs in out.items()}


def load_predictor(model_uri: str) -> tuple[Callable[[pd.DataFrame], np.ndarray], str]:
    """The model's ``predict_proba`` for class 1, and the version the URI resolves to."""
    import mlflow

    model = mlflow.sklearn.load_model(model_uri)
    version = resolve_version(model_uri)
    return (lambda X: model.predict_proba(X)[:, 1]), version


def resolve_version(model_uri: str, client=None) -> str:
    """``models:/churn@champion`` -> ``"churn/3"``; other URIs are returned as they are.
    ``client``: an ``MlflowClient`` (default: one on this process's tracking URI)."""
    if not model_uri.startswith("models:/"):
        return model_uri
    from mlflow import MlflowClient

    ref = model_uri[len("models:/"):]
    client = client or MlflowClient()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{client.get_model_version_by_alias(name, alias).version}"
    if "/" in ref:
        return ref
    latest = max(client.search_model_versions(f"name = '{ref}'"), key=lambda v: int(v.version))
    return f"{ref}/{latest.version}"


def default_model_uri(model: str, alias: str = "champion", client=None) -> str:
    """``models:/<model>@<alias>`` when the alias exists, else the newest version's URI."""
    from mlflow import MlflowClient

    client = client or MlflowClient()
    try:
        client.get_model_version_by_alias(model, alias)
        return f"models:/{model}@{alias}"
    except Exception:  # no champion yet
        return f"models:/{resolve_version(f'models:/{model}', client)}"
