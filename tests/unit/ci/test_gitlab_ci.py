"""The shipped .gitlab-ci.yml: valid against GitLab's schema, the right jobs for each branch
flow (gitlab-ci-local evaluates job rules; workflow:rules are evaluated here), and the job
scripts run on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.gitlab_rules import evaluate, pipeline_runs

ROOT = Path(__file__).parents[3]
CI = ROOT / ".gitlab-ci.yml"

# case -> (variables to set, variables to unset, pipeline expected, jobs that run)
CASES = {
    "push to a feature branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature/churn-tweak"}, [],
        False, set()),
    "push to a feature branch with an open merge request": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature/churn-tweak",
         "CI_OPEN_MERGE_REQUESTS": "group/churn!12"}, [], False, set()),
    "push to dev": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "dev",
         "CI_OPEN_MERGE_REQUESTS": "group/churn!13"}, [], False, set()),
    "merge request into dev": (
        {"CI_PIPELINE_SOURCE": "merge_request_event",
         "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "dev", "CI_MERGE_REQUEST_IID": "12"},
        ["CI_COMMIT_BRANCH"], True, {"lint", "policy", "unit"}),
    "merge request into main": (
        {"CI_PIPELINE_SOURCE": "merge_request_event",
         "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_MERGE_REQUEST_IID": "13"},
        ["CI_COMMIT_BRANCH"], True, {"lint", "policy", "unit", "integration"}),
    "merge request into another branch": (
        {"CI_PIPELINE_SOURCE": "merge_request_event",
         "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "feature/x"},
        ["CI_COMMIT_BRANCH"], False, set()),
    "push to main": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}, [], True,
        {"lint", "unit", "integration"}),
    "push to main with an open merge request into a release branch": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
         "CI_OPEN_MERGE_REQUESTS": "group/churn!20"}, [], True,
        {"lint", "unit", "integration"}),
    "push to release/1.0": (
        {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "release/1.0"}, [], True,
        {"lint", "unit", "integration", "release"}),
    "pipeline trigger with PODIUM_RELEASE": (
        {"CI_PIPELINE_SOURCE": "trigger", "CI_COMMIT_BRANCH": "main", "PODIUM_RELEASE": "true"},
        [], True, {"release"}),
    "pipeline trigger without PODIUM_RELEASE": (
        {"CI_PIPELINE_SOURCE": "trigger", "CI_COMMIT_BRANCH": "main"}, [], False, set()),
}


def config() -> dict:
    return yaml.safe_load(CI.read_text())


def test_the_pipeline_validates_against_gitlabs_schema():
    exe = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run([str(exe), "--builtin-schema", "vendor.gitlab-ci",
                             "--data-transform", "gitlab-ci", "--regex-variant", "nonunicode",
                             str(CI)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


@pytest.mark.parametrize("case", CASES)
def test_workflow_rules_start_a_pipeline_only_where_the_flow_wants_one(case):
    variables, unset, expected, _ = CASES[case]
    env = {k: v for k, v in variables.items() if k not in unset}
    assert pipeline_runs(config()["workflow"]["rules"], env) is expected


def test_the_rule_evaluator_follows_gitlab_precedence_and_regexes():
    env = {"A": "1", "B": "release/2.0"}
    assert evaluate('$A == "1" || $C == "x" && $D', env)  # && binds tighter
    assert not evaluate('($A == "1" || $C == "x") && $D', env)
    assert evaluate("$B =~ /^release\\//", env) and not evaluate("$B !~ /^release\\//", env)
    assert evaluate('$UNSET != "x"', env) and not evaluate("$UNSET", env)


def _gitlab_ci_local() -> str:
    local = ROOT / ".ci/tools/node_modules/.bin/gitlab-ci-local"
    found = str(local) if local.exists() else shutil.which("gitlab-ci-local")
    if not found:
        pytest.skip("gitlab-ci-local is not installed (.ci/run installs 4.73.0 with npm "
                    "where Node is present)")
    if not shutil.which("node"):
        pytest.skip("Node.js is not installed: gitlab-ci-local cannot run")
    return found


def jobs_listed(variables: dict[str, str], unset: list[str]) -> dict[str, str]:
    args = [_gitlab_ci_local(), "--list-json"]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    for key in unset:
        args += ["--unset-variable", key]
    env = {**os.environ, "GCL_IGNORE_PREDEFINED_VARS": ",".join([*variables, *unset])}
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return {job["name"]: job["when"] for job in json.loads(result.stdout)}


@pytest.mark.parametrize("case", CASES)
def test_gitlab_ci_local_lists_the_expected_jobs(case):
    """Job rules alone already give no job where the workflow starts no pipeline."""
    variables, unset, _, expected = CASES[case]
    listed = jobs_listed(variables, unset)
    assert {name for name, when in listed.items() if when != "never"} == expected


def test_the_release_waits_for_a_person_when_the_project_asks_for_a_gate():
    variables = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "release/1.0",
                 "RELEASE_GATE": "manual"}
    assert jobs_listed(variables, [])["release"] == "manual"


def test_every_job_runs_one_script_from_ci_and_releases_never_overlap():
    cfg = config()
    jobs = {k: v for k, v in cfg.items() if isinstance(v, dict) and "script" in v}
    assert set(jobs) == {"lint", "policy", "unit", "integration", "release"}
    for name, job in jobs.items():
        assert job["script"] == [f"bash ci/{name}.sh"]
        assert (ROOT / "ci" / f"{name}.sh").exists()
    assert cfg["release"]["resource_group"] == "model-promotion"
    assert cfg["integration"]["services"][0]["name"].startswith("postgres")
    assert cfg["unit"]["artifacts"]["reports"]["junit"] == "reports/unit.xml"
    assert cfg["release"]["artifacts"]["reports"]["junit"] == "reports/model-checks.xml"


def test_the_unit_jobs_script_runs_here_and_writes_junit(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "REPORTS": str(tmp_path),
           "UNIT_TESTS": "tests/unit/intake/test_validate.py"}  # the script, not the suite
    env.pop("PODIUM_TEST_DATABASE_URL", None)
    result = subprocess.run(["bash", str(ROOT / "ci/unit.sh"), "-p", "no:cacheprovider"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = (tmp_path / "unit.xml").read_text()
    assert "<testsuite" in report and 'failures="0"' in report
