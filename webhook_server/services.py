"""Wire the pieces together from Settings. Used by the app factory, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass

from webhook_server.intake import Intake
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.policy import Policy, load_policy
from webhook_server.registry import Registry
from webhook_server.settings import Settings
from webhook_server.sources.databricks import DatabricksSource
from webhook_server.sources.mlflow import MlflowSource
from webhook_server.sources.slack import SlackSource
from webhook_server.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    queue: SqlJobQueue
    intake: Intake
    mlflow_source: MlflowSource
    databricks_source: DatabricksSource
    slack_source: SlackSource
    registry: Registry | None

    _policy: Policy | None = None
    _slack: object | None = None
    _sandboxes: object | None = None

    @property
    def policy(self) -> Policy:
        """Loaded on first use (PolicyError when the file is missing or invalid: never the
        defaults); `podium serve` and `podium worker` load it at start."""
        if self._policy is None:
            self._policy = load_policy(self.settings.policy_path)
        return self._policy

    @property
    def slack(self):
        """The Slack Web API client (bot mode), or None."""
        from webhook_server.notify.slack import SlackBot, mode

        if self._slack is None and mode(self.settings) == "bot":
            self._slack = SlackBot(self.settings)
        return self._slack

    def slack_sender(self, owner: str = "sender"):
        from webhook_server.notify.sender import SlackSender
        from webhook_server.notify.slack import SlackHook, mode

        s = self.settings
        hook = SlackHook(s.slack_webhook_url) if mode(s) == "webhook" else None
        return SlackSender(self.store, bot=self.slack, hook=hook, owner=owner,
                           tracking_uri=s.mlflow_tracking_uri, public_url=s.public_url,
                           quorum_of=lambda m: self.policy.for_model(m).approval.quorum,
                           max_backoff_s=s.notify_max_backoff_s)

    def gitlab_sender(self, owner: str = "sender"):
        from webhook_server.gitlab import GitLabSender

        return GitLabSender(self.store, self.settings, self.registry, self.policy, owner=owner)

    def workflow(self, gates=None):
        from webhook_server.workflow import Workflow

        if self.registry is None:
            raise RuntimeError("MLFLOW_TRACKING_URI is not set")
        workflow = Workflow(self.store, self.queue, self.registry, self.policy,
                            gates or self.child_gates())
        # a request whose job dies ends failed, in the transaction that buries the job
        # (every process that runs or reaps request jobs builds a workflow first)
        self.queue.on_dead("request", workflow.on_dead)
        return workflow

    def child_gates(self):
        """Checks and comparisons with model code in sandboxes (model_tests/gates.py): one
        sandbox per model and request, started ahead of it; the judgement runs here."""
        from model_tests.gates import SandboxGates
        from webhook_server.workflow import Gates

        gates = SandboxGates(self.sandboxes(), self.judge_config,
                             self.settings.mlflow_tracking_uri)
        return Gates(check=gates.check, compare=gates.compare, release=gates.release)

    def isolation(self):
        """The isolation model code gets on this machine (``podium serve`` prints it)."""
        from model_tests.isolation import detect

        return detect(self.settings.sandbox, self.settings.sandbox_user)

    def sandboxes(self):
        if self._sandboxes is None:
            import os

            from model_tests.gates import SandboxPool
            from model_tests.isolation import Limits

            s = self.settings
            env = {name: os.environ[name] for name in s.sandbox_env_names()
                   if name in os.environ}
            self._sandboxes = SandboxPool(
                self.isolation(), Limits(memory_mb=s.sandbox_memory_mb, cpu_s=s.sandbox_cpu_s,
                                         timeout_s=s.sandbox_timeout_s),
                env=env, spares=s.sandbox_spares)
        return self._sandboxes

    def judge_config(self, model: str):
        from model_tests.gates import JudgeConfig

        cfg = self.policy.for_model(model)
        return JudgeConfig(thresholds=cfg.checks.as_dict(),
                           comparison=cfg.comparison.as_dict(),
                           business=cfg.business.as_dict(),
                           decision_threshold=cfg.checks.decision_threshold,
                           holdout=cfg.holdout, holdout_sha256=cfg.holdout_sha256,
                           allow_run_holdout=cfg.allow_run_holdout,
                           sandbox_required=cfg.sandbox == "required",
                           id_column=cfg.id_column)

    def warm_sandboxes(self) -> None:
        """Start the spare sandboxes (the first request does not wait for their imports)."""
        self.sandboxes().warm()

    def handlers(self):
        from webhook_server.jobs import periodic
        from webhook_server.jobs.handlers import default_handlers

        s = self.settings
        handlers = default_handlers(self.store, self.intake, self.registry,
                                    s.challenger_alias)
        if self.registry is not None:
            workflow = self.workflow()
            handlers["request"] = workflow.handle
            handlers["reconcile"] = self._reconcile_handler(workflow)
            from webhook_server.approvals import slack_action_handler

            handlers["slack_action"] = slack_action_handler(self)
        handlers["retrain"] = periodic.retrain_handler(self.store, self.policy,
                                                       s.mlflow_tracking_uri,
                                                       s.challenger_alias)
        handlers["drift"] = periodic.drift_handler(self.store, self.queue, self.policy,
                                                   s.mlflow_tracking_uri)
        return handlers

    def _reconcile_handler(self, workflow):
        """Missed requests (reconcile.py), then champions moved outside Podium."""
        from webhook_server.reconcile import reconcile

        def handle(job) -> None:
            report = reconcile(self.store, self.intake, self.registry,
                               self.settings.challenger_alias)
            moved = workflow.check_champions()
            if report.created or moved:
                import logging

                logging.getLogger(__name__).warning(
                    "reconcile: scanned %d, created %s, external champion moves %s",
                    report.scanned, report.created, moved)

        return handle

    def close(self) -> None:
        if self._sandboxes is not None:
            self._sandboxes.close()
        self.store.dispose()


def build(settings: Settings, store: Store | None = None) -> Services:
    store = store or Store(settings.database_url)
    queue = SqlJobQueue(store, lease_s=settings.job_lease_s,
                        max_attempts=settings.job_max_attempts,
                        backoff_s=settings.job_backoff_s)
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
