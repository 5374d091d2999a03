"""The domain events the rest of Podium speaks.

Source adapters (``webhook_server.intake.sources``) turn verified deliveries into these plain
dataclasses; nothing past the adapters sees Flask, MLflow or Databricks objects.
"""

from __future__ import annotations

from dataclasses import dataclass

# the targets a request names are the policy's (re-exported for the sources and the API)
from podium_policy.targets import TARGETS, normalise_target  # noqa: F401


@dataclass(frozen=True)
class TransitionRequested:
    """Someone asked for ``model``/``version`` to move to ``target``.

    ``target`` is normalised; ``raw_target`` keeps what was asked so an invalid value can be
    stored and reported (``target`` is then ``None``).
    """

    model: str
    version: str
    raw_target: str
    origin: str  # "tag", "alias", "databricks", "api", "reconcile"
    requested_by: str | None = None
    comment: str | None = None

    @property
    def target(self) -> str | None:
        return normalise_target(self.raw_target)

    @classmethod
    def example(cls) -> TransitionRequested:
        return cls(model="churn", version="3", raw_target="Production", origin="tag")


ROLLBACK_ORIGIN = "rollback"  # the origin of a rollback request
MONITOR = "monitor"  # who asks for a rollback the monitoring job found (monitoring.on_decay)


@dataclass(frozen=True)
class RollbackRequested:
    """A person asked to move the champion of ``model`` back from ``current`` to the former
    champion ``to`` (``podium rollback``, the API, the page), already allowed and checked
    against the ledger by the workflow; with a rollback ``quorum`` over 1 the request waits
    for the others to agree. Or the monitoring job did (``requested_by`` ``monitor``): then
    ``evidence`` says why (``comparison``: the live comparison's line, ``reason``, figures)
    and a ``proposed`` one waits for the people who may roll back."""

    model: str
    to: str
    current: str | None
    requested_by: str
    quorum: int = 1
    proposed: bool = False
    evidence: dict | None = None

    @classmethod
    def example(cls) -> RollbackRequested:
        return cls(model="churn", to="2", current="3", requested_by="cli:ana")


@dataclass(frozen=True)
class RequestCancelled:
    """The request behind ``origin`` was withdrawn (tag deleted, alias removed).

    ``version`` is ``None`` when the source does not say (MLflow's alias-deleted payload):
    the open request of that origin on the model is cancelled.
    """

    model: str
    version: str | None
    origin: str

    @classmethod
    def example(cls) -> RequestCancelled:
        return cls(model="churn", version="3", origin="tag")


@dataclass(frozen=True)
class VersionCreated:
    model: str
    version: str
    source: str | None = None
    run_id: str | None = None

    @classmethod
    def example(cls) -> VersionCreated:
        return cls(model="churn", version="3", source="models:/m-123", run_id=None)


@dataclass(frozen=True)
class ModelCreated:
    model: str

    @classmethod
    def example(cls) -> ModelCreated:
        return cls(model="churn")


@dataclass(frozen=True)
class AliasChanged:
    """An alias other than the challenger moved (set or removed): the workflow's guard
    decides whether Podium manages it and puts it back (``aliases.protect``)."""

    model: str
    alias: str
    version: str | None

    @classmethod
    def example(cls) -> AliasChanged:
        return cls(model="churn", alias="staging", version="2")


@dataclass(frozen=True)
class Ignored:
    """A verified delivery Podium has no use for (other tag keys, unknown events)."""

    reason: str


@dataclass(frozen=True)
class TestDelivery:
    """The example payload MLflow's ``test_webhook`` sends."""

    __test__ = False  # not a pytest class, despite the name

    event: str


Event = (TransitionRequested | RollbackRequested | RequestCancelled | VersionCreated
         | ModelCreated | AliasChanged | Ignored | TestDelivery)
