"""The composition root: every part of the service built from ``Settings``, each once.

Used by the app factory, the CLI, the worker and tests. Parts that need the policy, MLflow,
Slack or the sandboxes are built on first use (``podium serve`` and ``podium worker`` load
the policy at start, so a bad policy stops them there)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from podium_policy.check import load_policy
from podium_policy.schema import Policy
from webhook_server.adapters.registry import Registry
from webhook_server.core import scrub
from webhook_server.core.settings import Settings
from webhook_server.intake.intake import Intake
from webhook_server.intake.sources.databricks import DatabricksSource
from webhook_server.intake.sources.mlflow import MlflowSource
from webhook_server.intake.sources.slack import SlackSource
from webhook_server.jobs.doorbell import Doorbell, directory_for
from webhook_server.jobs.listen import PgWakeup
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.store import Store
from webhook_server.workflow import Gates, Workflow

if TYPE_CHECKING:
    from model_tests.config import JudgeConfig
    from model_tests.gates import SandboxGates
    from model_tests.sandbox import Cgroups, Isolation, Limits, SandboxPool
    from webhook_server.adapters.gitlab import GitLabSender
    from webhook_server.adapters.notify.sender import SlackSender
    from webhook_server.adapters.notify.slack import SlackBot

T = TypeVar("T")


@dataclass(eq=False)
class Services:
    settings: Settings
    store: Store
    queue: SqlJobQueue
    intake: Intake
    mlflow_source: MlflowSource
    databricks_source: DatabricksSource
    slack_source: SlackSource
    registry: Registry | None

    @cached_property
    def policy(self) -> Policy:
        """PolicyError when the file is missing or invalid: never the defaults."""
        return load_policy(self.settings.policy_path)

    @cached_property
    def slack(self) -> SlackBot | None:
        """The Slack Web API client (bot mode), or None."""
        from webhook_server.adapters.notify.slack import SlackBot, mode

        return SlackBot(self.settings) if mode(self.settings) == "bot" else None

    @cached_property
    def judge(self) -> SandboxGates:
        """Checks, comparisons and scoring with model code in sandboxes
        (model_tests/gates.py): one sandbox per model and request, started ahead of it;
        the judgement runs here."""
        from model_tests.gates import SandboxGates

        return SandboxGates(self.sandboxes, self.judge_config,
                            self.settings.mlflow_tracking_uri)

    @cached_property
    def gates(self) -> Gates:
        """What the workflow calls: the judge's check, compare and release, with the
        judge's "no verdict" (``CheckRunError``) as the workflow's own error types, and the
        live comparison on the store's labels (``monitoring.live``)."""
        from webhook_server.monitoring.live import live_comparison

        return Gates(check=_gate(self.judge.check), compare=_gate(self.judge.compare),
                     release=self.judge.release, bundle=_gate(self.judge.bundle),
                     live=functools.partial(live_comparison, self.store))

    @cached_property
    def workflow(self) -> Workflow:
        if self.registry is None:
            raise RuntimeError("MLFLOW_TRACKING_URI is not set")
        workflow = Workflow(self.store, self.queue, self.registry, self.policy, self.gates,
                            challenger_alias=self.settings.challenger_alias)
        # a request whose job dies ends failed, in the transaction that buries the job
        # (every process that runs or reaps request jobs builds the workflow first)
        self.queue.on_dead("request", workflow.on_dead)
        return workflow

    def use_gates(self, gates: Gates) -> Workflow:
        """Judge with ``gates`` instead of the sandboxes (tests and benchmarks)."""
        self.__dict__.pop("workflow", None)
        self.gates = gates
        return self.workflow

    @cached_property
    def isolation(self) -> Isolation:
        """The isolation model code gets on this machine (``podium serve`` prints it)."""
        from model_tests.sandbox import detect

        return detect(self.settings.sandbox, self.settings.sandbox_user)

    @cached_property
    def sandboxes(self) -> SandboxPool:
        from model_tests.sandbox import SandboxPool

        s = self.settings
        env = {name: os.environ[name] for name in s.sandbox_env_names() if name in os.environ}
        return SandboxPool(self.isolation, self.sandbox_limits(), env=env,
                           spares=s.sandbox_spares, cgroups=self.cgroups,
                           zygote=s.sandbox_zygote)

    def sandbox_limits(self) -> Limits:
        from model_tests.sandbox import Limits

        s = self.settings
        return Limits(memory_mb=s.sandbox_memory_mb, cpu_s=s.sandbox_cpu_s,
                      timeout_s=s.sandbox_timeout_s, pids=s.sandbox_pids,
                      cpu_shares=s.sandbox_cpu_shares)

    @cached_property
    def cgroups(self) -> Cgroups:
        """Where each sandbox's cgroup is made, or why none can be (``podium worker`` says
        which at start)."""
        from model_tests.sandbox import detect_cgroups

        return detect_cgroups(self.settings.sandbox_cgroup_root)

    def judge_config(self, model: str) -> JudgeConfig:
        from dataclasses import replace

        from model_tests.config import from_policy

        return replace(from_policy(self.policy.for_model(model)),
                       policy_sha256=self.policy_sha256, policy_source=self.policy.source)

    @cached_property
    def policy_sha256(self) -> str | None:
        """The digest of the policy file as loaded (the evidence bundles keep it)."""
        from podium_policy.digests import sha256_file

        path = self.settings.policy_path
        return sha256_file(path) if path and os.path.isfile(path) else None

    def slack_sender(self, owner: str = "sender") -> SlackSender:
        """A sender of the Slack outbox rows (one per sending thread: it holds a lease)."""
        from webhook_server.adapters.notify.sender import SlackSender
        from webhook_server.adapters.notify.slack import SlackHook, mode

        s = self.settings
        hook = SlackHook(s.slack_webhook_url) if mode(s) == "webhook" else None
        return SlackSender(self.store, bot=self.slack, hook=hook, owner=owner,
                           tracking_uri=s.mlflow_tracking_uri, public_url=s.public_url,
                           quorum_of=lambda m: self.policy.for_model(m).approval.quorum,
                           max_backoff_s=s.notify_max_backoff_s, lease_s=s.leader_lease_s)

    def gitlab_sender(self, owner: str = "sender") -> GitLabSender:
        from webhook_server.adapters.gitlab import GitLabSender

        return GitLabSender(self.store, self.settings, self.registry, self.policy, owner=owner,
                            lease_s=self.settings.leader_lease_s)

    def close(self) -> None:
        if "sandboxes" in self.__dict__:
            self.sandboxes.close()
        if self.queue.doorbell is not None:
            self.queue.doorbell.close()
        self.store.dispose()


def _gate(call: Callable[..., T]) -> Callable[..., T]:
    """``call`` (the judge's check or compare) raising the gate protocol's errors: a
    CheckRunError is ``TransientGateError`` (the job retries) or ``GateFailed`` (the request
    fails with the reason); any other exception passes as it is (the job retries)."""
    from model_tests.gates import CheckRunError
    from webhook_server.workflow.gates import GateFailed, TransientGateError

    @functools.wraps(call)
    def gate(*args: str, **kwargs) -> T:
        try:
            return call(*args, **kwargs)
        except CheckRunError as exc:
            if exc.transient:
                raise TransientGateError(str(exc), exc.retry_after_s) from exc
            raise GateFailed(str(exc)) from exc
    return gate


def build(settings: Settings, store: Store | None = None) -> Services:
    scrub.use(settings.secrets())  # model and user text, and log lines, lose them
    store = store or Store(settings.database_url)
    # idle workers wake on NOTIFY on PostgreSQL (every machine), else on a local doorbell
    wake = (PgWakeup.for_engine(store.engine) if store.dialect == "postgresql"
            else Doorbell(directory_for(store.url)))
    queue = SqlJobQueue(store, lease_s=settings.job_lease_s,
                        max_attempts=settings.job_max_attempts,
                        backoff_s=settings.job_backoff_s, doorbell=wake)
    return Services(
        settings=settings, store=store, queue=queue, intake=Intake(store, queue),
        mlflow_source=MlflowSource(settings.mlflow_webhook_secret,
                                   insecure=settings.insecure_no_signature,
                                   tolerance_s=settings.signature_tolerance_s,
                                   challenger_alias=settings.challenger_alias),
        databricks_source=DatabricksSource(settings.databricks_webhook_secret,
                                           tolerance_s=settings.signature_tolerance_s),
        slack_source=SlackSource(settings.slack_signing_secret, team_id=settings.slack_team_id,
                                 tolerance_s=settings.signature_tolerance_s),
        registry=Registry(settings.mlflow_tracking_uri) if settings.mlflow_tracking_uri else None,
    )
