"""The policy's schema: the frozen, typed objects a policy file is read into (``Policy``, one
``ModelPolicy`` per model, its sections), each key declared once with its kind, default,
meaning and allowed range (``podium_policy.fields``); the errors that report a policy's
problems (``Problem``, ``PolicyError``) live in ``podium_policy.problems``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from podium_policy import defaults
from podium_policy.fields import AsDict, key, section
from podium_policy.live import RULES, Live
from podium_policy.problems import Bad, PolicyError, Problem  # noqa: F401 (callers' home)

IDENTITY_KINDS = ("slack", "cli", "api", "ui", "mlflow", "gitlab")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
TOP_LEVEL = ("default", "models", "people", "operators")
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
SANDBOX_MODES = ("required", "preferred")
METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
INCONCLUSIVE = ("reject", "approval")
VALUE_RULES = ("noninferiority", "superiority", "ignore")
PERIODS = ("day", "week", "month")
PROTECT = ("revert", "alert", "off")
REQUESTERS = ("any", "authenticated")
ENGINES = ("local", "spark")
ON_DECAY = ("propose", "rollback", "alert")
CHOICES = {"engine": ENGINES, "sandbox": SANDBOX_MODES, "metric": METRICS, "rule": RULES,
           "inconclusive": INCONCLUSIVE, "value_rule": VALUE_RULES, "period": PERIODS,
           "protect": PROTECT, "requesters": REQUESTERS,
           "on_decay": ON_DECAY}
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3://, https://, runs:/, models:/ (not C:/)


def is_uri(value: str) -> bool:
    """A URI (``s3://...``, ``runs:/<run>/path``), not a local path."""
    return bool(URI.match(value))


# --- the typed policy ----------------------------------------------------------------------

def _k(kind: str, default: Any, doc: str, **allowed: Any) -> Any:
    """A policy key: its kind, default, meaning and allowed range (a kind of ``CHOICES``
    accepts one of its words)."""
    return key(kind, default, doc, choices=CHOICES.get(kind), **allowed)


_T, _C, _B = defaults.THRESHOLDS, defaults.COMPARISON, defaults.BUSINESS
_M = defaults.MONITORING
FLOOR = {"lo": 0.0, "hi": 1.0}
PROBABILITY = {"lo": 0.0, "hi": 1.0, "lo_open": True, "hi_open": True}
POSITIVE = {"lo": 0.0, "lo_open": True}


@dataclass(frozen=True)
class Checks(AsDict):
    description_min_length: int = _k("int", _T["description_min_length"],
                                     "shortest acceptable version description", lo=0)
    load_seconds: float = _k("float", _T["load_seconds"], "time limit to load the model",
                             **POSITIVE)
    roc_auc: float = _k("float", _T["roc_auc"], "holdout ROC AUC floor", **FLOOR)
    f1: float = _k("float", _T["f1"], "holdout F1 floor at decision_threshold", **FLOOR)
    precision: float = _k("float", _T["precision"], "holdout precision floor", **FLOOR)
    recall: float = _k("float", _T["recall"], "holdout recall floor", **FLOOR)
    decision_threshold: float = _k("float", _T["decision_threshold"],
                                   "probability at which a customer counts as a churner",
                                   **PROBABILITY)
    slice_columns: tuple[str, ...] = _k("names", tuple(_T["slice_columns"]),
                                        "columns whose values are scored as slices")
    slice_min_rows: int = _k("int", _T["slice_min_rows"], "smallest slice that is scored",
                             lo=1)
    slice_roc_auc: float = _k("float", _T["slice_roc_auc"], "ROC AUC floor for every slice",
                              **FLOOR)
    slice_gap: float = _k("float", _T["slice_gap"],
                          "largest allowed gap between slices' ROC AUC", **FLOOR)
    directional_share: float = _k("float", _T["directional_share"],
                                  "share that must not score lower on month-to-month",
                                  **FLOOR)
    churner_score: float = _k("float", _T["churner_score"],
                              "mean score textbook churners must reach", **FLOOR)
    latency_p95_ms: float = _k("float", _T["latency_p95_ms"], "single-row p95 latency budget",
                               **POSITIVE)
    batch_1000_ms: float = _k("float", _T["batch_1000_ms"], "time budget for 1,000 rows",
                              **POSITIVE)
    artifact_mb: float = _k("float", _T["artifact_mb"], "model artifact size budget",
                            **POSITIVE)


@dataclass(frozen=True)
class Comparison(AsDict):
    metric: str = _k("metric", _C["metric"], "metric both models are compared on: "
                     f"{', '.join(METRICS)}")
    rule: str = _k("rule", _C["rule"], "superiority: promote only when the challenger is "
                   "better (one-sided test at alpha, by at least min_improvement); "
                   "noninferiority: when it is not worse by more than margin (for scheduled "
                   "retrains where freshness is the point)")
    alpha: float = _k("float", _C["alpha"], "one-sided significance level: the rate at which "
                      "an equal challenger is promoted by chance", lo=0.0, hi=0.5,
                      lo_open=True)
    min_improvement: float = _k("float", _C["min_improvement"], "superiority: the improvement "
                                "of the metric the test must show", lo=0.0)
    margin: float = _k("float", _C["margin"], "noninferiority: how much worse the challenger "
                       "may be", lo=0.0)
    bootstrap: int = _k("int", _C["bootstrap"], "paired bootstrap resamples for metrics "
                        "without a closed form (pr_auc); the seed is derived from the inputs",
                        lo=1000)
    max_detectable_improvement: float | None = _k(
        "float", _C["max_detectable_improvement"], "when set: a holdout too small to detect "
        "this improvement at 80 % power makes the comparison inconclusive", **POSITIVE,
        optional=True)
    inconclusive: str = _k("inconclusive", _C["inconclusive"], "what an inconclusive "
                           "comparison (holdout too small, holdout rows used in training) "
                           "does: reject, or wait for a person")
    min_rows: int = _k("int", _C["min_rows"], "fewest holdout rows (and at least one row of "
                       "each class) for a comparison; below it the challenger loses", lo=1)
    value_rule: str = _k("value_rule", _C["value_rule"], "business value: not worse by "
                         "value_margin (noninferiority), better by value_margin "
                         "(superiority), or not part of the decision")
    value_margin: float = _k("float", _C["value_margin"], "business value margin, in "
                             "currency per customer of the holdout", lo=0.0)
    live: Live | None = section(Live, "promotion on live evidence (null: off): a "
                                         "Production request that passes the holdout waits "
                                         "in shadowing until min_pairs labelled pairs decide "
                                         "it, or max_days end it inconclusive",
                                optional=True)


@dataclass(frozen=True)
class Business(AsDict):
    value_saved_churner: float = _k("float", _B["value_saved_churner"],
                                    "value of keeping a customer who would churn", lo=0.0)
    contact_cost: float = _k("float", _B["contact_cost"], "cost of one retention contact",
                             lo=0.0)
    contact_success_rate: float = _k("float", _B["contact_success_rate"],
                                     "share of contacted churners who stay", **PROBABILITY)
    currency: str = _k("str", _B["currency"], "currency label for reports")


@dataclass(frozen=True)
class Approval:
    targets: frozenset[str] = _k("targets", frozenset(),
                                 "targets that need a person to approve, e.g. [Production]")
    approvers: tuple[str, ...] = _k("approvers", (), "people (names under people:) who may "
                                    "decide")
    slack_usergroup: str | None = _k("slack_group", None, "Slack user group id (S...) whose "
                                     "members may also decide", optional=True)
    quorum: int = _k("int", 1, "distinct people who must approve", lo=1)
    expiry_hours: float = _k("float", 72.0, "hours before an undecided approval expires "
                             "(rejected)", **POSITIVE)
    allow_self_approval: bool = _k("bool", False, "the person who requested a promotion may "
                                   "approve it")
    requesters: str = _k("requesters", "any", "any: a request may come from the registry (a "
                         "tag or alias set in MLflow; every identity the version and its run "
                         "name counts as its requester); authenticated: only requests made "
                         "through Podium (podium request, the API, the release job), the "
                         "others are rejected")

    def needs_person(self, target: str | None) -> bool:
        return target in self.targets


@dataclass(frozen=True)
class Aliases:
    champion: str = _k("alias", "champion", "alias that marks the production model")
    staging: str = _k("alias", "staging", "alias that marks the staging model")
    protect: str = _k("protect", "revert", "an alias Podium manages moved outside Podium: "
                      "revert (put it back where the ledger says, with an alert), alert "
                      "(record and alert only), off")


@dataclass(frozen=True)
class Rollback:
    approvers: tuple[str, ...] = _k("approvers", (), "people who may roll back this model "
                                    "(empty: the approval approvers)")
    quorum: int = _k("int", 1, "distinct people who must agree to a rollback (the one who "
                     "asks counts; more than 1: the rollback waits for the others)", lo=1)


@dataclass(frozen=True)
class GitLab:
    deploy_ref: str | None = _k("str", None, "branch to run a deploy pipeline on after a "
                                "promotion (needs GITLAB_TRIGGER_TOKEN); null = no trigger",
                                optional=True)


@dataclass(frozen=True)
class Schedules:
    retrain: str | None = _k("cron", None, "when to retrain and request promotion (cron, UTC)",
                             optional=True)
    drift: str | None = _k("cron", None, "when to run the drift report (cron, UTC)",
                           optional=True)
    monitor: str | None = _k("cron", None, "when to run the monitoring job: realised quality "
                             "and drift, one alert per model and monitoring period (cron, UTC)",
                             optional=True)


@dataclass(frozen=True)
class Training:
    data: str | None = _k("path", None, "CSV in the Telco churn layout to train on",
                          optional=True)
    synthetic: int = _k("int", 20000, "train on N synthetic rows instead of a file", lo=1)
    seed: int = _k("int", 7, "random seed of the split and the search", lo=0)
    trials: int = _k("int", 6, "hyperparameter trials", lo=1)
    request: str = _k("target", "Production", "what a scheduled retrain requests "
                      "(Staging/Production)")


@dataclass(frozen=True)
class Drift:
    input: str | None = _k("path", None, "recent data (CSV or Parquet) to compare with the "
                           "reference", optional=True)
    threshold: float = _k("float", 0.2, "PSI at or above which a feature has drifted",
                          **POSITIVE)
    retrain_on_drift: bool = _k("bool", False, "queue a retrain when drift is found")


@dataclass(frozen=True)
class Scoring:
    engine: str = _k("engine", "local", "what podium score, labels and monitor run on when "
                     "--engine is not given: local (one process) or spark (pip install "
                     "podium[spark]; mlflow spark_udf)")


@dataclass(frozen=True)
class Monitoring:
    period: str = _k("period", _M["period"], "what realised quality is grouped by and an "
                     "alert is sent once per: day, week (ISO) or month")
    max_auc_drop: float = _k("float", _M["max_auc_drop"], "decay: realised ROC AUC below the "
                             "AUC recorded at promotion by more than this, with min_labels and "
                             "the interval of the drop above zero", lo=0.0, hi=1.0)
    min_labels: int = _k("int", _M["min_labels"], "fewest labelled predictions of a version in "
                         "a period for the decay rule to judge it", lo=1)
    confidence: float = _k("float", _M["confidence"], "level of the intervals (ROC AUC: "
                           "DeLong; precision, recall, churn rates: Wilson)", **PROBABILITY)
    retrain_on_decay: bool = _k("bool", _M["retrain_on_decay"], "the monitoring job queues a "
                                "retrain (retrain:<model>:<date>) when decay is found")
    shadow_former: bool = _k("bool", _M["shadow_former"], "podium score also scores, in "
                             "shadow, the former champion (the version the ledger's last "
                             "move replaced), so a decay can be weighed against it live")
    on_decay: str = _k("on_decay", _M["on_decay"], "when the champion decayed and the former "
                       "champion is significantly better live on the same recent outcomes: "
                       "propose (a rollback request for the people who may roll back), "
                       "rollback (done at once, with the ledger and an alert) or alert "
                       "(the alert only)")


@dataclass(frozen=True)
class Shadow:
    aliases: tuple[str, ...] = _k("aliases", (), "aliases whose versions podium score also "
                                  "scores, in shadow, on the champion's rows: logged with "
                                  "role shadow, never written to the output (e.g. "
                                  "[challenger])")
    max_share: float = _k("float", 1.0, "share of rows each shadow scores, chosen by a hash "
                          "of the row's id (the same rows every run)", lo=0.0, hi=1.0,
                          lo_open=True)
    effect: float = _k("float", 0.02, "the ROC AUC gain the live comparison's confidence "
                       "sequence is tuned to find soonest", lo=0.0, hi=0.5, lo_open=True)


@dataclass(frozen=True)
class SandboxLimits(AsDict):
    memory_mb: int | None = _k("int", None, "memory all of the model's sandbox processes may "
                               "hold together, MiB (null: PODIUM_SANDBOX_MEMORY_MB)",
                               lo=256, hi=1 << 20, optional=True)
    pids: int | None = _k("int", None, "processes and threads the model's sandbox may hold "
                          "(null: PODIUM_SANDBOX_PIDS)", lo=16, hi=65536, optional=True)
    cpu_shares: int | None = _k("int", None, "CPU share of the model's sandbox (null: "
                                "PODIUM_SANDBOX_CPU_SHARES)", lo=2, hi=262144, optional=True)
    accept_per_process: bool = _k("bool", False, "with sandbox: required, run model code even "
                                  "where no cgroup can be made (each process limited, not "
                                  "their sum: a model that forks takes more)")


@dataclass(frozen=True)
class ModelPolicy:
    """Everything the policy says about one registered model (frozen, built at load)."""

    holdout: str | None = _k("path", None, "holdout CSV (Telco layout with Churn) or artifact "
                             "URI both models are scored on; Podium downloads it, never the "
                             "model", optional=True)
    holdout_sha256: str | None = _k("sha256", None, "sha256 of the holdout file; a file with "
                                    "another digest fails the request", optional=True)
    allow_run_holdout: bool = _k("bool", False, "without holdout, let the challenger's own "
                                 "logged holdout (holdout/holdout.csv of its run) judge it: for "
                                 "demos only, the model under test then chooses the data it "
                                 "is judged on")
    sandbox: str = _k("sandbox", "required", "required (the default): run model code only "
                      "under the bubblewrap sandbox, else the request fails; preferred: the "
                      "strongest isolation this machine has (the weaker levels do not stop a "
                      "hostile model: docs/architecture.md, threat model)")
    sandbox_limits: SandboxLimits = section(SandboxLimits, "what the model's sandbox may "
                                            "hold (its cgroup), over the PODIUM_SANDBOX_* "
                                            "settings")
    id_column: str = _k("str", "customerID", "the column that identifies a row (customer): "
                        "the comparison refuses holdout rows that trained either model")
    checks: Checks = section(Checks, "thresholds of the model-quality checks")
    comparison: Comparison = section(Comparison, "champion vs challenger decision rule")
    business: Business = section(Business, "business value at decision_threshold")
    approval: Approval = section(Approval, "who must approve which targets")
    rollback: Rollback = section(Rollback, "who may roll the champion back")
    aliases: Aliases = section(Aliases, "registry aliases Podium moves")
    stages: bool = _k("bool", False, "also transition legacy MLflow stages")
    gitlab: GitLab = section(GitLab, "deploy pipeline after a promotion")
    schedules: Schedules = section(Schedules, "periodic model jobs")
    training: Training = section(Training, "scheduled retraining")
    drift: Drift = section(Drift, "scheduled drift reports")
    monitoring: Monitoring = section(Monitoring, "realised quality after promotion: the "
                                     "decay rule and the monitoring job")
    shadow: Shadow = section(Shadow, "live evidence: versions scored in shadow beside the "
                             "champion, compared on real outcomes")
    scoring: Scoring = section(Scoring, "batch scoring and the inference log")


@dataclass(frozen=True, eq=False)
class Policy:
    """A validated policy: ``for_model(name)`` (the model's section over ``default``, built
    once at load), ``people`` (name -> kind -> identities) and ``person_for(identity)``."""

    default: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=lambda: MappingProxyType({}))
    people: Mapping[str, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({}))
    source: str | None = None
    warnings: tuple[str, ...] = ()
    identities: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                          repr=False)
    operators: tuple[str, ...] | None = None  # who replays and resends (None: approvers)

    def for_model(self, name: str) -> ModelPolicy:
        return self.models.get(name, self.default)

    def person_for(self, identity: str) -> str | None:
        """The person who owns ``identity`` (``slack:U0123ALICE``, ``cli:alice``,
        ``api:<token name>``, ``ui:<sso name>``, ``mlflow:<user>``, ``gitlab:<login>``), or
        None when nobody does."""
        if not isinstance(identity, str):
            return None
        return self.identities.get(identity.strip())

    def summary(self) -> str:
        return f"{len(self.models)} models, {len(self.people)} people"

    @classmethod
    def empty(cls) -> Policy:
        """The built-in defaults: no people, no models, nothing needs approval."""
        return cls()
