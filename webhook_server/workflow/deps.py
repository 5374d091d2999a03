"""What the workflow's modules work with: one frozen, typed set of dependencies.

``Workflow`` builds it once (and again when a test swaps a part); ``steps``, ``moves``,
``decisions``, ``rollback`` and ``guard`` take it, or only the parts they need, instead of
the workflow itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from podium_policy.policy import ModelPolicy, Policy
from webhook_server.adapters.registry import Registry
from webhook_server.intake.intake import Intake
from webhook_server.jobs.queue import JobQueue
from webhook_server.store import Store
from webhook_server.store.schema import utcnow
from webhook_server.workflow.gates import Gates


@dataclass(frozen=True)
class Deps:
    """The store, the job queue, the intake, the registry (unfenced: each job fences its
    own, ``FencedRegistry``), the policy, the gates, the clock and the
    challenger alias."""

    store: Store
    queue: JobQueue
    intake: Intake
    registry: Registry
    policy: Policy
    gates: Gates
    clock: Callable[[], datetime] = field(default=utcnow)
    challenger_alias: str = "challenger"  # the alias that asks for Production (settings)

    def policy_for(self, model: str) -> ModelPolicy:
        return self.policy.for_model(model)
