"""What the checks and the comparison are told about one model: plain values, no policy
objects. The service builds it from its loaded policy; the command-line edges
(``python -m model_tests``, the pytest plugin) read the policy file for it here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class JudgeConfig:
    """What the policy says about judging one model (plain values: no policy objects)."""

    thresholds: dict = field(default_factory=dict)
    comparison: dict = field(default_factory=dict)
    business: dict = field(default_factory=dict)
    decision_threshold: float = 0.5
    holdout: str | None = None
    holdout_sha256: str | None = None
    allow_run_holdout: bool = False
    sandbox_required: bool = False
    # the sandbox's cgroup limits over the settings' (None: the setting), and whether
    # `sandbox: required` accepts per-process limits where no cgroup can be made
    sandbox_limits: dict = field(default_factory=dict)
    accept_per_process_limits: bool = False
    id_column: str = "customerID"
    champion_alias: str = "champion"


def from_policy(model_policy) -> JudgeConfig:
    """One model's section of a loaded policy (``podium_policy.schema.ModelPolicy``)."""
    return JudgeConfig(thresholds=model_policy.checks.as_dict(),
                       comparison=model_policy.comparison.as_dict(),
                       business=model_policy.business.as_dict(),
                       decision_threshold=model_policy.checks.decision_threshold,
                       holdout=model_policy.holdout,
                       holdout_sha256=model_policy.holdout_sha256,
                       allow_run_holdout=model_policy.allow_run_holdout,
                       sandbox_required=model_policy.sandbox == "required",
                       sandbox_limits={k: v for k, v in
                                       model_policy.sandbox_limits.as_dict().items()
                                       if k != "accept_per_process" and v is not None},
                       accept_per_process_limits=model_policy.sandbox_limits
                       .accept_per_process,
                       id_column=model_policy.id_column,
                       champion_alias=model_policy.aliases.champion)


def read_policy(policy_path: str | None, model: str | None) -> JudgeConfig:
    """The policy file's settings for ``model`` (no file: the built-in defaults), read
    without repeating its deprecation lines for each check."""
    from podium_policy.check import load_policy

    return from_policy(load_policy(policy_path, warn=False).for_model(model or ""))
