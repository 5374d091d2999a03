"""A version's check tags (``podium.check.<name>``: pass | fail, ``podium.checks``, the
digest of the files judged), written while the request goes on.

They are 23 MLflow calls (MLflow has no batch call for version tags), 0.3-0.5 s, and nothing
in the decision reads them: ``CheckTags.write`` starts them in a thread of their own, so the
comparison runs meanwhile. ``settle`` waits for them (raising their error: the job retries)
before any ``podium.status`` but ``comparing`` is written, so a reader who sees a request
promoting, waiting for a person or decided sees its checks; ``close`` waits for them at the
end of the run. A retried job whose request is already past its checks writes them again
from the stored evidence (``repair``): a failed call or a crash after the state moved on
never leaves a version without its check tags.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from webhook_server.contract import TAG_CHECKS, TAG_MODEL_SHA256, check_tag
from webhook_server.jobs.worker import DeferJob
from webhook_server.store.records import Request
from webhook_server.workflow.fenced import FencedRegistry

log = logging.getLogger(__name__)


def tags_for(results: Iterable[tuple[str, bool]], model_sha256: str | None) -> dict[str, str]:
    """The tags of checks ``(name, passed)`` and of the digest of the files they judged."""
    results = list(results)
    tags = {check_tag(name): "pass" if passed else "fail" for name, passed in results}
    passed = sum(1 for _, ok in results if ok)
    tags[TAG_CHECKS] = f"{passed}/{len(results)} passed"
    if model_sha256:
        tags[TAG_MODEL_SHA256] = model_sha256
    return tags


class CheckTags:
    """The check tags of one run's request, written in the background."""

    def __init__(self, registry: FencedRegistry) -> None:
        self.registry = registry
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def write(self, model: str, version: str, tags: dict[str, str]) -> None:
        """Start writing ``tags`` (after the previous write has finished)."""
        self.settle()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="check-tags")
        # in the caller's context: the calls' spans join the job's trace
        self._pending = self._pool.submit(contextvars.copy_context().run,
                                          self.registry.set_tags, model, version, tags)

    def settle(self) -> None:
        """Wait until the tags are written; raise what writing them raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def repair(self, req: Request) -> None:
        """Write the tags again from what the store kept of the request's checks (a retried
        job, past its checks: the first write may not have finished)."""
        checks = req.evidence_json().get("checks")
        if checks:
            self.write(req.model, req.version, tags_for(
                ((c["name"], bool(c["passed"])) for c in checks), req.model_sha256))

    def close(self, ended_by: BaseException | None) -> None:
        """The run ends (``ended_by``: what it raised): wait for the tags. Their error is
        raised, so the job is retried and its next attempt repairs them, unless the run
        raised an error already (it is retried anyway: logged). A run put off for later
        (``DeferJob``) spends no attempt, so it raises theirs instead."""
        try:
            if ended_by is None or isinstance(ended_by, DeferJob):
                self.settle()
            else:
                try:
                    self.settle()
                except Exception:
                    log.warning("could not write the check tags; the retry writes them",
                                exc_info=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
