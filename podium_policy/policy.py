"""The policy file: people, and per-model settings with a ``default`` section.

Read once at load into frozen, typed objects (``Policy.for_model(name)`` returns the same
``ModelPolicy`` every time); nothing downstream reads nested dicts. Every problem is found,
not just the first, and each names the file, the line and the key path::

    podium.yaml:14: models.churn.approval.quorum: quorum 3 but only 2 people may approve ...

What is refused: unknown keys, duplicate keys, values of the wrong type, numbers out of range
(probabilities in (0, 1), floors in [0, 1], positive counts, finite numbers, non-negative
margins and budgets), a quorum larger than the people who may approve, a target (or an
inconclusive comparison) that needs approval when nobody may approve, an approver who is not
a person, and an identity listed by two people. A path that does not exist is an error, never
"the defaults".

Deprecated keys (``_DEPRECATED``) are read as their replacement with one warning each:
``comparison.confidence`` (a two-sided interval) as ``alpha`` = (1 - confidence) / 2 and
``comparison.min_gain`` as ``min_improvement``; setting both the old and the new key is an
error, and so is ``comparison.seed`` (the bootstrap seed is derived from the inputs).

The holdout the judge scores both models on: ``holdout`` (a local file must exist; a URI is
kept as written), pinned by ``holdout_sha256`` (pinning nothing is an error; a local file
without a pin is a warning that shows its digest). ``allow_run_holdout`` (demos only) lets a
challenger's own logged holdout judge it, ``sandbox`` says whether model code must run
under bubblewrap, and ``sandbox_limits`` what its sandbox may hold (its cgroup).

People: ``people.<name>`` lists the identities a person uses (``slack``, ``cli``, ``api``,
``ui``, ``mlflow``, ``gitlab``; each a string or a list); ``approval.approvers`` names people.
For one release an approver may still be an identity (``U0123ALICE``, ``cli:alice``): it is
accepted as the person who owns it, or as a person of its own named by the identity
(``slack:U0123ALICE``), with one deprecation line per entry at load.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from podium_policy import defaults
from podium_policy.digests import sha256_file
from podium_policy.targets import TARGETS, normalise_target

log = logging.getLogger(__name__)

IDENTITY_KINDS = ("slack", "cli", "api", "ui", "mlflow", "gitlab")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
TOP_LEVEL = ("default", "models", "people", "operators")
SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
SANDBOX_MODES = ("required", "preferred")
METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")
RULES = ("superiority", "noninferiority")
INCONCLUSIVE = ("reject", "approval")
VALUE_RULES = ("noninferiority", "superiority", "ignore")
PERIODS = ("day", "week", "month")
PROTECT = ("revert", "alert", "off")
REQUESTERS = ("any", "authenticated")
_CHOICES = {"sandbox": SANDBOX_MODES, "metric": METRICS, "rule": RULES,
            "inconclusive": INCONCLUSIVE, "value_rule": VALUE_RULES, "period": PERIODS,
            "protect": PROTECT, "requesters": REQUESTERS}
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")  # s3://, https://, runs:/, models:/ (not C:/)


# --- errors --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: where (file, line, key path) and why."""

    path: str
    reason: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        elif self.line:
            where = f"line {self.line}: "
        return f"{where}{self.path}: {self.reason}" if self.path else f"{where}{self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.source, "line": self.line, "path": self.path,
                "reason": self.reason}


class PolicyError(ValueError):
    """Every problem of a policy file, one per line (``file:line: key.path: reason``)."""

    def __init__(self, problems: str | Problem | list[Problem],
                 warnings: tuple[str, ...] = ()) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.warnings = tuple(warnings)
        super().__init__("\n".join(map(str, self.problems)))

    def one_line(self) -> str:
        """The first problem, and how many more there are (for a refusal to start)."""
        more = len(self.problems) - 1
        return str(self.problems[0]) + (
            f" (and {more} more problem(s): `podium policy check` lists them)" if more else "")


class _Bad(Exception):
    """A value is wrong: the reason (the caller adds where)."""


# --- the typed policy ----------------------------------------------------------------------

def _meta(kind: str, doc: str, *, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, hi_open: bool = False, optional: bool = False,
          note: str | None = None) -> dict[str, Any]:
    """What a key accepts: its kind, meaning and allowed range (``note`` ends the "expected
    ..." of a refusal, e.g. for a deprecated key)."""
    return {"kind": kind, "doc": doc, "lo": lo, "hi": hi, "lo_open": lo_open,
            "hi_open": hi_open, "optional": optional, "note": note}


def _k(kind: str, default: Any, doc: str, **allowed: Any) -> Any:
    """A policy key: its kind, default, meaning and allowed range."""
    return field(default=default, metadata=_meta(kind, doc, **allowed))


def _sub(cls: type, doc: str) -> Any:
    return field(default_factory=cls, metadata={"section": cls, "doc": doc})


_T, _C, _B = defaults.THRESHOLDS, defaults.COMPARISON, defaults.BUSINESS
_M = defaults.MONITORING
_FLOOR = {"lo": 0.0, "hi": 1.0}
_PROBABILITY = {"lo": 0.0, "hi": 1.0, "lo_open": True, "hi_open": True}
_POSITIVE = {"lo": 0.0, "lo_open": True}


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples) for code that takes dicts (model_tests)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Checks(_AsDict):
    description_min_length: int = _k("int", _T["description_min_length"],
                                     "shortest acceptable version description", lo=0)
    load_seconds: float = _k("float", _T["load_seconds"], "time limit to load the model",
                             **_POSITIVE)
    roc_auc: float = _k("float", _T["roc_auc"], "holdout ROC AUC floor", **_FLOOR)
    f1: float = _k("float", _T["f1"], "holdout F1 floor at decision_threshold", **_FLOOR)
    precision: float = _k("float", _T["precision"], "holdout precision floor", **_FLOOR)
    recall: float = _k("float", _T["recall"], "holdout recall floor", **_FLOOR)
    decision_threshold: float = _k("float", _T["decision_threshold"],
                                   "probability at which a customer counts as a churner",
                                   **_PROBABILITY)
    slice_columns: tuple[str, ...] = _k("names", tuple(_T["slice_columns"]),
                                        "columns whose values are scored as slices")
    slice_min_rows: int = _k("int", _T["slice_min_rows"], "smallest slice that is scored",
                             lo=1)
    slice_roc_auc: float = _k("float", _T["slice_roc_auc"], "ROC AUC floor for every slice",
                              **_FLOOR)
    slice_gap: float = _k("float", _T["slice_gap"],
                          "largest allowed gap between slices' ROC AUC", **_FLOOR)
    directional_share: float = _k("float", _T["directional_share"],
                                  "share that must not score lower on month-to-month",
                                  **_FLOOR)
    churner_score: float = _k("float", _T["churner_score"],
                              "mean score textbook churners must reach", **_FLOOR)
    latency_p95_ms: float = _k("float", _T["latency_p95_ms"], "single-row p95 latency budget",
                               **_POSITIVE)
    batch_1000_ms: float = _k("float", _T["batch_1000_ms"], "time budget for 1,000 rows",
                              **_POSITIVE)
    artifact_mb: float = _k("float", _T["artifact_mb"], "model artifact size budget",
                            **_POSITIVE)


@dataclass(frozen=True)
class Comparison(_AsDict):
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
        "this improvement at 80 % power makes the comparison inconclusive", **_POSITIVE,
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


@dataclass(frozen=True)
class Business(_AsDict):
    value_saved_churner: float = _k("float", _B["value_saved_churner"],
                                    "value of keeping a customer who would churn", lo=0.0)
    contact_cost: float = _k("float", _B["contact_cost"], "cost of one retention contact",
                             lo=0.0)
    contact_success_rate: float = _k("float", _B["contact_success_rate"],
                                     "share of contacted churners who stay", **_PROBABILITY)
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
                             "(rejected)", **_POSITIVE)
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
                          **_POSITIVE)
    retrain_on_drift: bool = _k("bool", False, "queue a retrain when drift is found")


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
                           "DeLong; precision, recall, churn rates: Wilson)", **_PROBABILITY)
    retrain_on_decay: bool = _k("bool", _M["retrain_on_decay"], "the monitoring job queues a "
                                "retrain (retrain:<model>:<date>) when decay is found")


@dataclass(frozen=True)
class SandboxLimits(_AsDict):
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
    sandbox_limits: SandboxLimits = _sub(SandboxLimits, "what the model's sandbox may hold "
                                         "(its cgroup), over the PODIUM_SANDBOX_* settings")
    id_column: str = _k("str", "customerID", "the column that identifies a row (customer): "
                        "the comparison refuses holdout rows that trained either model")
    checks: Checks = _sub(Checks, "thresholds of the model-quality checks")
    comparison: Comparison = _sub(Comparison, "champion vs challenger decision rule")
    business: Business = _sub(Business, "business value at decision_threshold")
    approval: Approval = _sub(Approval, "who must approve which targets")
    rollback: Rollback = _sub(Rollback, "who may roll the champion back")
    aliases: Aliases = _sub(Aliases, "registry aliases Podium moves")
    stages: bool = _k("bool", False, "also transition legacy MLflow stages")
    gitlab: GitLab = _sub(GitLab, "deploy pipeline after a promotion")
    schedules: Schedules = _sub(Schedules, "periodic model jobs")
    training: Training = _sub(Training, "scheduled retraining")
    drift: Drift = _sub(Drift, "scheduled drift reports")
    monitoring: Monitoring = _sub(Monitoring, "realised quality after promotion: the decay "
                                  "rule and the monitoring job")


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


# --- loading -------------------------------------------------------------------------------

def load_policy(path: str | Path | None, *, warn: bool = True) -> Policy:
    """Read and validate ``path``; PolicyError lists every problem. ``None`` means "no policy
    file" (the built-in defaults: only for commands that decide nothing, e.g. ``podium
    check`` without ``--policy``); a path that does not exist is an error."""
    if path is None:
        return Policy.empty()
    p = Path(path)
    if not p.exists():
        raise PolicyError(Problem("", "the policy file does not exist (fail closed: Podium "
                                      "never falls back to defaults for a named file)",
                                  source=str(path)))
    if not p.is_file():
        raise PolicyError(Problem("", "not a file", source=str(path)))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(Problem("", f"cannot read it: {exc}", source=str(path))) from None
    return parse_text(text, base=p.parent, source=str(path), warn=warn)


def parse_text(text: str, base: Path = Path("."), source: str | None = None, *,
               warn: bool = True) -> Policy:
    """Parse policy YAML (duplicate keys refused, lines kept for the messages)."""
    doc, problems = load_yaml(text, source)
    return parse_policy(doc, base=base, source=source, warn=warn, problems=problems)


def parse_policy(doc: Any, base: Path = Path("."), source: str | None = None, *,
                 warn: bool = True, problems: list[Problem] | None = None) -> Policy:
    """Validate a parsed document (a dict, or what ``load_yaml`` returns, which knows its
    lines) into a Policy; PolicyError lists every problem."""
    ctx = _Ctx(base, source, list(problems or ()))
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        ctx.error("policy", "expected a mapping with 'default', 'models' and/or 'people'",
                  _line(doc))
        raise PolicyError(ctx.problems)
    for key in doc:
        if key not in TOP_LEVEL:
            ctx.error(str(key), "unknown key (expected 'default', 'models', 'people' or "
                      "'operators')" + _suggest(key, TOP_LEVEL), _line(doc, key))
    _parse_people(ctx, doc.get("people"), _line(doc, "people"))
    operators = _operators(ctx, doc)
    default_raw = _clean(ctx, doc.get("default"), ModelPolicy, "default", _line(doc, "default"))
    models_doc = doc.get("models")
    models_raw: dict[str, dict] = {}
    if models_doc is not None and not isinstance(models_doc, dict):
        ctx.error("models", "expected a mapping of model name to settings",
                  _line(doc, "models"))
    elif models_doc:
        for name, body in models_doc.items():
            models_raw[str(name)] = _clean(ctx, body, ModelPolicy, f"models.{name}",
                                           _line(models_doc, name))
    default = _build(ModelPolicy, default_raw)
    _check_model(ctx, default, "default", default_raw)
    models = {}
    for name, raw in models_raw.items():
        models[name] = _build(ModelPolicy, _merge(default_raw, raw))
        _check_model(ctx, models[name], f"models.{name}", raw)
    if ctx.problems:
        raise PolicyError(sorted(ctx.problems, key=lambda p: (p.line is None, p.line or 0)),
                          tuple(ctx.warnings))
    if warn:
        for line in ctx.warnings:
            log.warning("%s", line)
    people = {name: MappingProxyType(dict(kinds)) for name, kinds in ctx.people.items()}
    return Policy(default=default, models=MappingProxyType(models),
                  people=MappingProxyType(people), source=source,
                  warnings=tuple(ctx.warnings), identities=MappingProxyType(dict(ctx.owner)),
                  operators=operators)


def _operators(ctx: _Ctx, doc: dict) -> tuple[str, ...] | None:
    """``operators:`` (people who may replay jobs and resend notifications), or None."""
    if "operators" not in doc:
        return None
    try:
        return _approvers(ctx, doc["operators"] or [], "operators", _line(doc, "operators"))
    except _Bad as exc:
        ctx.error("operators", str(exc), _line(doc, "operators"))
        return ()


# --- YAML with lines and without duplicate keys --------------------------------------------

class _Map(dict):
    """A YAML mapping that remembers the line of each key."""

    lines: dict


class _Seq(list):
    """A YAML sequence that remembers the line of each item."""

    lines: list


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (naming both lines) and keeps line numbers.
    ``load_yaml`` reports every duplicate with its key path first, then loads with
    ``allow_duplicates`` so the rest of the file is still checked."""

    allow_duplicates = False


def _construct_map(loader: StrictLoader, node: MappingNode):
    data = _Map()
    data.lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark) from None
        line = key_node.start_mark.line + 1
        if key in data.lines and not loader.allow_duplicates:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first on line {data.lines[key]})",
                key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


def _construct_seq(loader: StrictLoader, node: SequenceNode):
    data = _Seq()
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item, deep=True) for item in node.value)


StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
StrictLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(text: str, source: str | None = None) -> tuple[Any, list[Problem]]:
    """(document, duplicate-key problems); PolicyError when the text is not YAML."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        problems: list[Problem] = []
        if node is not None:
            _duplicates(node, "", problems, source, set())
        loader.allow_duplicates = True
        doc = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(Problem("", f"not valid YAML: {_yaml_reason(exc)}", line,
                                  source)) from None
    finally:
        loader.dispose()
    return doc, problems


def _yaml_reason(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = "; ".join(p for p in parts if p)
    return text or str(exc).splitlines()[0]


def _duplicates(node: Node, path: str, out: list[Problem], source: str | None,
                seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias used twice is checked once
        return
    seen_nodes.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = f"{path}.{key}" if path else str(key)
            line = key_node.start_mark.line + 1
            if key is not None:
                ident = (key_node.tag, key)
                if ident in first:
                    out.append(Problem(where, f"duplicate key (first on line {first[ident]}); "
                                              "remove one (YAML would silently keep the "
                                              "last)", line, source))
                else:
                    first[ident] = line
            _duplicates(value_node, where, out, source, seen_nodes)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _duplicates(item, f"{path}[{i}]", out, source, seen_nodes)


# --- validation ----------------------------------------------------------------------------

class _Ctx:
    def __init__(self, base: Path, source: str | None, problems: list[Problem]) -> None:
        self.base, self.source, self.problems = base, source, problems
        self.warnings: list[str] = []
        self.lines: dict[str, int] = {}
        self.people: dict[str, dict[str, tuple[str, ...]]] = {}
        self.owner: dict[str, str] = {}  # identity -> person
        self.where: dict[str, str] = {}  # identity -> key path that lists it
        self.implicit: set[str] = set()  # people named by a deprecated approvers entry
        self.digests: dict[str, str] = {}  # local file -> sha256 (each file read once)

    def error(self, path: str, reason: str, line: int | None = None) -> None:
        self.problems.append(Problem(path, reason, line, self.source))

    def warn(self, path: str, reason: str, line: int | None = None) -> None:
        self.warnings.append(str(Problem(path, reason, line, self.source)))

    def line_of(self, *paths: str) -> int | None:
        for p in paths:
            if self.lines.get(p):
                return self.lines[p]
        return None


def _line(doc: Any, key: Any = None) -> int | None:
    lines = getattr(doc, "lines", None)
    if lines is None:
        return None
    if key is None:
        return None
    if isinstance(lines, dict):
        return lines.get(key)
    return lines[key] if isinstance(key, int) and 0 <= key < len(lines) else None


def _suggest(key: Any, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_people(ctx: _Ctx, doc: Any, line: int | None) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        ctx.error("people", "expected a mapping of person name to identities, e.g. "
                            "alice: {slack: U0123ALICE, cli: alice}", line)
        return
    for name, kinds in doc.items():
        where = f"people.{name}"
        name_line = _line(doc, name)
        if not isinstance(name, str) or not name.strip() or ":" in name:
            ctx.error(where, "a person's name is a non-empty string without ':' (identities "
                             "such as slack:U0123 go inside)", name_line)
            continue
        if not isinstance(kinds, dict) or not kinds:
            ctx.error(where, "no identities: give at least one of "
                             f"{', '.join(IDENTITY_KINDS)}, e.g. {{slack: U0123ALICE}}",
                      name_line)
            ctx.people.setdefault(name, {})
            continue
        person: dict[str, tuple[str, ...]] = {}
        for kind, values in kinds.items():
            kw = f"{where}.{kind}"
            kline = _line(kinds, kind) or name_line
            if kind not in IDENTITY_KINDS:
                ctx.error(kw, f"unknown identity kind (expected one of "
                              f"{', '.join(IDENTITY_KINDS)})" + _suggest(kind, IDENTITY_KINDS),
                          kline)
                continue
            items = values if isinstance(values, list) else [values]
            if not items:
                ctx.error(kw, "expected an identity or a list of them, got []", kline)
            found = []
            for i, value in enumerate(items):
                vline = _line(values, i) if isinstance(values, list) else kline
                try:
                    found.append(_identity_value(kind, value))
                except _Bad as exc:
                    ctx.error(kw + (f"[{i}]" if isinstance(values, list) else ""), str(exc),
                              vline or kline)
                    continue
                identity = f"{kind}:{found[-1]}"
                owner = ctx.owner.get(identity)
                if owner is not None and owner != name:
                    ctx.error(kw, f"{identity} is already {owner}'s ({ctx.where[identity]}): "
                                  "an identity belongs to one person", vline or kline)
                    continue
                ctx.owner[identity], ctx.where[identity] = name, kw
            person[kind] = tuple(dict.fromkeys(found))
        ctx.people[name] = person


def _identity_value(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise _Bad(f"expected a {kind} identity (a string without spaces), got {value!r}")
    if kind == "slack" and not SLACK_USER.match(value):
        raise _Bad(f"expected a Slack user id (U0123ABCD, never a name), got {value!r}")
    return value


@dataclass(frozen=True)
class _Old:
    """A key a section no longer has. With ``new`` it is read as ``new`` (the value checked
    as ``meta`` says, else as ``new`` is, then ``convert``-ed) with the deprecation warning
    ``message`` (formatted with ``value``, the converted value), unless the section also sets
    ``new``; without ``new`` it is refused with ``message``."""

    message: str
    new: str | None = None
    convert: Callable[[Any], Any] | None = None
    meta: Mapping[str, Any] | None = None


_DEPRECATED: dict[type, dict[str, _Old]] = {Comparison: {
    "confidence": _Old("comparison.confidence is deprecated (a two-sided interval): read as "
                       "alpha: {value:g} (one-sided); write alpha instead", "alpha",
                       lambda x: float(f"{(1 - x) / 2:.12g}"),
                       _meta("float", "", **_PROBABILITY, note="deprecated: use alpha")),
    "min_gain": _Old("comparison.min_gain is deprecated: read as min_improvement: {value:g}",
                     "min_improvement"),
    "seed": _Old("comparison.seed is no longer a setting: the bootstrap seed is derived from "
                 "the model, the versions and the holdout digest, so a decision cannot be "
                 "re-rolled; remove it"),
}}


def _clean(ctx: _Ctx, doc: Any, cls: type, path: str, line: int | None) -> dict:
    """The keys ``doc`` sets, converted; each bad key or value is one problem (and left
    out, so the checks after it see the default instead). A deprecated key is read as its
    replacement with a warning, or refused (``_DEPRECATED``)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        ctx.error(path, f"expected a mapping, got {doc!r}", line)
        return {}
    if line:
        ctx.lines[path] = line
    spec = {f.name: f for f in dataclasses.fields(cls)}
    old = _DEPRECATED.get(cls, {})
    out: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"{path}.{key}"
        kline = _line(doc, key) or line
        if kline:
            ctx.lines[where] = kline
        f = spec.get(key) if isinstance(key, str) else None
        if f is None and key in old:
            _deprecated(ctx, old[key], str(key), value, spec, doc, out, path, kline)
            continue
        if f is None:
            ctx.error(where, f"unknown key (expected one of {', '.join(sorted(spec))})"
                      + _suggest(key, spec), kline)
            continue
        if "section" in f.metadata:
            out[key] = _clean(ctx, value, f.metadata["section"], where, kline)
            continue
        try:
            out[key] = _value(ctx, value, f.metadata, where, kline, doc)
        except _Bad as exc:
            ctx.error(where, str(exc), kline)
    return out


def _deprecated(ctx: _Ctx, old: _Old, key: str, value: Any, spec: Mapping[str, Any],
                doc: dict, out: dict[str, Any], path: str, line: int | None) -> None:
    """Read the deprecated ``key`` of the section at ``path`` into ``out`` as its
    replacement (with a warning), or refuse it; a problem names the old key's line."""
    where = f"{path}.{key}"
    if old.new is None:
        ctx.error(where, old.message, line)
        return
    if old.new in doc:
        ctx.error(where, f"set {old.new} or the deprecated {key}, not both", line)
        return
    meta = old.meta or {**spec[old.new].metadata, "note": f"deprecated: use {old.new}"}
    try:
        converted = _value(ctx, value, meta, where, line, doc)
    except _Bad as exc:
        ctx.error(where, str(exc), line)
        return
    if old.convert is not None:
        converted = old.convert(converted)
    out[old.new] = converted
    if line:
        ctx.lines.setdefault(f"{path}.{old.new}", line)
    ctx.warn(where, old.message.format(value=converted), line)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and hi is not None:
        return (f" in {'(' if meta['lo_open'] else '['}{_num(lo)}, {_num(hi)}"
                f"{')' if meta['hi_open'] else ']'}")
    if lo is not None:
        return f" {'>' if meta['lo_open'] else '>='} {_num(lo)}"
    if hi is not None:
        return f" {'<' if meta['hi_open'] else '<='} {_num(hi)}"
    return ""


def _num(x: float) -> str:
    """A bound as written (1048576, not 1.04858e+06)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _in_range(x: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (x <= lo if meta["lo_open"] else x < lo):
        return False
    return not (hi is not None and (x >= hi if meta["hi_open"] else x > hi))


def _value(ctx: _Ctx, value: Any, meta: Mapping[str, Any], where: str, line: int | None,
           parent: Any) -> Any:
    kind = meta["kind"]
    if value is None:
        if kind in ("targets", "approvers", "names"):
            return frozenset() if kind == "targets" else ()
        if meta["optional"]:
            return None
        raise _Bad(f"expected {_expected(meta)}, got null")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not _in_range(value, meta):
            raise _Bad(f"expected {_expected(meta)}, got {value!r}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Bad(f"expected {_expected(meta)}, got {value!r}")
        if not math.isfinite(value):
            raise _Bad(f"expected a finite number{_range_text(meta)}{_note(meta)}, "
                       f"got {value!r}")
        if not _in_range(value, meta):
            raise _Bad(f"expected {_expected(meta)}, got {value!r}")
        return float(value)
    if kind in ("str", "alias"):
        if not isinstance(value, str) or not value.strip():
            raise _Bad(f"expected a non-empty string, got {value!r}")
        if kind == "alias" and (any(c.isspace() for c in value)
                                or re.fullmatch(r"(?i)v\d+|latest", value)):
            raise _Bad(f"expected an MLflow alias (no spaces, not 'latest' or v<N>), "
                       f"got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Bad(f"expected true or false, got {value!r}")
        return value
    if kind == "cron":
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(str(value), timezone="UTC")
        except ValueError as exc:
            raise _Bad(f"invalid cron expression {value!r} ({exc})") from None
        return str(value)
    if kind == "target":
        target = normalise_target(value) if isinstance(value, str) else None
        if target is None:
            raise _Bad(f"expected one of {', '.join(TARGETS)}, got {value!r}")
        return target
    if kind == "targets":
        items = value if isinstance(value, list) else [value]
        out = [normalise_target(v) if isinstance(v, str) else None for v in items]
        if None in out:
            raise _Bad(f"expected targets among {', '.join(TARGETS)}, got {value!r}")
        return frozenset(out)
    if kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _Bad(f"expected a list of names, got {value!r}")
        return tuple(value)
    if kind == "slack_group":
        if not isinstance(value, str) or not SLACK_GROUP.match(value):
            raise _Bad(f"expected a Slack user group id (S0123ABCD), got {value!r}")
        return value
    if kind == "path":
        if not isinstance(value, str) or not value.strip():
            raise _Bad(f"expected a path, got {value!r}")
        if is_uri(value):  # a URI (s3://, runs:/ ...) is kept as written
            return value
        p = Path(value)
        return str(p if p.is_absolute() else (ctx.base / p).resolve())
    if kind == "sha256":
        if not isinstance(value, str) or not SHA256.match(value):
            raise _Bad(f"expected {_expected(meta)}, got {value!r}")
        return value.lower()
    if kind in _CHOICES:
        if not isinstance(value, str) or value not in _CHOICES[kind]:
            raise _Bad(f"expected {_expected(meta)}, got {value!r}")
        return value
    if kind == "approvers":
        return _approvers(ctx, value, where, line)
    raise AssertionError(kind)


def _expected(meta: Mapping[str, Any]) -> str:
    kind = meta["kind"]
    if kind == "int":
        return "a whole number" + _range_text(meta) + _note(meta)
    if kind == "float":
        return "a number" + _range_text(meta) + _note(meta)
    if kind in _CHOICES:
        return _one_of(_CHOICES[kind]) + _note(meta)
    return {"bool": "true or false", "cron": "a cron expression", "path": "a path",
            "target": _one_of(TARGETS), "sha256": "a sha256 hex digest (64 hex digits)"
            }.get(kind, "a non-empty string") + _note(meta)


def _one_of(names: tuple[str, ...]) -> str:
    return " or ".join(names) if len(names) == 2 else f"one of {', '.join(names)}"


def _note(meta: Mapping[str, Any]) -> str:
    return f" ({meta['note']})" if meta.get("note") else ""


def is_uri(value: str) -> bool:
    """A URI (``s3://...``, ``runs:/<run>/path``), not a local path."""
    return bool(URI.match(value))


def _approvers(ctx: _Ctx, value: Any, where: str, line: int | None) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Bad(f"expected a list of people (names under people:), got {value!r}")
    names: dict[str, str] = {}  # person -> the entry that named them
    for i, entry in enumerate(value):
        at, eline = f"{where}[{i}]", _line(value, i) or line
        if not isinstance(entry, str) or not entry.strip():
            ctx.error(at, f"expected a person's name, got {entry!r}", eline)
            continue
        person = _approver(ctx, entry, at, eline)
        if person is None:
            continue
        if person in names:
            same = "" if names[person] == entry else (
                f" ({names[person]!r} and {entry!r} are both {person})")
            ctx.error(at, f"{person} is listed twice{same}: a quorum counts people, so "
                          "list each person once", eline)
            continue
        names[person] = entry
    return tuple(names)


def _approver(ctx: _Ctx, entry: str, at: str, line: int | None) -> str | None:
    """The person an ``approvers`` entry names (None after reporting a problem)."""
    if entry in ctx.people and entry not in ctx.implicit:
        return entry
    kind, sep, _ = entry.partition(":")
    if sep and kind in IDENTITY_KINDS:
        identity = entry
    elif not sep and SLACK_USER.match(entry):
        identity = f"slack:{entry}"
    else:
        known = f" (people: {', '.join(sorted(ctx.people))})" if ctx.people else ""
        ctx.error(at, f"{entry!r} is not a person: add people.{entry.split(':')[0]} with "
                      f"their identities{known}" + _suggest(entry, ctx.people), line)
        return None
    try:
        _identity_value(identity.partition(":")[0], identity.partition(":")[2])
    except _Bad as exc:
        ctx.error(at, str(exc), line)
        return None
    owner = ctx.owner.get(identity)
    if owner is not None and owner not in ctx.implicit:
        ctx.warn(at, f"{entry!r} is an identity, not a person (deprecated, accepted for one "
                     f"release): it is {owner}'s, list {owner!r} instead", line)
        return owner
    kind = identity.partition(":")[0]
    ctx.warn(at, f"{entry!r} is an identity, not a person (deprecated, accepted for one "
                 f"release as the person {identity!r}): move it under people, e.g. "
                 f"people: {{<name>: {{{kind}: {identity.partition(':')[2]}}}}}, and list "
                 "<name>", line)
    if owner is None:
        ctx.people[identity] = {kind: (identity.partition(":")[2],)}
        ctx.owner[identity], ctx.where[identity] = identity, at
        ctx.implicit.add(identity)
    return identity


def _check_model(ctx: _Ctx, mp: ModelPolicy, scope: str, raw: dict) -> None:
    """Rules across keys, on the merged policy of one model (reported for a model only
    when its own section sets the keys involved: the default's are reported once)."""
    a = mp.approval
    section = f"{scope}.approval"
    if scope == "default" or "approval" in raw:
        line = ctx.line_of(section, scope)
        if a.targets and not a.approvers and not a.slack_usergroup:
            targets = [t for t in TARGETS if t in a.targets]
            ctx.error(section, f"{', '.join(targets)} need{'s' if len(targets) == 1 else ''} "
                               "approval but nobody may approve (no approvers, no "
                               "slack_usergroup)", line)
        elif a.approvers and not a.slack_usergroup and a.quorum > len(a.approvers):
            ctx.error(f"{section}.quorum",
                      f"quorum {a.quorum} but only {len(a.approvers)} "
                      f"{'person' if len(a.approvers) == 1 else 'people'} may approve "
                      f"({', '.join(a.approvers)}): no request could ever be approved",
                      ctx.line_of(f"{section}.quorum", f"{section}.approvers", section, scope))
    own = raw.get("approval") or {}
    if ((scope == "default" or "inconclusive" in (raw.get("comparison") or {})
         or "approvers" in own or "slack_usergroup" in own)
            and mp.comparison.inconclusive == "approval" and not a.approvers
            and not a.slack_usergroup):
        ctx.error(f"{scope}.comparison.inconclusive", "approval but nobody may approve (no "
                  "approvers, no slack_usergroup)",
                  ctx.line_of(f"{scope}.comparison.inconclusive", f"{scope}.approval.approvers",
                              f"{scope}.approval.slack_usergroup", section,
                              f"{scope}.comparison", scope))
    r = mp.rollback
    if (scope == "default" or "rollback" in raw) and r.quorum > 1:
        who = r.approvers or a.approvers
        if r.quorum > len(who):
            ctx.error(f"{scope}.rollback.quorum",
                      f"rollback quorum {r.quorum} but only {len(who)} "
                      f"{'person' if len(who) == 1 else 'people'} may roll back: no rollback "
                      "could ever happen", ctx.line_of(f"{scope}.rollback.quorum",
                                                       f"{scope}.rollback", scope))
    if (scope == "default" or "aliases" in raw) and mp.aliases.champion == mp.aliases.staging:
        ctx.error(f"{scope}.aliases", f"champion and staging are the same alias "
                                      f"({mp.aliases.champion!r})",
                  ctx.line_of(f"{scope}.aliases.staging", f"{scope}.aliases", scope))
    _check_holdout(ctx, mp, scope, raw)


def _check_holdout(ctx: _Ctx, mp: ModelPolicy, scope: str, raw: dict) -> None:
    """A local holdout must exist; a digest must pin a holdout; a holdout without a digest
    is a warning (showing the file's digest now), and so is a file whose digest is not the
    pinned one (every request would fail)."""
    own_holdout = scope == "default" or "holdout" in raw
    if not (own_holdout or "holdout_sha256" in raw):
        return
    where, line = f"{scope}.holdout", ctx.line_of(f"{scope}.holdout", scope)
    if mp.holdout is None:
        if mp.holdout_sha256 is not None:
            ctx.error(f"{scope}.holdout_sha256", "holdout_sha256 pins nothing: set holdout "
                      "(the path or URI of the file)",
                      ctx.line_of(f"{scope}.holdout_sha256", scope))
        return
    digest = None
    if not is_uri(mp.holdout):
        path = Path(mp.holdout)
        if not path.exists():
            if own_holdout:
                ctx.error(where, f"holdout file does not exist: {path}", line)
            return
        if not path.is_file():
            if own_holdout:
                ctx.error(where, f"holdout is not a file: {path}", line)
            return
        digest = ctx.digests.get(str(path))
        if digest is None:
            try:
                digest = ctx.digests[str(path)] = sha256_file(path)
            except OSError as exc:
                if own_holdout:
                    ctx.error(where, f"holdout file cannot be read: {exc}", line)
                return
    if mp.holdout_sha256 is None:
        ctx.warn(where, f"holdout is not pinned by digest: add holdout_sha256: {digest}"
                 if digest else "holdout is not pinned by digest: add holdout_sha256 (the "
                 "digest is recorded with every decision either way)", line)
    elif digest is not None and digest != mp.holdout_sha256:
        ctx.warn(where, f"the holdout file's sha256 is {digest}, not holdout_sha256 "
                        f"{mp.holdout_sha256}: every request fails until they agree",
                 ctx.line_of(f"{scope}.holdout_sha256", where, scope))


def _build(cls: type, values: dict) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            kwargs[f.name] = _build(f.metadata["section"], v) if "section" in f.metadata else v
    return cls(**kwargs)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def describe() -> list[tuple[str, str, str]]:
    """(key path, default, meaning) of every per-model key, for documentation."""
    rows: list[tuple[str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if "section" in f.metadata:
                walk(f.metadata["section"], f"{prefix}{f.name}.")
            else:
                rows.append((prefix + f.name, repr(f.default), f.metadata["doc"]))

    walk(ModelPolicy, "")
    return rows
