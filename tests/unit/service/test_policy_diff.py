"""``podium policy diff`` over a store of decided requests whose evidence bundles are on
disk (no MLflow, no model): an unchanged policy flips nothing, alpha 0.05 -> 0.2 flips a
borderline rejection, a new check floor flips a promotion; the command's exit codes; the
table posted on the merge request through python-gitlab and edited in place."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from podium_policy.check import parse_text
from tests.support.bundles import decided, scores
from tests.support.settings import make_settings
from webhook_server.adapters.gitlab import post_policy_diff
from webhook_server.cli import main
from webhook_server.dev.fakes.gitlab import FakeGitLab
from webhook_server.service.policy_diff import diff, table
from webhook_server.store.db import Store

BASE = ("default:\n  checks: {slice_columns: [Contract], slice_roc_auc: 0.5, "
        "slice_gap: 0.5%s}\n%s")


def _policy(floor: str = "", comparison: str = "") -> str:
    return BASE % (floor, comparison)


@pytest.fixture
def store(db_url, make_svc, tmp_path):
    """A promotion (clear win) and a borderline rejection (p between 0.05 and 0.2)."""
    svc = make_svc(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9"))
    y, c, k, contract = scores(gain=0.5)
    won = decided(svc, tmp_path / "won", version="3", y=y, challenger=c, champion=k,
                  contract=contract)
    y, c, k, contract = scores(gain=0.08, seed=24)
    lost = decided(svc, tmp_path / "lost", version="4", y=y, challenger=c, champion=k,
                   contract=contract)
    return svc, won, lost


def _diff(svc, old, new, **kw):
    return {r.request: r for r in diff(svc.store, svc.registry, parse_text(old),
                                       parse_text(new), **kw)}


def test_an_unchanged_policy_flips_nothing(store):
    svc, won, lost = store
    rows = _diff(svc, _policy(), _policy())
    assert {(r.then, r.now, r.changed) for r in rows.values()} == {
        ("promote", "promote", False), ("reject", "reject", False)}
    assert "0 of 2 decision(s) would change." in table(list(rows.values()))


def test_alpha_0_2_flips_the_borderline_rejection_only(store):
    svc, won, lost = store
    rows = _diff(svc, _policy(), _policy(comparison="  comparison: {alpha: 0.2}\n"))
    assert (rows[lost].then, rows[lost].now) == ("reject", "promote")
    assert rows[lost].figure.startswith("comparison roc_auc: lower bound")
    assert "alpha 0.2" in rows[lost].figure and not rows[won].changed


def test_a_new_check_floor_flips_the_promotion(store):
    svc, won, lost = store
    rows = _diff(svc, _policy(), _policy(floor=", roc_auc: 0.99"))
    assert (rows[won].then, rows[won].now) == ("promote", "reject")
    assert rows[won].figure.startswith("check roc_auc: holdout roc_auc")
    assert rows[won].recorded_checks == ["latency_p95"]
    text = table(list(rows.values()))
    assert "**reject**" in text
    assert "Kept as recorded (their inputs are not in the bundles): latency_p95." in text


def test_the_command_exits_0_unchanged_3_changed_and_1_on_an_invalid_policy(store,
                                                                             tmp_path):
    svc, won, lost = store
    env = {"PODIUM_DATABASE_URL": svc.settings.database_url,
           "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    old, new, bad = (tmp_path / "old.yaml", tmp_path / "new.yaml", tmp_path / "bad.yaml")
    old.write_text(_policy())
    new.write_text(_policy(floor=", roc_auc: 0.99"))
    bad.write_text(_policy(comparison="  comparison: {alpha: 2}\n"))
    same = CliRunner().invoke(main, ["policy", "diff", str(old), str(old)], env=env)
    assert same.exit_code == 0 and "0 of 2 decision(s) would change." in same.output
    changed = CliRunner().invoke(main, ["policy", "diff", str(old), str(new), "--json"],
                                 env=env)
    assert changed.exit_code == 3
    assert json.loads(changed.stdout)["changed"] == 1
    refused = CliRunner().invoke(main, ["policy", "diff", str(old), str(bad)], env=env)
    assert refused.exit_code == 1
    assert "default.comparison.alpha" in refused.output


def test_the_table_is_one_note_on_the_merge_request_edited_in_place(store):
    svc, won, lost = store
    with FakeGitLab(token="glpat-test", project_id="42", merge_requests=(9,)) as fake:
        settings = make_settings(svc.settings.database_url, gitlab_url=fake.url,
                                 gitlab_token="glpat-test", gitlab_project_id="42")
        first = table(list(_diff(svc, _policy(), _policy()).values()))
        said = post_policy_diff(settings, "9", "main:podium.yaml", "podium.yaml", first)
        fake.notes[9].append({"id": 99, "body": "a person's comment", "noteable_iid": 9})
        second = table(list(_diff(svc, _policy(), _policy(floor=", roc_auc: 0.99"))
                            .values()))
        again = post_policy_diff(settings, "9", "main:podium.yaml", "podium.yaml", second)
        notes = list(fake.notes[9])
    assert said.startswith("posted note ") and again == f"edited {said[7:]}"
    ours = [n for n in notes if n["body"].startswith("<!-- podium:policy-diff:")]
    assert len(ours) == 1 and "1 of 2 decision(s) would change." in ours[0]["body"]
    assert "PUT" in " ".join(c.split()[0] for c in fake.calls)


@pytest.mark.parametrize("args,code,message", [
    (["verify", "999"], 1, "Error: no request 999"),
    (["policy", "diff", "a.yaml", "b.yaml", "--last", "0"], 2,
     "Invalid value for '--last': 0 is not in the range x>=1."),
])
def test_the_commands_refuse_bad_input_with_the_reason(make_svc, sqlite_url, args, code,
                                                       message):
    make_svc(make_settings(sqlite_url))  # a migrated, empty store
    env = {"PODIUM_DATABASE_URL": sqlite_url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == code and message in result.output


def test_verify_refuses_a_store_behind_its_schema_and_writes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    env = {"PODIUM_DATABASE_URL": url, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    result = CliRunner().invoke(main, ["verify", "1"], env=env)
    assert result.exit_code == 1
    head = Store(url).head()
    assert f"the store at {url} is at schema none, not {head}: run `podium migrate` first" \
        in result.output


def test_verify_without_mlflow_says_where_the_bundles_are(make_svc, sqlite_url):
    make_svc(make_settings(sqlite_url))
    result = CliRunner().invoke(main, ["verify", "1"], env={"PODIUM_DATABASE_URL": sqlite_url})
    assert result.exit_code == 1
    assert "MLFLOW_TRACKING_URI is not set: the evidence bundles are MLflow artifacts" \
        in result.output


def test_a_merge_request_number_that_is_not_one_posts_nothing(store):
    svc, won, lost = store
    settings = make_settings(svc.settings.database_url, gitlab_url="http://127.0.0.1:9",
                             gitlab_project_id="42")
    assert post_policy_diff(settings, "7; rm", "a", "b", "table") == \
        "no note: '7; rm' is not a merge request number"
