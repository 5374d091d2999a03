"""The policy file: people, and per-model settings with a ``default`` section.

This module is the policy's public face; the work is done in ``schema`` (the typed objects
and their keys, declared with ``fields``), ``load`` (strict YAML with lines), ``check``
(reading and validating), ``people`` (people, approvers, operators), ``rules`` (the rules
across keys) and ``describe`` (the documentation table).

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

from podium_policy.check import load_policy, parse_policy, parse_text
from podium_policy.describe import describe
from podium_policy.digests import sha256_file
from podium_policy.load import StrictLoader, load_yaml
from podium_policy.schema import (
    CHOICES,
    IDENTITY_KINDS,
    INCONCLUSIVE,
    METRICS,
    PERIODS,
    PROTECT,
    REQUESTERS,
    RULES,
    SANDBOX_MODES,
    SHA256,
    SLACK_GROUP,
    SLACK_USER,
    TOP_LEVEL,
    URI,
    VALUE_RULES,
    Aliases,
    Approval,
    Business,
    Checks,
    Comparison,
    Drift,
    GitLab,
    ModelPolicy,
    Monitoring,
    Policy,
    PolicyError,
    Problem,
    Rollback,
    SandboxLimits,
    Schedules,
    Scoring,
    Training,
    is_uri,
)

__all__ = [
    "CHOICES", "IDENTITY_KINDS", "INCONCLUSIVE", "METRICS", "PERIODS", "PROTECT", "REQUESTERS",
    "RULES", "SANDBOX_MODES", "SHA256", "SLACK_GROUP", "SLACK_USER", "TOP_LEVEL", "URI",
    "VALUE_RULES", "Aliases", "Approval", "Business", "Checks", "Comparison", "Drift", "GitLab",
    "ModelPolicy", "Monitoring", "Scoring", "Policy", "PolicyError", "Problem", "Rollback",
    "SandboxLimits", "Schedules", "StrictLoader", "Training", "describe", "is_uri",
    "load_policy", "load_yaml", "parse_policy", "parse_text", "sha256_file",
]
