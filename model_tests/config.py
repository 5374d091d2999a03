"""What the checks and the comparison are told about one model: the policy's own typed
sections (``podium_policy.policy``: ``Checks``, ``Comparison``, ``Business``,
``SandboxLimits``), read by attribute, never turned back into dicts. The service builds it
from its loaded policy; the command-line edges (``python -m model_tests``, the pytest
plugin) read the policy file for it here."""

from __future__ import annotations

from dataclasses import dataclass, field

from podium_policy.policy import Business, Checks, ModelPolicy, SandboxLimits
from podium_policy.policy import Comparison as ComparisonRule


@dataclass(frozen=True)
class JudgeConfig:
    """What the policy says about judging one model (defaults: the policy's defaults)."""

    thresholds: Checks = field(default_factory=Checks)
    comparison: ComparisonRule = field(default_factory=ComparisonRule)
    business: Business = field(default_factory=Business)
    decision_threshold: float = 0.5
    holdout: str | None = None
    holdout_sha256: str | None = None
    allow_run_holdout: bool = False
    sandbox_required: bool = False
    # the sandbox's cgroup limits over the settings' (None: the setting), and whether
    # `sandbox: required` accepts per-process limits where no cgroup can be made
    sandbox_limits: SandboxLimits = field(default_factory=SandboxLimits)
    id_column: str = "customerID"
    champion_alias: str = "champion"
    policy_sha256: str | None = None  # the policy file's digest (the evidence bundle keeps it)
    policy_source: str | None = None


def from_policy(model_policy: ModelPolicy) -> JudgeConfig:
    """One model's section of a loaded policy."""
    return JudgeConfig(thresholds=model_policy.checks,
                       comparison=model_policy.comparison,
                       business=model_policy.business,
                       decision_threshold=model_policy.checks.decision_threshold,
                       holdout=model_policy.holdout,
                       holdout_sha256=model_policy.holdout_sha256,
                       allow_run_holdout=model_policy.allow_run_holdout,
                       sandbox_required=model_policy.sandbox == "required",
                       sandbox_limits=model_policy.sandbox_limits,
                       id_column=model_policy.id_column,
                       champion_alias=model_policy.aliases.champion)


def read_policy(policy_path: str | None, model: str | None) -> JudgeConfig:
    """The policy file's settings for ``model`` (no file: the built-in defaults), read
    without repeating its deprecation lines for each check."""
    from podium_policy.check import load_policy

    return from_policy(load_policy(policy_path, warn=False).for_model(model or ""))
