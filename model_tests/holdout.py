"""The judge's data: the holdout a version is checked and compared on, and its digest.

Podium reads it (it holds the credentials); the model under test never chooses it. It comes
from the policy (a path or any URI ``mlflow.artifacts.download_artifacts`` reads, pinned
by ``holdout_sha256``), or from the challenger's run only where the policy allows it
(``allow_run_holdout``, for demos). Labels stay with Podium: the sandbox gets features only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

RUN_HOLDOUT = "holdout/holdout.csv"


class HoldoutRefused(Exception):
    """No holdout may judge this version (none configured, a digest mismatch, unreadable):
    permanent, the request fails with this reason."""


class RunHoldoutMissing(HoldoutRefused):
    """The policy lets the run's own holdout judge, and the version's run has none (or an
    unreadable one): the version's fault, so its holdout checks fail with this reason."""


TRANSIENT = ("ConnectionError", "Max retries exceeded", "Connection refused", "timed out",
             "503", "502", "504", "429")


def is_transient(exc: BaseException) -> bool:
    """MLflow did not answer (retry the job), as opposed to answering "no such file"."""
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in TRANSIENT)


@dataclass(frozen=True)
class Holdout:
    frame: pd.DataFrame  # features only
    labels: np.ndarray
    uri: str
    sha256: str
    source: str  # "policy", "run" or "given"

    def as_json(self) -> dict:
        return {"uri": self.uri, "sha256": self.sha256, "source": self.source,
                "rows": int(len(self.labels)), "positives": int(self.labels.sum())}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(uri: str, tracking_uri: str | None = None) -> Path:
    """A local copy of ``uri`` (a path is used where it is). MLflow errors propagate: a
    registry that does not answer is a retry, not a verdict."""
    if "://" not in uri and ":/" not in uri:
        return Path(uri)
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri,
                                                    tracking_uri=tracking_uri))


def resolve(uri: str | None, sha256: str | None = None, *, allow_run: bool = False,
            run_id: str | None = None, source: str = "policy",
            tracking_uri: str | None = None) -> Holdout:
    """The holdout to judge on. ``uri`` from the policy wins; else the run's own only when
    ``allow_run``; else HoldoutRefused with what to configure."""
    if uri:
        path = fetch(uri, tracking_uri)
        if not path.is_file():
            raise HoldoutRefused(f"the holdout {uri} does not exist")
        digest = sha256_of(path)
        if sha256 and digest != sha256.lower():
            raise HoldoutRefused(f"the holdout {uri} has sha256 {digest[:12]}…, the policy "
                                 f"pins {sha256[:12]}… (holdout_sha256): refusing to judge "
                                 "on different data")
        return read(path, uri, digest, source)
    if not allow_run:
        raise HoldoutRefused("no holdout to judge on: set holdout (and holdout_sha256) in "
                             "the policy; the challenger's own logged holdout is used only "
                             "with allow_run_holdout: true")
    if not run_id:
        raise HoldoutRefused("no holdout to judge on: the version has no run, and the policy "
                             "sets no holdout")
    run_uri = f"runs:/{run_id}/{RUN_HOLDOUT}"
    try:
        path = fetch(run_uri, tracking_uri)
        return read(path, run_uri, sha256_of(path), "run")
    except HoldoutRefused as exc:
        raise RunHoldoutMissing(str(exc)) from None
    except Exception as exc:
        if is_transient(exc):
            raise
        raise RunHoldoutMissing(f"the version's run has no readable {RUN_HOLDOUT}: "
                                f"{type(exc).__name__}: "
                                f"{(str(exc).splitlines() or [''])[0][:200]}") from None


def read(path: Path, uri: str, digest: str, source: str) -> Holdout:
    from training import data as churn_data

    try:
        typed = churn_data.load_csv(path)
        labels = churn_data.labels(typed)
        frame = typed[list(churn_data.FEATURES)]
    except Exception as exc:  # a bad file is a verdict about the file, with the reason
        raise HoldoutRefused(f"the holdout {uri} cannot be read: {type(exc).__name__}: "
                             f"{(str(exc).splitlines() or [''])[0][:200]}") from None
    return Holdout(frame.reset_index(drop=True), np.asarray(labels).astype(int), uri, digest,
                   source)
