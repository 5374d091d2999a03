"""Policy file: typed and frozen, built once; people and their identities; every mistake
refused with its line and key path; a missing file is an error, never the defaults."""

import dataclasses
import hashlib
import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from podium_policy.check import load_policy, parse_policy, parse_text
from podium_policy.schema import Checks, ModelPolicy, PolicyError
from webhook_server.cli import main

ROOT = Path(__file__).parents[3]
PEOPLE = "people:\n  alice: {slack: U0123ALICE, cli: alice}\n  bob: {slack: U0456BOB}\n"


def problems(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "podium.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    return [str(p) for p in err.value.problems]


# --- loading ---------------------------------------------------------------------------------

def test_a_missing_file_is_an_error_never_the_defaults(tmp_path):
    with pytest.raises(PolicyError, match="absent.yaml: the policy file does not exist"):
        load_policy(tmp_path / "absent.yaml")


def test_no_file_at_all_means_the_built_in_defaults():
    policy = load_policy(None)
    churn = policy.for_model("churn")
    assert policy.models == {} and policy.people == {}
    assert churn.schedules.retrain is None and churn.schedules.drift is None
    assert churn.drift.threshold == 0.2 and churn.training.request == "Production"
    assert churn.approval.targets == frozenset() and churn.approval.quorum == 1
    assert churn.approval.allow_self_approval is False
    assert churn.aliases.champion == "champion" and churn.stages is False


def test_models_override_the_default_section_key_by_key(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "default:\n  drift: {threshold: 0.25}\n"
        "models:\n  churn:\n    schedules: {retrain: '0 3 * * 1'}\n"
        "    training: {data: data/churn.csv, request: staging}\n")
    policy = load_policy(tmp_path / "p.yaml")
    churn = policy.for_model("churn")
    assert churn.schedules.retrain == "0 3 * * 1"
    assert churn.training.request == "Staging" and churn.training.trials == 6
    assert churn.training.data == str(tmp_path / "data" / "churn.csv")
    assert churn.drift.threshold == 0.25
    assert policy.for_model("other").schedules.retrain is None
    assert policy.for_model("other").drift.threshold == 0.25


def test_the_model_policy_is_typed_frozen_and_built_once():
    policy = parse_text(PEOPLE + "models:\n  churn:\n    approval:\n"
                        "      targets: [production]\n      approvers: [alice, bob]\n"
                        "      quorum: 2\n      expiry_hours: 12\n")
    churn = policy.for_model("churn")
    assert isinstance(churn, ModelPolicy) and churn is policy.for_model("churn")
    a = churn.approval
    assert (a.targets, a.approvers, a.quorum, a.expiry_hours, a.slack_usergroup) == (
        frozenset({"Production"}), ("alice", "bob"), 2, 12.0, None)
    assert a.needs_person("Production") and not a.needs_person("Staging")
    with pytest.raises(dataclasses.FrozenInstanceError):
        churn.approval.quorum = 1
    assert isinstance(churn.checks, Checks)
    assert policy.summary() == "1 models, 2 people"


def test_the_example_policy_in_the_repository_validates_without_warnings(caplog):
    with caplog.at_level(logging.WARNING):
        policy = load_policy(ROOT / "podium.example.yaml")
    assert "churn" in policy.models and policy.warnings == () and not caplog.records
    assert set(policy.people) == {"alice", "bob"}
    approval = policy.for_model("churn").approval
    assert approval.approvers == ("alice", "bob") and approval.quorum == 2


# --- people ----------------------------------------------------------------------------------

def test_person_for_maps_each_identity_to_its_person():
    policy = parse_text("people:\n  alice: {slack: U0123ALICE, cli: [alice, asmith], "
                        "api: alice-bot, ui: alice@example.com, mlflow: alice}\n"
                        "  bob: {slack: U0456BOB, gitlab: bob}\n")
    assert policy.person_for("slack:U0123ALICE") == "alice"
    assert policy.person_for("cli:asmith") == "alice"
    assert policy.person_for("api:alice-bot") == "alice"
    assert policy.person_for("ui:alice@example.com") == "alice"
    assert policy.person_for("mlflow:alice") == "alice"
    assert policy.person_for("gitlab:bob") == "bob"
    assert policy.person_for("cli:bob") is None  # bob has no CLI identity
    assert policy.person_for("slack:U0456BOB") == "bob"
    assert policy.person_for("U0456BOB") is None and policy.person_for("alice") is None
    assert policy.people["alice"]["cli"] == ("alice", "asmith")


def test_deprecated_approvers_are_accepted_with_one_warning_each(caplog):
    doc = ("people:\n  alice: {slack: U0123ALICE}\n"
           "models:\n  churn:\n    approval:\n      targets: [Production]\n"
           "      approvers: [U0123ALICE, 'cli:carol', U0999DAVE]\n      quorum: 3\n")
    with caplog.at_level(logging.WARNING, logger="podium_policy.policy"):
        policy = parse_text(doc, source="podium.yaml")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines == list(policy.warnings)
    assert lines[0].startswith("podium.yaml:7: models.churn.approval.approvers[0]: "
                               "'U0123ALICE' is an identity, not a person")
    assert "it is alice's, list 'alice' instead" in lines[0]
    assert "move it under people" in lines[1] and "move it under people" in lines[2]
    # the owner of a listed identity is that person; others become a person of their own
    assert policy.for_model("churn").approval.approvers == ("alice", "cli:carol",
                                                            "slack:U0999DAVE")
    assert policy.person_for("cli:carol") == "cli:carol"
    assert policy.person_for("slack:U0999DAVE") == "slack:U0999DAVE"
    assert policy.person_for("slack:U0123ALICE") == "alice"


def test_one_person_listed_twice_through_two_identities_is_refused():
    """The bypass of issue 12: U0123ALICE and cli:alice were two approvals of one person."""
    with pytest.raises(PolicyError) as err:
        parse_text("people:\n  alice: {slack: U0123ALICE, cli: alice}\n  bob: {cli: bob}\n"
                   "models:\n  churn:\n    approval:\n      targets: [Production]\n"
                   "      approvers: [U0123ALICE, 'cli:alice']\n      quorum: 2\n")
    text = str(err.value)
    assert "models.churn.approval.approvers[1]: alice is listed twice ('U0123ALICE' and " \
           "'cli:alice' are both alice)" in text
    assert "quorum 2 but only 1 person may approve (alice)" in text


def test_warnings_are_silent_when_asked(caplog):
    with caplog.at_level(logging.WARNING):
        policy = parse_policy({"default": {"approval": {"approvers": ["cli:ana"]}}},
                              warn=False)
    assert not caplog.records and len(policy.warnings) == 1


# --- every kind of mistake, with its line ----------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("default:\n  comparison:\n    margin: 0.01\n    margin: 0.02\n",
     "podium.yaml:4: default.comparison.margin: duplicate key (first on line 3)"),
    ("models:\n  churn: {}\n  churn: {}\n",
     "podium.yaml:3: models.churn: duplicate key (first on line 2)"),
    ("default:\n  comparison: {margin: .nan}\n",
     "podium.yaml:2: default.comparison.margin: expected a finite number >= 0, got nan"),
    ("default:\n  comparison:\n    min_improvement: -.inf\n",
     "podium.yaml:3: default.comparison.min_improvement: expected a finite number >= 0, "
     "got -inf"),
    ("default:\n  comparison:\n    min_gain: -.inf\n",
     "podium.yaml:3: default.comparison.min_gain: expected a finite number >= 0 "
     "(deprecated: use min_improvement), got -inf"),
    ("default:\n  comparison:\n    confidence: 7.0\n",
     "podium.yaml:3: default.comparison.confidence: expected a number in (0, 1) "
     "(deprecated: use alpha), got 7.0"),
    ("default:\n  comparison:\n    bootstrap: 0\n",
     "podium.yaml:3: default.comparison.bootstrap: expected a whole number >= 1000, got 0"),
    ("default:\n  checks:\n    decision_threshold: -0.5\n",
     "podium.yaml:3: default.checks.decision_threshold: expected a number in (0, 1), "
     "got -0.5"),
    ("default:\n  checks: {roc_auc: 1.5}\n",
     "podium.yaml:2: default.checks.roc_auc: expected a number in [0, 1], got 1.5"),
    ("default:\n  drift:\n    threshold: -1\n",
     "podium.yaml:3: default.drift.threshold: expected a number > 0, got -1"),
    ("default:\n  business: {contact_cost: -20}\n",
     "podium.yaml:2: default.business.contact_cost: expected a number >= 0, got -20"),
    ("default:\n  business: {contact_success_rate: 1.3}\n",
     "default.business.contact_success_rate: expected a number in (0, 1), got 1.3"),
    ("default:\n  training: {trials: 0}\n",
     "podium.yaml:2: default.training.trials: expected a whole number >= 1, got 0"),
    ("default:\n  approval: {quorum: 0}\n",
     "podium.yaml:2: default.approval.quorum: expected a whole number >= 1, got 0"),
    ("default:\n  approval: {expiry_hours: 0}\n",
     "default.approval.expiry_hours: expected a number > 0, got 0"),
    (PEOPLE + "models:\n  churn:\n    approval:\n      targets: [Production]\n"
     "      approvers: [alice, bob]\n      quorum: 3\n",
     "podium.yaml:9: models.churn.approval.quorum: quorum 3 but only 2 people may approve "
     "(alice, bob): no request could ever be approved"),
    ("default:\n  checks:\n    roc_aux: 0.7\n",
     "podium.yaml:3: default.checks.roc_aux: unknown key (expected one of artifact_mb, "),
    ("models:\n  churn:\n    approval:\n      targets: [Production]\n",
     "podium.yaml:3: models.churn.approval: Production needs approval but nobody may approve "
     "(no approvers, no slack_usergroup)"),
    ("default:\n  approval: {targets: [Production], approvers: []}\n",
     "podium.yaml:2: default.approval: Production needs approval but nobody may approve"),
    ("people:\n  alice: {slack: U0123ALICE}\n  mallory: {slack: U0123ALICE}\n",
     "podium.yaml:3: people.mallory.slack: slack:U0123ALICE is already alice's "
     "(people.alice.slack): an identity belongs to one person"),
    ("people:\n  alice: {slack: alice}\n",
     "podium.yaml:2: people.alice.slack: expected a Slack user id (U0123ABCD, never a name)"),
    ("people:\n  alice: {email: a@example.com}\n",
     "podium.yaml:2: people.alice.email: unknown identity kind"),
    ("people:\n  alice: {}\n", "podium.yaml:2: people.alice: no identities"),
    (PEOPLE + "default:\n  approval:\n    approvers: [alice, carol]\n",
     "podium.yaml:6: default.approval.approvers[1]: 'carol' is not a person"),
    ("default:\n  approval: {slack_usergroup: reviewers}\n",
     "default.approval.slack_usergroup: expected a Slack user group id (S0123ABCD)"),
    ("default:\n  aliases: {staging: champion}\n",
     "default.aliases: champion and staging are the same alias ('champion')"),
    ("default:\n  stages: yes please\n", "default.stages: expected true or false"),
    ("default:\n  approval: {quorum: null}\n",
     "default.approval.quorum: expected a whole number >= 1, got null"),
    ("default:\n  schedules: {drift: 'every day'}\n",
     "default.schedules.drift: invalid cron expression 'every day'"),
    ("defaults: {}\n",
     "podium.yaml:1: defaults: unknown key (expected 'default', 'models', 'people' or "
     "'operators'); did you mean 'default'?"),
    ("default:\n  holdout: s3://data/h.csv\n  holdout_sha256: abc123\n",
     "podium.yaml:3: default.holdout_sha256: expected a sha256 hex digest (64 hex digits), "
     "got 'abc123'"),
    ("default:\n  holdout: s3://data/h.csv\n  holdout_sha256: " + "g" * 64 + "\n",
     "podium.yaml:3: default.holdout_sha256: expected a sha256 hex digest (64 hex digits), "
     "got 'ggg"),
    ("models:\n  churn:\n    holdout: s3://data/h.csv\n    holdout_sha256: 12\n",
     "podium.yaml:4: models.churn.holdout_sha256: expected a sha256 hex digest (64 hex "
     "digits), got 12"),
    ("default:\n  holdout_sha256: " + "a" * 64 + "\n",
     "podium.yaml:2: default.holdout_sha256: holdout_sha256 pins nothing: set holdout (the "
     "path or URI of the file)"),
    ("models:\n  churn:\n    holdout_sha256: " + "a" * 64 + "\n",
     "podium.yaml:3: models.churn.holdout_sha256: holdout_sha256 pins nothing: set holdout"),
    ("default:\n  sandbox: always\n",
     "podium.yaml:2: default.sandbox: expected required or preferred, got 'always'"),
    ("models:\n  churn: {sandbox: null}\n",
     "podium.yaml:2: models.churn.sandbox: expected required or preferred, got null"),
    ("default:\n  allow_run_holdout: 1\n",
     "podium.yaml:2: default.allow_run_holdout: expected true or false, got 1"),
    ("default:\n  comparison:\n    min_rows: 0\n",
     "podium.yaml:3: default.comparison.min_rows: expected a whole number >= 1, got 0"),
    ("default:\n  comparison: {min_rows: 12.5}\n",
     "podium.yaml:2: default.comparison.min_rows: expected a whole number >= 1, got 12.5"),
    ("default:\n  comparison:\n    metric: f1\n",
     "podium.yaml:3: default.comparison.metric: expected one of roc_auc, pr_auc, log_loss, "
     "brier, got 'f1'"),
    ("default:\n  comparison:\n    rule: better\n",
     "podium.yaml:3: default.comparison.rule: expected superiority or noninferiority, "
     "got 'better'"),
    ("default:\n  comparison:\n    alpha: 0\n",
     "podium.yaml:3: default.comparison.alpha: expected a number in (0, 0.5], got 0"),
    ("default:\n  comparison:\n    alpha: 0.6\n",
     "podium.yaml:3: default.comparison.alpha: expected a number in (0, 0.5], got 0.6"),
    ("default:\n  comparison:\n    alpha: .nan\n",
     "podium.yaml:3: default.comparison.alpha: expected a finite number in (0, 0.5], got nan"),
    ("default:\n  comparison:\n    min_improvement: -0.01\n",
     "podium.yaml:3: default.comparison.min_improvement: expected a number >= 0, got -0.01"),
    ("default:\n  comparison:\n    margin: -0.01\n",
     "podium.yaml:3: default.comparison.margin: expected a number >= 0, got -0.01"),
    ("default:\n  comparison:\n    margin: .inf\n",
     "podium.yaml:3: default.comparison.margin: expected a finite number >= 0, got inf"),
    ("default:\n  comparison:\n    bootstrap: 999\n",
     "podium.yaml:3: default.comparison.bootstrap: expected a whole number >= 1000, got 999"),
    ("default:\n  comparison:\n    max_detectable_improvement: 0\n",
     "podium.yaml:3: default.comparison.max_detectable_improvement: expected a number > 0, "
     "got 0"),
    ("default:\n  comparison:\n    max_detectable_improvement: .inf\n",
     "podium.yaml:3: default.comparison.max_detectable_improvement: expected a finite number "
     "> 0, got inf"),
    ("default:\n  comparison:\n    inconclusive: wait\n",
     "podium.yaml:3: default.comparison.inconclusive: expected reject or approval, "
     "got 'wait'"),
    ("default:\n  comparison:\n    value_rule: equal\n",
     "podium.yaml:3: default.comparison.value_rule: expected one of noninferiority, "
     "superiority, ignore, got 'equal'"),
    ("default:\n  comparison:\n    value_margin: -1\n",
     "podium.yaml:3: default.comparison.value_margin: expected a number >= 0, got -1"),
    ("default:\n  comparison:\n    value_margin: .nan\n",
     "podium.yaml:3: default.comparison.value_margin: expected a finite number >= 0, got nan"),
    ("default:\n  comparison:\n    confidence: 95\n",
     "podium.yaml:3: default.comparison.confidence: expected a number in (0, 1) (deprecated: "
     "use alpha), got 95"),
    ("default:\n  comparison:\n    seed: 0\n",
     "podium.yaml:3: default.comparison.seed: comparison.seed is no longer a setting: the "
     "bootstrap seed is derived from the model, the versions and the holdout digest, so a "
     "decision cannot be re-rolled; remove it"),
    ("default:\n  comparison:\n    alpha: 0.05\n    confidence: 0.9\n",
     "podium.yaml:4: default.comparison.confidence: set alpha or the deprecated confidence, "
     "not both"),
    ("default:\n  comparison:\n    min_gain: 0.01\n    min_improvement: 0.02\n",
     "podium.yaml:3: default.comparison.min_gain: set min_improvement or the deprecated "
     "min_gain, not both"),
    ("default:\n  comparison:\n    inconclusive: approval\n",
     "podium.yaml:3: default.comparison.inconclusive: approval but nobody may approve (no "
     "approvers, no slack_usergroup)"),
    ("default:\n  id_column: ''\n",
     "podium.yaml:2: default.id_column: expected a non-empty string, got ''"),
    ("models:\n  churn: {id_column: 7}\n",
     "podium.yaml:2: models.churn.id_column: expected a non-empty string, got 7"),
    ("models:\n  churn:\n    scoring:\n      engine: dask\n",
     "podium.yaml:4: models.churn.scoring.engine: expected local or spark, got 'dask'"),
])
def test_each_kind_of_mistake_is_refused_with_its_line_and_key_path(tmp_path, text, expected):
    found = problems(text, tmp_path)
    assert any(expected in p for p in found), found
    assert any(str(tmp_path / "podium.yaml") in p for p in found)


@pytest.mark.parametrize("doc,message", [
    ({"default": {"schedules": {"retrian": "0 3 * * *"}}},
     "default.schedules.retrian: unknown key (expected one of drift, monitor, retrain); "
     "did you mean 'retrain'?"),
    ({"models": {"churn": {"training": {"trials": "six"}}}},
     "models.churn.training.trials: expected a whole number >= 1, got 'six'"),
    ({"models": {"churn": {"training": {"request": "Prod"}}}},
     "models.churn.training.request: expected one of Staging, Production, Archived"),
    ({"default": {"drift": {"threshold": "high"}}},
     "default.drift.threshold: expected a number > 0, got 'high'"),
    ({"default": {"drift": {"retrain_on_drift": "yes"}}},
     "default.drift.retrain_on_drift: expected true or false, got 'yes'"),
    ({"default": {"comparison": {"bootstrap": True}}},
     "default.comparison.bootstrap: expected a whole number >= 1000, got True"),
    ({"default": {"comparison": {"margin": math.nan}}},
     "default.comparison.margin: expected a finite number >= 0, got nan"),
    ({"default": {"comparison": {"alpha": "0.05"}}},
     "default.comparison.alpha: expected a number in (0, 0.5], got '0.05'"),
    ({"default": {"comparison": {"seed": 0}}},
     "default.comparison.seed: comparison.seed is no longer a setting"),
    ({"default": {"comparison": {"confidence": 0.95, "alpha": 0.05}}},
     "default.comparison.confidence: set alpha or the deprecated confidence, not both"),
    ({"models": ["churn"]}, "models: expected a mapping of model name to settings"),
])
def test_a_parsed_document_without_lines_names_the_key_path(doc, message):
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    assert message in str(err.value)


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    found = problems("default:\n  comparison:\n    bootstrap: 0\n    alpha: 0.7\n"
                     "  checks: {roc_aux: 0.7}\n"
                     "models:\n  churn:\n    approval: {targets: [Production]}\n", tmp_path)
    assert [p.split(": ")[1] for p in found] == [
        "default.comparison.bootstrap", "default.comparison.alpha", "default.checks.roc_aux",
        "models.churn.approval"]
    assert [int(p.split(":")[1]) for p in found] == [3, 4, 5, 8]


def test_a_usergroup_lets_the_quorum_exceed_the_listed_approvers():
    policy = parse_text(PEOPLE + "default:\n  approval: {targets: [Production], approvers: "
                                 "[alice], slack_usergroup: S0REVIEW, quorum: 3}\n")
    assert policy.for_model("x").approval.quorum == 3
    group_only = parse_text("default:\n  approval: {targets: [Production], "
                            "slack_usergroup: S0REVIEW}\n")
    assert group_only.default.approval.approvers == ()


def test_the_strict_loader_refuses_duplicate_keys_with_the_line():
    import yaml

    from podium_policy.load import StrictLoader

    with pytest.raises(yaml.constructor.ConstructorError,
                       match=r"duplicate key 'a' \(first on line 1\)") as err:
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    assert "line 3" in str(err.value)


def test_invalid_yaml_is_reported_with_the_file_and_line(tmp_path):
    (tmp_path / "p.yaml").write_text("default:\n  checks: [unclosed\n")
    with pytest.raises(PolicyError, match=r"p.yaml:\d+: not valid YAML"):
        load_policy(tmp_path / "p.yaml")


# --- podium policy check ---------------------------------------------------------------------

def test_policy_check_lists_every_problem_with_its_line_and_exits_1(tmp_path):
    path = tmp_path / "podium.yaml"
    path.write_text("default:\n  comparison: {bootstrap: 0}\n"
                    "models:\n  churn:\n    approval: {targets: [Production]}\n")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:2: default.comparison.bootstrap: expected a whole number >= 1000, got 0",
        f"{path}:5: models.churn.approval: Production needs approval but nobody may approve "
        "(no approvers, no slack_usergroup)"]
    as_json = CliRunner().invoke(main, ["policy", "check", str(path), "--json"])
    doc = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and doc["ok"] is False
    assert [(p["line"], p["path"]) for p in doc["problems"]] == [
        (2, "default.comparison.bootstrap"), (5, "models.churn.approval")]


def test_policy_check_says_ok_with_the_counts():
    result = CliRunner().invoke(main, ["policy", "check", str(ROOT / "podium.example.yaml")])
    assert result.exit_code == 0 and result.stdout == "ok: 1 models, 2 people\n"
    missing = CliRunner().invoke(main, ["policy", "check", "/nonexistent/podium.yaml"])
    assert missing.exit_code == 1 and "the policy file does not exist" in missing.stdout


def test_the_lint_stage_checks_the_repository_policy():
    lint = (ROOT / "ci" / "lint.sh").read_text()
    assert "policy check podium.example.yaml" in lint


# --- fail closed at start --------------------------------------------------------------------

def _serve(tmp_path, command="serve", **env):
    return subprocess.run([sys.executable, "-m", "webhook_server.cli", command],
                          env={"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                               "PODIUM_MLFLOW_WEBHOOK_SECRET": "s", "PATH": "",
                               "PYTHONPATH": str(ROOT), "PODIUM_LOG_FORMAT": "text", **env},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_serve_refuses_to_start_with_a_bad_policy(tmp_path):
    (tmp_path / "p.yaml").write_text("default: {schedules: {drift: 'every day'}}\n"
                                     "models:\n  churn:\n    approval:\n"
                                     "      targets: [Production]\n")
    proc = _serve(tmp_path, PODIUM_POLICY=str(tmp_path / "p.yaml"))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"podium serve: refusing to start: policy {tmp_path}/p.yaml:1: "
                           "default.schedules.drift: invalid cron expression 'every day'")
    assert line.endswith("(and 1 more problem(s): `podium policy check` lists them)")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_to_start_without_the_policy_file(tmp_path, command):
    proc = _serve(tmp_path, command)  # PODIUM_POLICY unset: podium.yaml, absent here
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"podium {command}: refusing to start: policy podium.yaml: the policy file does not "
        "exist (fail closed: Podium never falls back to defaults for a named file) (set "
        "PODIUM_POLICY to the policy file; podium.example.yaml documents it)"]


def test_serve_refuses_a_target_nobody_may_approve(tmp_path):
    (tmp_path / "podium.yaml").write_text("default:\n  approval: {targets: [Production]}\n")
    proc = _serve(tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "podium serve: refusing to start: policy podium.yaml:2: default.approval: Production "
        "needs approval but nobody may approve (no approvers, no slack_usergroup)"]


def test_a_command_that_decides_stops_in_one_line_without_its_policy(tmp_path):
    result = CliRunner().invoke(main, ["approve", "1", "--evidence", "a" * 64], env={
        "PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "MLFLOW_TRACKING_URI":
        "http://127.0.0.1:9", "PODIUM_POLICY": str(tmp_path / "absent.yaml")})
    assert result.exit_code == 1
    assert "Error: policy" in result.output and "the policy file does not exist" in \
        result.output
    assert "Traceback" not in result.output


def test_the_example_documents_every_key_with_its_default():
    import ast

    import yaml

    from podium_policy.describe import describe

    example = yaml.safe_load((ROOT / "podium.example.yaml").read_text())["default"]
    for path, default, _ in describe():
        node = example
        if path.startswith("comparison.live."):  # off by default: its keys in the comment
            assert example["comparison"]["live"] is None
            continue
        for part in path.split("."):
            assert part in node, f"podium.example.yaml does not document default.{path}"
            node = node[part]
        if isinstance(node, int | float) and not isinstance(node, bool):
            assert float(node) == float(ast.literal_eval(default)), path


def test_uris_are_kept_and_relative_paths_resolve_against_the_file(tmp_path):
    (tmp_path / "p.yaml").write_text("default:\n  holdout: s3://data/holdout.csv\n"
                                     "  drift: {input: recent.csv}\n")
    churn = load_policy(tmp_path / "p.yaml").for_model("churn")
    assert churn.holdout == "s3://data/holdout.csv"
    assert churn.drift.input == str(tmp_path / "recent.csv")


# --- the judge's holdout and the sandbox -----------------------------------------------------

def test_the_holdout_keys_default_to_nothing_pinned_no_run_holdout_and_a_required_sandbox():
    churn = load_policy(None).for_model("churn")
    assert churn.holdout is None and churn.holdout_sha256 is None
    assert churn.allow_run_holdout is False and churn.sandbox == "required"
    assert churn.comparison.min_rows == 200 and churn.comparison.as_dict()["min_rows"] == 200


def test_allow_run_holdout_sandbox_and_min_rows_are_read_per_model():
    policy = parse_text("default:\n  sandbox: required\n  comparison: {min_rows: 1}\n"
                        "models:\n  demo:\n    allow_run_holdout: true\n"
                        "    sandbox: preferred\n    comparison: {min_rows: 500}\n")
    demo, other = policy.for_model("demo"), policy.for_model("other")
    assert (demo.allow_run_holdout, demo.sandbox, demo.comparison.min_rows) == (
        True, "preferred", 500)
    assert (other.allow_run_holdout, other.sandbox, other.comparison.min_rows) == (
        False, "required", 1)


def test_a_pinned_local_holdout_loads_without_warnings_and_its_digest_is_stored_lower_case(
        tmp_path):
    (tmp_path / "h.csv").write_bytes(b"customerID,Churn\n1,Yes\n")
    digest = hashlib.sha256(b"customerID,Churn\n1,Yes\n").hexdigest()
    (tmp_path / "p.yaml").write_text(f"default:\n  holdout: h.csv\n"
                                     f"  holdout_sha256: {digest.upper()}\n")
    policy = load_policy(tmp_path / "p.yaml")
    churn = policy.for_model("churn")
    assert churn.holdout == str(tmp_path / "h.csv") and churn.holdout_sha256 == digest
    assert policy.warnings == ()


def test_an_unpinned_local_holdout_warns_with_the_files_actual_digest(tmp_path, caplog):
    content = b"customerID,tenure,Churn\n" + b"7590-VHVEG,1,No\n" * 5000
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "holdout.csv").write_bytes(content)
    (tmp_path / "p.yaml").write_text("default:\n  checks: {roc_auc: 0.7}\n"
                                     "  holdout: data/holdout.csv\n")
    with caplog.at_level(logging.WARNING, logger="podium_policy.policy"):
        policy = load_policy(tmp_path / "p.yaml")
    digest = hashlib.sha256(content).hexdigest()
    assert policy.warnings == (f"{tmp_path}/p.yaml:3: default.holdout: holdout is not pinned "
                               f"by digest: add holdout_sha256: {digest}",)
    assert [r.getMessage() for r in caplog.records] == list(policy.warnings)


def test_a_holdout_larger_than_one_read_chunk_is_hashed_whole(tmp_path):
    from podium_policy.digests import sha256_file

    content = bytes(range(256)) * 10_000  # 2.5 MB: three 1 MiB chunks
    (tmp_path / "big.csv").write_bytes(content)
    assert sha256_file(tmp_path / "big.csv") == hashlib.sha256(content).hexdigest()


def test_an_unpinned_uri_holdout_warns_without_a_digest():
    policy = parse_text("models:\n  churn:\n    holdout: s3://data/holdout.csv\n",
                        source="podium.yaml", warn=False)
    assert policy.warnings == (
        "podium.yaml:3: models.churn.holdout: holdout is not pinned by digest: add "
        "holdout_sha256 (the digest is recorded with every decision either way)",)


def test_a_missing_local_holdout_file_is_refused_with_its_path(tmp_path):
    found = problems("default:\n  holdout: absent/holdout.csv\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:2: default.holdout: holdout file does not "
                     f"exist: {tmp_path}/absent/holdout.csv"]
    found = problems("models:\n  churn:\n    holdout: " + str(tmp_path) + "\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:3: models.churn.holdout: holdout is not a "
                     f"file: {tmp_path}"]


def test_a_holdout_uri_is_kept_as_written_and_never_looked_for_locally():
    policy = parse_text("default:\n  holdout: runs:/0a1b/holdout/holdout.csv\n"
                        "  holdout_sha256: " + "b" * 64 + "\n"
                        "models:\n  churn: {holdout: 's3://bucket/h.csv'}\n")
    assert policy.default.holdout == "runs:/0a1b/holdout/holdout.csv"
    assert policy.for_model("churn").holdout == "s3://bucket/h.csv"
    assert policy.for_model("churn").holdout_sha256 == "b" * 64  # inherited
    assert policy.warnings == ()


def test_a_pinned_digest_that_is_not_the_files_is_a_warning(tmp_path):
    (tmp_path / "h.csv").write_text("Churn\nYes\n")
    actual = hashlib.sha256(b"Churn\nYes\n").hexdigest()
    policy = parse_text("default:\n  holdout: h.csv\n  holdout_sha256: " + "c" * 64 + "\n",
                        base=tmp_path, source="podium.yaml", warn=False)
    assert policy.warnings == (
        f"podium.yaml:3: default.holdout: the holdout file's sha256 is {actual}, not "
        f"holdout_sha256 {'c' * 64}: every request fails until they agree",)


def test_a_model_that_inherits_a_missing_holdout_is_not_reported_twice(tmp_path):
    found = problems("default:\n  holdout: absent.csv\n"
                     "models:\n  churn:\n    holdout_sha256: " + "d" * 64 + "\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:2: default.holdout: holdout file does not "
                     f"exist: {tmp_path}/absent.csv"]


# --- the comparison: a one-sided test ---------------------------------------------------------

def test_the_comparison_defaults_are_model_tests_defaults_and_nothing_else():
    from podium_policy.defaults import COMPARISON

    churn = load_policy(None).for_model("churn")
    c = churn.comparison
    assert c.as_dict() == COMPARISON
    assert (c.metric, c.rule, c.alpha, c.min_improvement, c.margin, c.bootstrap,
            c.max_detectable_improvement, c.inconclusive, c.min_rows, c.value_rule,
            c.value_margin) == ("roc_auc", "superiority", 0.05, 0.0, 0.005, 2000, None,
                                "reject", 200, "noninferiority", 1.0)
    assert not {"confidence", "min_gain", "seed"} & set(c.as_dict())
    assert churn.id_column == "customerID"


def test_every_comparison_key_is_read_typed_and_per_model():
    policy = parse_text(
        PEOPLE + "default:\n  id_column: account\n  approval: {approvers: [alice]}\n"
        "  comparison:\n    metric: pr_auc\n    rule: noninferiority\n    alpha: 0.5\n"
        "    min_improvement: 0.01\n    margin: 0\n    bootstrap: 1000\n"
        "    max_detectable_improvement: 0.02\n    inconclusive: approval\n"
        "    min_rows: 300\n    value_rule: ignore\n    value_margin: 0\n"
        "models:\n  churn:\n    id_column: customerID\n"
        "    comparison: {metric: brier, rule: superiority, value_rule: superiority, "
        "max_detectable_improvement: null, inconclusive: reject}\n",
        source="podium.yaml", warn=False)
    assert policy.warnings == ()
    d, churn = policy.for_model("other"), policy.for_model("churn")
    assert d.id_column == "account" and churn.id_column == "customerID"
    assert d.comparison.as_dict() == {
        "metric": "pr_auc", "rule": "noninferiority", "alpha": 0.5, "min_improvement": 0.01,
        "margin": 0.0, "bootstrap": 1000, "max_detectable_improvement": 0.02,
        "inconclusive": "approval", "min_rows": 300, "value_rule": "ignore",
        "value_margin": 0.0}
    assert type(d.comparison.margin) is float and type(d.comparison.alpha) is float
    c = churn.comparison
    assert (c.metric, c.rule, c.value_rule, c.max_detectable_improvement, c.inconclusive,
            c.alpha, c.min_rows) == ("brier", "superiority", "superiority", None, "reject",
                                     0.5, 300)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.alpha = 0.1


@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "log_loss", "brier"])
def test_each_known_metric_is_accepted(metric):
    policy = parse_text(f"default:\n  comparison: {{metric: {metric}}}\n")
    assert policy.default.comparison.metric == metric


@pytest.mark.parametrize("value,shown", [("ROC_AUC", "'ROC_AUC'"), ("auc", "'auc'"),
                                         ("", "''"), (None, "null"),
                                         (["roc_auc"], "['roc_auc']")])
def test_an_unknown_metric_is_refused_with_the_known_names(value, shown):
    with pytest.raises(PolicyError) as err:
        parse_policy({"default": {"comparison": {"metric": value}}})
    assert str(err.value) == ("default.comparison.metric: expected one of roc_auc, pr_auc, "
                              f"log_loss, brier, got {shown}")


def test_confidence_is_read_as_a_one_sided_alpha_with_a_deprecation_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="podium_policy.policy"):
        policy = parse_text("default:\n  comparison:\n    confidence: 0.95\n"
                            "models:\n  churn:\n    comparison: {confidence: 0.8}\n",
                            source="podium.yaml")
    assert policy.default.comparison.alpha == 0.025
    assert policy.for_model("other").comparison.alpha == 0.025
    assert policy.for_model("churn").comparison.alpha == 0.1
    assert policy.warnings == (
        "podium.yaml:3: default.comparison.confidence: comparison.confidence is deprecated (a "
        "two-sided interval): read as alpha: 0.025 (one-sided); write alpha instead",
        "podium.yaml:6: models.churn.comparison.confidence: comparison.confidence is "
        "deprecated (a two-sided interval): read as alpha: 0.1 (one-sided); write alpha "
        "instead")
    assert [r.getMessage() for r in caplog.records] == list(policy.warnings)


def test_min_gain_is_read_as_min_improvement_with_a_deprecation_warning():
    policy = parse_text("models:\n  churn:\n    comparison:\n      min_gain: 0.01\n",
                        source="podium.yaml", warn=False)
    assert policy.for_model("churn").comparison.min_improvement == 0.01
    assert policy.default.comparison.min_improvement == 0.0
    assert policy.warnings == (
        "podium.yaml:4: models.churn.comparison.min_gain: comparison.min_gain is deprecated: "
        "read as min_improvement: 0.01",)


def test_a_model_may_override_a_deprecated_default_with_the_new_key():
    policy = parse_text("default:\n  comparison: {confidence: 0.9, min_gain: 0.02}\n"
                        "models:\n  churn:\n    comparison: {alpha: 0.01}\n", warn=False)
    assert policy.default.comparison.alpha == 0.05
    assert policy.for_model("churn").comparison.alpha == 0.01
    assert policy.for_model("churn").comparison.min_improvement == 0.02
    assert len(policy.warnings) == 2


def test_a_deprecated_key_set_with_its_replacement_is_refused_without_a_warning(tmp_path):
    path = tmp_path / "podium.yaml"
    path.write_text("default:\n  comparison:\n    confidence: 0.95\n    alpha: 0.05\n"
                    "    min_improvement: 0\n    min_gain: 0\n    seed: 7\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert [str(p) for p in err.value.problems] == [
        f"{path}:3: default.comparison.confidence: set alpha or the deprecated confidence, "
        "not both",
        f"{path}:6: default.comparison.min_gain: set min_improvement or the deprecated "
        "min_gain, not both",
        f"{path}:7: default.comparison.seed: comparison.seed is no longer a setting: the "
        "bootstrap seed is derived from the model, the versions and the holdout digest, so a "
        "decision cannot be re-rolled; remove it"]
    assert err.value.warnings == ()


@pytest.mark.parametrize("value", [0, 1, 95, -0.5, ".nan", "'0.95'", "null"])
def test_a_deprecated_confidence_outside_0_1_is_refused(tmp_path, value):
    found = problems(f"default:\n  comparison:\n    confidence: {value}\n", tmp_path)
    assert len(found) == 1 and found[0].startswith(
        f"{tmp_path}/podium.yaml:3: default.comparison.confidence: expected a ")
    assert "in (0, 1) (deprecated: use alpha), got " in found[0]


def test_the_deprecated_and_removed_keys_are_no_longer_settings():
    from podium_policy.describe import describe

    keys = {path for path, _, _ in describe()}
    assert {"comparison.alpha", "comparison.rule", "comparison.min_improvement",
            "comparison.max_detectable_improvement", "comparison.inconclusive",
            "comparison.value_rule", "comparison.value_margin", "id_column"} <= keys
    assert not {"comparison.confidence", "comparison.min_gain", "comparison.seed"} & keys


def test_an_inconclusive_comparison_may_wait_for_a_person_only_when_someone_may_approve(
        tmp_path):
    ok = parse_text(PEOPLE + "default:\n  comparison: {inconclusive: approval}\n"
                    "  approval: {approvers: [alice]}\n")
    assert ok.default.comparison.inconclusive == "approval"
    group = parse_text("default:\n  comparison: {inconclusive: approval}\n"
                       "  approval: {slack_usergroup: S0REVIEW}\n")
    assert group.default.comparison.inconclusive == "approval"
    # a model that sets it without approvers (the default has none) is refused on its line
    found = problems(PEOPLE + "models:\n  churn:\n    comparison:\n"
                     "      inconclusive: approval\n  fraud: {}\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:7: models.churn.comparison.inconclusive: "
                     "approval but nobody may approve (no approvers, no slack_usergroup)"]
    # a model that takes the approvers away from the default's rule, on its approval line
    found = problems(PEOPLE + "default:\n  comparison: {inconclusive: approval}\n"
                     "  approval: {approvers: [alice]}\n"
                     "models:\n  churn:\n    approval:\n      approvers: []\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:10: models.churn.comparison.inconclusive: "
                     "approval but nobody may approve (no approvers, no slack_usergroup)"]
    # the default's mistake is reported once, not again for every model
    found = problems("default:\n  comparison:\n    inconclusive: approval\n"
                     "models:\n  churn: {comparison: {min_rows: 5}}\n", tmp_path)
    assert found == [f"{tmp_path}/podium.yaml:3: default.comparison.inconclusive: "
                     "approval but nobody may approve (no approvers, no slack_usergroup)"]


# --- sandbox_limits: what a model's sandbox may hold (its cgroup) ----------------------------

def test_bad_sandbox_limits_are_refused_on_their_lines(tmp_path):
    found = problems("default:\n  sandbox: required\n  sandbox_limits:\n    memory_mb: 100\n"
                     "    pids: many\n    cpu_shares: 0\n    accept_per_process: yes please\n"
                     "models:\n  churn:\n    sandbox_limits:\n      memroy_mb: 512\n"
                     "  fraud:\n    sandbox_limits: 512\n", tmp_path)
    where = f"{tmp_path}/podium.yaml"
    assert found == [
        f"{where}:4: default.sandbox_limits.memory_mb: expected a whole number in "
        "[256, 1048576], got 100",
        f"{where}:5: default.sandbox_limits.pids: expected a whole number in [16, 65536], "
        "got 'many'",
        f"{where}:6: default.sandbox_limits.cpu_shares: expected a whole number in "
        "[2, 262144], got 0",
        f"{where}:7: default.sandbox_limits.accept_per_process: expected true or false, got "
        "'yes please'",
        f"{where}:11: models.churn.sandbox_limits.memroy_mb: unknown key (expected one of "
        "accept_per_process, cpu_shares, memory_mb, pids); did you mean 'memory_mb'?",
        f"{where}:13: models.fraud.sandbox_limits: expected a mapping, got 512"]


def test_the_public_face_names_what_importers_use():
    """podium_policy.policy re-exports the names other code imports from it."""
    import podium_policy.policy as face
    from podium_policy import check, describe, load, schema

    assert {name for name in face.__all__ if getattr(face, name, None) is None} == set()
    assert face.load_policy is check.load_policy and face.parse_text is check.parse_text
    assert face.Policy is schema.Policy and face.PolicyError is schema.PolicyError
    assert face.StrictLoader is load.StrictLoader and face.describe is describe.describe


# --- shadow scoring (live evidence) -----------------------------------------------------------

def test_shadow_aliases_in_the_long_and_the_short_form(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "default:\n  shadow: {aliases: [challenger], max_share: 0.25}\n"
        "models:\n  churn:\n    shadow: [challenger, former]\n")
    policy = load_policy(tmp_path / "p.yaml")
    assert policy.default.shadow.aliases == ("challenger",)
    assert policy.default.shadow.max_share == 0.25
    assert policy.for_model("churn").shadow.aliases == ("challenger", "former")
    assert load_policy(None).for_model("churn").shadow.aliases == ()


@pytest.mark.parametrize("text, message", [
    ("default:\n  shadow:\n    max_share: 0\n",
     "podium.yaml:3: default.shadow.max_share: expected a number in (0, 1], got 0"),
    ("default:\n  shadow: {max_share: 1.5}\n",
     "podium.yaml:2: default.shadow.max_share: expected a number in (0, 1], got 1.5"),
    ("models:\n  churn:\n    shadow:\n      aliases: [champion]\n",
     "podium.yaml:4: models.churn.shadow.aliases: the champion alias 'champion' cannot be "
     "scored in shadow (it is the model whose scores are written)"),
    ("default:\n  shadow: [latest]\n",
     "podium.yaml:2: default.shadow.aliases: expected a list of MLflow aliases, got "
     "['latest']: an MLflow alias (no spaces, not 'latest' or v<N>), got 'latest'"),
    ("default:\n  shadow: {aliases: [challenger, challenger]}\n",
     "podium.yaml:2: default.shadow.aliases: an alias is listed twice in "
     "['challenger', 'challenger']"),
    ("default:\n  shadow: {alias: [challenger]}\n",
     "podium.yaml:2: default.shadow.alias: unknown key (expected one of aliases, effect, "
     "max_share); did you mean 'aliases'?"),
])
def test_bad_shadow_settings_are_refused_with_their_line(text, message, tmp_path):
    found = problems(text, tmp_path)
    assert any(p.endswith(message) for p in found), found


# --- promotion on live evidence (comparison.live) --------------------------------------------

def test_comparison_live_is_off_unless_set_and_a_model_may_turn_it_off(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "default:\n  shadow: [challenger]\n  comparison:\n"
        "    live: {min_pairs: 500, rule: noninferiority, alpha: 0.1, max_days: 14}\n"
        "models:\n  churn:\n    comparison: {live: null}\n  fraud:\n"
        "    comparison: {live: {max_days: 7}}\n")
    policy = load_policy(tmp_path / "p.yaml")
    live = policy.default.comparison.live
    assert (live.min_pairs, live.rule, live.alpha, live.max_days) == (
        500, "noninferiority", 0.1, 14.0)
    assert policy.for_model("churn").comparison.live is None
    assert policy.for_model("fraud").comparison.live.max_days == 7.0
    assert policy.for_model("fraud").comparison.live.min_pairs == 500  # merged over default
    assert load_policy(None).default.comparison.live is None
    on = parse_text("default:\n  shadow: [challenger]\n  comparison: {live: {}}\n")
    assert on.default.comparison.live.min_pairs == 1000  # {}: on, with the defaults
    # off, it is not part of a decision's policy section (bundles as before)
    assert "live" not in load_policy(None).default.comparison.as_dict()
    assert policy.default.comparison.as_dict()["live"]["max_days"] == 14.0


@pytest.mark.parametrize("text, message", [
    ("default:\n  shadow: [challenger]\n  comparison:\n    live:\n      min_pairs: 5\n",
     "podium.yaml:5: default.comparison.live.min_pairs: expected a whole number >= 20, got 5"),
    ("default:\n  shadow: [challenger]\n  comparison:\n    live: {rule: better}\n",
     "podium.yaml:4: default.comparison.live.rule: expected superiority or noninferiority, "
     "got 'better'"),
    ("default:\n  shadow: [challenger]\n  comparison:\n    live:\n      alpha: 0.7\n",
     "podium.yaml:5: default.comparison.live.alpha: expected a number in (0, 0.5], got 0.7"),
    ("default:\n  shadow: [challenger]\n  comparison:\n    live:\n      max_days: 0\n",
     "podium.yaml:5: default.comparison.live.max_days: expected a number in (0, 366], got 0"),
    ("default:\n  shadow: [challenger]\n  comparison:\n    live: {days: 3}\n",
     "podium.yaml:4: default.comparison.live.days: unknown key (expected one of alpha, "
     "max_days, min_pairs, rule); did you mean 'max_days'?"),
    ("default:\n  shadow: [challenger]\n  comparison:\n    live: 30\n",
     "podium.yaml:4: default.comparison.live: expected a mapping, got 30"),
    ("default:\n  comparison:\n    live: {}\n",
     "podium.yaml:3: default.comparison.live: needs shadow.aliases: a request waiting for "
     "live evidence puts its version on the first shadow alias (e.g. shadow: [challenger])"),
    ("models:\n  churn:\n    shadow: [staging]\n    comparison: {live: {}}\n",
     "podium.yaml:3: models.churn.shadow.aliases: the staging alias 'staging' cannot hold a "
     "version waiting for live evidence"),
])
def test_bad_live_settings_are_refused_with_their_line(text, message, tmp_path):
    found = problems(text, tmp_path)
    assert any(p.endswith(message) for p in found), found


def test_describe_lists_the_live_keys():
    from podium_policy.describe import describe

    rows = {path: default for path, default, _ in describe()}
    assert rows["comparison.live"] == "None"
    assert {"comparison.live.min_pairs", "comparison.live.rule", "comparison.live.alpha",
            "comparison.live.max_days"} <= rows.keys()
