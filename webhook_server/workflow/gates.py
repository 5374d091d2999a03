"""The gate protocol: what the workflow asks of the checks and the comparison, and what it
reads back.

The workflow never imports the checks (a contract: model code and training stay out of
it), so it states here, as structural types, what it needs of their answers: a check
report (each result's name, pass or fail and JSON; the holdout; the digest of the files
judged) and a comparison (won or not, the outcome, the reasons, one line, JSON). The
service wires the real ones (``model_tests.gates.SandboxGates``, whose ``CheckReport`` and
``Comparison`` are frozen dataclasses of this shape) and turns their "no verdict" errors
into the two kinds below; tests and benchmarks pass plain functions.

A gate that cannot judge raises ``GateFailed`` (no verdict, for good: the request ends
``failed`` with the reason) or ``TransientGateError`` (this machine or MLflow could not
answer now: the job retries, after the error's ``retry_after_s`` when it has one). Any other
exception is unexpected and also retries the job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

INCONCLUSIVE = "inconclusive"  # a comparison's outcome: wins | loses | inconclusive


class CheckOutcome(Protocol):
    """One check's result."""

    @property
    def name(self) -> str: ...

    @property
    def passed(self) -> bool: ...

    def as_json(self) -> dict[str, Any]: ...


class CheckReport(Protocol):
    """Every check's result, the holdout they ran on (uri, sha256, rows, source) and the
    digest of the model files that were checked (None: not known to the gate)."""

    @property
    def results(self) -> Sequence[CheckOutcome]: ...

    @property
    def holdout(self) -> Mapping[str, Any] | None: ...

    @property
    def model_sha256(self) -> str | None: ...


class ComparisonReport(Protocol):
    """The challenger against the champion on the judge's holdout."""

    @property
    def wins(self) -> bool: ...

    @property
    def outcome(self) -> str: ...  # wins | loses | inconclusive

    @property
    def reasons(self) -> Sequence[str]: ...

    @property
    def holdout(self) -> Mapping[str, Any] | None: ...

    def line(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


class LiveReport(Protocol):
    """A version against the champion on live outcomes (``monitoring.live``): the labelled
    pairs and the always-valid verdict (better | not better | undecided | too few pairs)."""

    @property
    def pairs(self) -> int: ...

    @property
    def verdict(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


class GateError(Exception):
    """A gate gave no verdict; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GateFailed(GateError):
    """No verdict, and trying again would not give one (a holdout refused, a champion that
    cannot be scored, a sandbox the policy requires and this worker lacks)."""


class TransientGateError(GateError):
    """No verdict now (MLflow did not answer, no sandbox could start): the job retries,
    after ``retry_after_s`` when the gate says how long to wait (no sandbox could start:
    seconds, not the queue's backoff), else with the queue's backoff."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Gates:
    """How checks and comparisons are run (model code in sandboxes, in the service)."""

    check: Callable[[str], CheckReport]  # model_uri -> the report
    compare: Callable[[str, str, str], ComparisonReport]  # model, challenger, champion
    release: Callable[[], None] | None = None  # the job is done: free what check/compare hold
    # write the evidence bundle of a decision into a directory (keyword arguments: request_id,
    # model, version, target, champion, checks, comparison, verdict): its digest and
    # {file: sha256}. None: this judge keeps no bundles (test fakes)
    bundle: Callable[..., tuple[str, dict[str, str]]] | None = None
    # model, version, champion version, the model's policy, since= (a datetime) -> the live
    # comparison on the outcomes both versions predicted at ``since`` or later (the request
    # entered shadowing then; comparison.live). None: no live evidence here
    live: Callable[..., LiveReport] | None = None
