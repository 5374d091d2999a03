"""The registry as a job sees it: the job's lease is checked before every call that changes
MLflow, so a worker that lost its lease stops before its next external effect. One method
per registry operation the workflow uses; reads are not fenced.

A tag this run already wrote with the same value is not written again (``podium.request_id``
went out with every state: four calls, each echoed back by MLflow as a webhook, for one
value). Only within one run: a retried job writes everything again, which is how it repairs
a crash between a decision and its tags."""

from __future__ import annotations

import threading
from collections.abc import Callable

from webhook_server.adapters.registry import Registry


class FencedRegistry:
    def __init__(self, registry: Registry, fence: Callable[[], None] | None) -> None:
        self._registry, self._fence = registry, fence
        self._written: dict[tuple[str, str, str], str] = {}  # (model, version, key) -> value
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self._fence is not None:
            self._fence()

    # --- reads -------------------------------------------------------------------------

    def alias_version(self, model: str, alias: str) -> str | None:
        return self._registry.alias_version(model, alias)

    def version_exists(self, model: str, version: str) -> bool:
        return self._registry.version_exists(model, version)

    def requesters(self, model: str, version: str) -> list[str]:
        return self._registry.requesters(model, version)

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        return self._registry.version_tags(model, version)

    def model_sha256(self, model: str, version: str) -> str:
        return self._registry.model_sha256(model, version)

    # --- writes: fenced ----------------------------------------------------------------

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        with self._lock:
            todo = {k: v for k, v in tags.items()
                    if self._written.get((model, str(version), k)) != v}
        if not todo:
            return
        self._check()
        self._registry.set_tags(model, version, todo)
        with self._lock:  # only once every one was written (a failure raised above)
            self._written.update({(model, str(version), k): v for k, v in todo.items()})

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._check()
        self._registry.set_alias(model, alias, version)

    def delete_alias(self, model: str, alias: str) -> None:
        self._check()
        self._registry.delete_alias(model, alias)

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        self._check()
        self._registry.transition_stage(model, version, stage)

    def log_report(self, model: str, version: str, name: str, report: dict,
                   markdown: str) -> None:
        self._check()
        self._registry.log_report(model, version, name, report, markdown)

    def log_evidence(self, model: str, version: str, request_id: int, directory: str,
                     digest: str) -> str | None:
        self._check()
        return self._registry.log_evidence(model, version, request_id, directory, digest)


# What ``moves`` and ``guard`` call: a job's fenced registry, or the registry itself where
# no job holds a lease (the reconciler's look).
RegistryCalls = Registry | FencedRegistry
