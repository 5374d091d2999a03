"""A model loaded in its own sandbox, seen from Podium: ``predict(frame)`` returns numbers.

Podium puts the model's files in the sandbox's input directory (it downloads them: it holds
the credentials), asks the sandbox to load them, and sends frames to score. Whatever the
model does, what comes back is checked to be one finite-or-not number per row; the checks
and the comparison run in Podium on those numbers.

A sandbox that dies (killed by a signal, a limit, a broken reply) is replaced once for the
same call, with the same files; if the call kills the second one as well the failure is
the model's (``ModelCrashed``: deterministic, no retry loop), and so is a call that passes
its deadline. After either, the model answers nothing more: each later call fails at once
with the first reason.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model_tests.sandbox.errors import ModelCrashed, ModelFailed, SandboxDied, SandboxError
from model_tests.sandbox.isolation import Sandbox

MODEL_DIR = "model"


class SandboxedModel:
    def __init__(self, take: Callable[[], Sandbox], label: str) -> None:
        self._take, self.label = take, label
        self.sandbox = take()
        self.loaded = False
        self.sha256: str | None = None  # digest of the files, set by whoever put them there
        self.broken: str | None = None

    @property
    def files(self) -> Path:
        """Where Podium puts the model's files (read-only inside the sandbox)."""
        return self.sandbox.inputs / MODEL_DIR

    def load(self) -> float:
        """Load the model in the sandbox; the seconds it took (measured by Podium).
        ModelFailed / ModelCrashed when it does not load."""
        _, took = self._call("load", lambda sb: {"path": sb.inside(sb.inputs / MODEL_DIR)})
        self.loaded = True
        return took

    def predict(self, frame) -> np.ndarray:
        return self.predict_timed(frame)[0]

    def predict_timed(self, frame) -> tuple[np.ndarray, float]:
        """Scores of ``frame`` (one per row) and the seconds the call took, measured by
        Podium around the call (the model cannot report its own latency)."""
        reply, took = self._call("predict", lambda sb: {"frame": sb.write_frame(frame),
                                                        "max_bytes": 32 * len(frame) + 65536})
        scores = reply.get("scores")
        if not isinstance(scores, list):
            raise ModelFailed(f"{self.label} returned no scores")
        try:
            out = np.asarray(scores, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise ModelFailed(f"{self.label} returned scores that are not numbers") from None
        if out.ndim != 1 or len(out) != len(frame):
            raise ModelFailed(f"{self.label} returned {out.size} scores for {len(frame)} rows")
        return out, took

    def _call(self, op: str, args: Callable[[Sandbox], dict]) -> tuple[dict, float]:
        if self.broken:
            raise ModelCrashed(f"not run: {self.broken}")
        first: SandboxDied | None = None
        for _ in range(2):
            try:
                return self.sandbox.call(op, **args(self.sandbox))
            except SandboxDied as exc:  # killed, exited, garbage: once more in a new one
                if first is not None:
                    self.broken = (f"{self.label}: the sandbox died twice on {op} "
                                   f"({first.reason}; then {exc.reason})")
                    raise ModelCrashed(self.broken) from None
                first = exc
                try:
                    self._replace()
                except SandboxError as again:
                    self.broken = (f"{self.label}: the sandbox died twice on {op} "
                                   f"({first.reason}; then {again.reason})")
                    raise ModelCrashed(self.broken) from None
            except ModelFailed:
                raise
            except SandboxError as exc:  # a deadline: retrying would only wait again
                self.broken = f"{self.label}: {exc.reason}"
                raise ModelCrashed(self.broken) from None
        raise AssertionError("unreachable")

    def _replace(self) -> None:
        """A fresh sandbox with the same files (and the model loaded again if it was)."""
        old, self.sandbox = self.sandbox, self._take()
        if (old.inputs / MODEL_DIR).exists():
            shutil.copytree(old.inputs / MODEL_DIR, self.sandbox.inputs / MODEL_DIR)
        old.remove()
        if self.loaded:
            self.sandbox.call("load", path=self.sandbox.inside(self.sandbox.inputs / MODEL_DIR))

    def close(self) -> None:
        self.sandbox.remove()


def timed(predict: Callable, frame) -> tuple[np.ndarray, float]:
    """``predict_timed`` for a model in this process."""
    started = time.perf_counter()
    out = predict(frame)
    return out, time.perf_counter() - started
