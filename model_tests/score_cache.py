"""Scores of a model version on a holdout, kept across requests: numbers computed in a
sandbox, never model code."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from model_tests.context import VersionInfo


class ScoreCache:
    """Scores of one model version on one holdout, kept across requests (bounded, LRU).

    A pinned holdout is its digest and a version's files are theirs, so the champion's
    scores on the judge's holdout are computed once, not at every request against it; a
    challenger's checks leave its scores for its comparison. The key holds the version's
    download URI, the digest of its files and the holdout's sha256: files overwritten in
    the registry (MLflow lets a run's owner do it) are scored again, never served from
    here."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(info: VersionInfo, sha256: str, model_sha256: str | None) -> tuple:
        return (info.name, str(info.version), info.source, model_sha256, sha256)

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            scores = self._items.get(key)
            if scores is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return scores

    def put(self, key: tuple, scores: np.ndarray) -> None:
        scores = np.array(scores, dtype=float)  # a private, read-only copy
        scores.setflags(write=False)
        with self._lock:
            self._items[key] = scores
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
