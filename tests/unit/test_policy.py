"""Policy file: defaults, per-model overrides, and a precise error for every bad value."""

import subprocess
import sys

import pytest

from webhook_server.policy import PolicyError, load_policy, parse_policy


def test_a_missing_file_means_defaults_and_no_schedules(tmp_path):
    policy = load_policy(tmp_path / "absent.yaml")
    assert policy.models == {}
    churn = policy.for_model("churn")
    assert churn["schedules"] == {"retrain": None, "drift": None}
    assert churn["drift"]["threshold"] == 0.2 and churn["training"]["request"] == "Production"


def test_models_override_the_default_section_key_by_key(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "default:\n  drift: {threshold: 0.25}\n"
        "models:\n  churn:\n    schedules: {retrain: '0 3 * * 1'}\n"
        "    training: {data: data/churn.csv, request: staging}\n")
    policy = load_policy(tmp_path / "p.yaml")
    churn = policy.for_model("churn")
    assert churn["schedules"]["retrain"] == "0 3 * * 1"
    assert churn["training"]["request"] == "Staging" and churn["training"]["trials"] == 6
    assert churn["training"]["data"] == str(tmp_path / "data" / "churn.csv")
    assert churn["drift"]["threshold"] == 0.25
    assert policy.for_model("other")["schedules"]["retrain"] is None


@pytest.mark.parametrize("doc,message", [
    ({"defaults": {}}, "defaults: unknown key (expected 'default' or 'models')"),
    ({"default": {"schedules": {"retrian": "0 3 * * *"}}},
     "default.schedules.retrian: unknown key (expected one of drift, retrain)"),
    ({"models": {"churn": {"schedules": {"retrain": "0 3 * *"}}}},
     "models.churn.schedules.retrain: invalid cron expression '0 3 * *'"),
    ({"models": {"churn": {"training": {"trials": "six"}}}},
     "models.churn.training.trials: expected a whole number >= 0, got 'six'"),
    ({"models": {"churn": {"training": {"request": "Prod"}}}},
     "models.churn.training.request: expected one of Staging, Production, Archived"),
    ({"default": {"drift": {"threshold": "high"}}},
     "default.drift.threshold: expected a number, got 'high'"),
    ({"default": {"drift": {"retrain_on_drift": "yes"}}},
     "default.drift.retrain_on_drift: expected true or false, got 'yes'"),
    ({"models": ["churn"]}, "models: expected a mapping of model name to settings"),
])
def test_a_bad_policy_names_the_key_path_and_the_reason(doc, message):
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    assert message in str(err.value)


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    (tmp_path / "p.yaml").write_text("default: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "p.yaml")


def test_the_example_policy_in_the_repository_loads():
    from pathlib import Path

    policy = load_policy(Path(__file__).parents[2] / "podium.example.yaml")
    assert "churn" in policy.models


def test_serve_refuses_to_start_with_a_bad_policy(tmp_path):
    (tmp_path / "p.yaml").write_text("default: {schedules: {drift: 'every day'}}\n")
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", "serve"],
                          env={"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                               "PODIUM_MLFLOW_WEBHOOK_SECRET": "s",
                               "PODIUM_POLICY": str(tmp_path / "p.yaml"), "PATH": ""},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to start: policy" in proc.stderr
    assert "default.schedules.drift: invalid cron expression 'every day'" in proc.stderr
