"""An evidence bundle: what one decision was computed from, as files.

``scores.parquet`` holds one row per holdout row: its id, its label, both models' scores
and the values of the policy's slice columns. ``bundle.json`` holds the rest: the request,
the holdout's digest, both models' file digests, the policy section that was applied and
the policy file's digest, Podium's version, every check's result, the comparison and the
verdict. The bundle's digest is the sha256 of the canonical JSON of ``{file: sha256}``: the
request stores it (and the approval evidence covers it), so a changed file is found.

Reading a bundle never loads a model: numbers and JSON only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podium_policy.digests import sha256_file
from podium_policy.policy import Business, Checks
from podium_policy.policy import Comparison as ComparisonRule

FORMAT = 1
SCORES, DOC = "scores.parquet", "bundle.json"
FILES = (DOC, SCORES)
SLICE = "slice:"  # prefix of a slice column in scores.parquet


class BundleError(Exception):
    """A bundle that cannot be used: missing, unreadable, or not what its digest says
    (``tampered``)."""

    def __init__(self, reason: str, tampered: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.tampered = reason, tampered


def digest(files: dict[str, str]) -> str:
    """The bundle's digest: sha256 of ``{file name: sha256}`` as canonical JSON."""
    text = json.dumps(dict(sorted(files.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON without NaN (null), tuples as lists, numpy numbers as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def section(checks: Checks, comparison: ComparisonRule, business: Business) -> dict:
    """The policy section a decision applied, as JSON (``section_from`` reads it back)."""
    return _plain({"checks": checks.as_dict(), "comparison": comparison.as_dict(),
                   "business": business.as_dict()})


def podium_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("podium")
    except PackageNotFoundError:
        return "unknown"


def _build(cls, values: dict):
    known = {f.name: f for f in fields(cls)}

    def value(f, v):
        if "section" in f.metadata and isinstance(v, dict):  # comparison.live
            return _build(f.metadata["section"], v)
        return tuple(v) if isinstance(v, list) else v
    return cls(**{k: value(known[k], v) for k, v in values.items() if k in known})


def section_from(doc: dict) -> tuple[Checks, ComparisonRule, Business]:
    s = doc["policy"]["section"]
    return (_build(Checks, s["checks"]), _build(ComparisonRule, s["comparison"]),
            _build(Business, s["business"]))


def scores_frame(row_ids, labels, challenger, champion, slice_columns: dict) -> pd.DataFrame:
    """The vectors of a bundle: one row per holdout row, in the holdout's order."""
    frame = pd.DataFrame({"row_id": pd.Series(np.asarray(row_ids), dtype=str),
                          "label": np.asarray(labels).astype("int8")})
    n = len(frame)
    frame["challenger"] = (np.asarray(challenger, dtype=float) if challenger is not None
                           else np.full(n, np.nan))
    if champion is not None:
        frame["champion"] = np.asarray(champion, dtype=float)
    for name, values in slice_columns.items():
        column = pd.Series(values).reset_index(drop=True)
        frame[SLICE + name] = (column.astype(float) if pd.api.types.is_numeric_dtype(column)
                               else column.map(_text).astype(object))
    return frame


def _text(value: Any) -> str | None:
    return None if value is None or value != value else str(value)


def write(directory: str | Path, doc: dict, scores: pd.DataFrame) -> tuple[str, dict]:
    """Write the bundle's two files into ``directory``; its digest and ``{file: sha256}``."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(root / SCORES, index=False)
    (root / DOC).write_text(json.dumps(_plain({"format": FORMAT, **doc}), indent=1,
                                       sort_keys=True) + "\n")
    files = {name: sha256_file(root / name) for name in FILES}
    return digest(files), files


@dataclass(frozen=True)
class Bundle:
    doc: dict
    scores: pd.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return self.scores["label"].to_numpy().astype(int)

    def vector(self, who: str) -> np.ndarray | None:
        """``challenger`` or ``champion`` scores, or None when the bundle has none."""
        if who not in self.scores.columns:
            return None
        out = self.scores[who].to_numpy(dtype=float)
        return None if np.isnan(out).all() else out

    def slice_columns(self) -> dict[str, np.ndarray]:
        return {c[len(SLICE):]: self.scores[c].to_numpy(dtype=object)
                for c in self.scores.columns if c.startswith(SLICE)}


def read(directory: str | Path, expect: str | None = None,
         files: dict[str, str] | None = None) -> Bundle:
    """The bundle in ``directory``. ``expect``: the digest the request recorded (a file
    that changed is ``BundleError(tampered=True)``, naming it when ``files`` says what
    each one was)."""
    root = Path(directory)
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise BundleError(f"the bundle at {directory} has no {', '.join(missing)}")
    seen = {name: sha256_file(root / name) for name in FILES}
    if expect is not None and digest(seen) != expect:
        changed = [n for n in FILES if files and files.get(n) and files[n] != seen[n]]
        what = (f"{', '.join(changed)} changed" if changed
                else "its files do not match the recorded digest")
        raise BundleError(f"tampered: {what} (bundle digest {digest(seen)[:12]}, recorded "
                          f"{expect[:12]})", tampered=True)
    try:
        doc = json.loads((root / DOC).read_text())
        scores = pd.read_parquet(root / SCORES)
    except Exception as exc:
        raise BundleError(f"the bundle at {directory} cannot be read: "
                          f"{type(exc).__name__}: {exc}"[:300]) from None
    if doc.get("format") != FORMAT:
        raise BundleError(f"bundle format {doc.get('format')!r} is not {FORMAT}")
    return Bundle(doc, scores)
