from pathlib import Path

import pytest

from webhook_server.core.settings import Settings, SettingsError, describe


def test_defaults_match_the_contract():
    s = Settings.from_env({})
    assert s.database_url == "sqlite:///podium.db" and s.policy_path == "podium.yaml"
    assert s.max_body_bytes == 1 << 20 and s.signature_tolerance_s == 300


def test_values_are_read_and_typed_from_the_environment():
    s = Settings.from_env({"PODIUM_DATABASE_URL": "postgresql://db/podium",
                           "PODIUM_JOB_LEASE": "90", "PODIUM_JOB_BACKOFF": "0.5",
                           "PODIUM_INSECURE_NO_SIGNATURE": "true", "SLACK_CHANNEL": "#models"})
    assert (s.database_url, s.job_lease_s, s.job_backoff_s) == ("postgresql://db/podium", 90,
                                                                0.5)
    assert s.insecure_no_signature is True and s.slack_channel == "#models"


def test_a_malformed_number_names_the_variable():
    with pytest.raises(SettingsError, match="PODIUM_JOB_LEASE='soon' is not a valid int"):
        Settings.from_env({"PODIUM_JOB_LEASE": "soon"})


def test_secrets_never_appear_in_the_repr():
    s = Settings.from_env({"PODIUM_MLFLOW_WEBHOOK_SECRET": "hunter2",
                           "SLACK_BOT_TOKEN": "xoxb-secret"})
    assert "hunter2" not in repr(s) and "xoxb-secret" not in repr(s)
    assert set(s.secrets()) == {"hunter2", "xoxb-secret"}


def test_every_contract_variable_is_declared():
    declared = {env for env, _, _ in describe()}
    contract = {"MLFLOW_TRACKING_URI", "PODIUM_DATABASE_URL", "PODIUM_POLICY",
                "PODIUM_API_TOKENS", "PODIUM_API_TOKENS_FILE",
                "PODIUM_MLFLOW_WEBHOOK_SECRET", "PODIUM_DATABRICKS_WEBHOOK_SECRET",
                "PODIUM_API_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL",
                "SLACK_WEBHOOK_URL", "PODIUM_SLACK_API_URL", "PODIUM_PUBLIC_URL", "GITLAB_URL",
                "GITLAB_TOKEN", "GITLAB_PROJECT_ID", "GITLAB_TRIGGER_TOKEN"}
    assert contract <= declared


def test_the_service_says_which_slack_mode_it_runs_in():
    from webhook_server.adapters.notify.slack import describe_mode, mode

    base = Settings()
    assert mode(base) == "log" and "notifications go to the log" in describe_mode(base)
    hook = base.replace(slack_webhook_url="https://hooks.slack.com/services/T/B/x")
    assert mode(hook) == "webhook" and "no approval buttons" in describe_mode(hook)
    bot = base.replace(slack_bot_token="xoxb-1", slack_channel="C1")
    assert mode(bot) == "bot" and "approvals OFF: SLACK_SIGNING_SECRET unset" in \
        describe_mode(bot)
    assert "approvals on" in describe_mode(bot.replace(slack_signing_secret="s"))
    no_channel = base.replace(slack_bot_token="xoxb-1")
    assert "SLACK_CHANNEL missing" in describe_mode(no_channel)
    assert "xoxb-1" not in describe_mode(bot) + describe_mode(no_channel)


@pytest.mark.parametrize("env,value,message", [
    ("PODIUM_SIGNATURE_TOLERANCE", "-1", "expected > 0 and <= 3600"),
    ("PODIUM_SIGNATURE_TOLERANCE", "0", "expected > 0 and <= 3600"),
    ("PODIUM_SIGNATURE_TOLERANCE", "3601", "expected > 0 and <= 3600"),
    ("PODIUM_JOB_LEASE", "0", "expected >= 5"),
    ("PODIUM_JOB_LEASE", "4", "expected >= 5"),
    ("PODIUM_JOB_MAX_ATTEMPTS", "0", "expected >= 1"),
    ("PODIUM_JOB_BACKOFF", "0", "expected > 0"),
    ("PODIUM_JOB_BACKOFF", "nan", "is not a finite number"),
    ("PODIUM_WORKER_POLL", "-0.5", "expected > 0"),
    ("PODIUM_RECONCILE_INTERVAL", "0", "expected > 0"),
    ("PODIUM_APPROVAL_CHECK_INTERVAL", "0", "expected > 0"),
    ("PODIUM_NOTIFY_MAX_BACKOFF", "inf", "is not a finite number"),
    ("PODIUM_MAX_BODY_BYTES", "0", "expected >= 1024"),
    ("PODIUM_SANDBOX_MEMORY_MB", "255", "expected >= 256"),
    ("PODIUM_SANDBOX_CPU_S", "0", "expected >= 1"),
    ("PODIUM_SANDBOX_TIMEOUT", "0", "expected > 0"),
    ("PODIUM_SANDBOX_TIMEOUT", "inf", "is not a finite number"),
    ("PODIUM_SANDBOX_SPARES", "-1", "expected >= 0"),
    ("PODIUM_SANDBOX_SPARES", "two", "is not a valid int"),
])
def test_numbers_out_of_range_are_refused_naming_the_variable(env, value, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert str(err.value).startswith(f"{env}={value!r} ") and message in str(err.value)


def test_the_edges_of_each_range_are_accepted():
    s = Settings.from_env({"PODIUM_SIGNATURE_TOLERANCE": "3600", "PODIUM_JOB_LEASE": "5",
                           "PODIUM_JOB_MAX_ATTEMPTS": "1", "PODIUM_JOB_BACKOFF": "0.01"})
    assert (s.signature_tolerance_s, s.job_lease_s, s.job_max_attempts) == (3600, 5, 1)


@pytest.mark.parametrize("raw", ["ture", "flase", "2", "y", "enabled", " "])
def test_a_boolean_is_strict(raw):
    with pytest.raises(SettingsError, match=f"PODIUM_INSECURE_NO_SIGNATURE={raw!r} is not "
                                            r"a boolean \(true/false, 1/0, yes/no, on/off\)"):
        Settings.from_env({"PODIUM_INSECURE_NO_SIGNATURE": raw})


@pytest.mark.parametrize("raw,value", [("true", True), ("TRUE", True), ("1", True),
                                       ("Yes", True), ("on", True), ("false", False),
                                       ("0", False), ("NO", False), ("off", False)])
def test_the_boolean_words(raw, value):
    assert Settings.from_env({"PODIUM_INSECURE_NO_SIGNATURE": raw}).insecure_no_signature \
        is value


def test_named_api_tokens_from_the_environment_and_a_file(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("# name token\nci   tok-ci-1234\n\n  # rotated 2026-01\n"
                      "alice tok-alice-5678\n")
    s = Settings.from_env({"PODIUM_API_TOKEN": "tok-default", "PODIUM_API_TOKENS":
                           "release=tok-release, grafana=tok-grafana",
                           "PODIUM_API_TOKENS_FILE": str(tokens)})
    assert s.api_tokens() == {"tok-default": "default", "tok-release": "release",
                              "tok-grafana": "grafana", "tok-ci-1234": "ci",
                              "tok-alice-5678": "alice"}
    shown = repr(s)
    assert not any(token in shown for token in s.api_tokens())
    assert set(s.api_tokens()) <= set(s.secrets())
    assert Settings().api_tokens() == {}
    assert Settings(api_token="t").api_tokens() == {"t": "default"}


@pytest.mark.parametrize("env,message", [
    ({"PODIUM_API_TOKENS": "ci:secret-1"}, "PODIUM_API_TOKENS entry 1 is not name=token"),
    ({"PODIUM_API_TOKENS": "ci=secret-1,ci=secret-2"},
     "PODIUM_API_TOKENS entry 2: the name 'ci' is already used by PODIUM_API_TOKENS entry 1"),
    ({"PODIUM_API_TOKENS": "ci=secret-1,cd=secret-1"},
     "PODIUM_API_TOKENS entry 2: 'cd' has the same token as 'ci'"),
    ({"PODIUM_API_TOKENS": "default=secret-1", "PODIUM_API_TOKEN": "secret-2"},
     "the name 'default' is already used by PODIUM_API_TOKEN"),
    ({"PODIUM_API_TOKENS": "c i=secret-1"}, "the name 'c i' is not a plain name"),
    ({"PODIUM_API_TOKENS": "ci="}, "the token of 'ci' is empty"),
    ({"PODIUM_API_TOKENS_FILE": "/nonexistent/tokens"},
     "PODIUM_API_TOKENS_FILE='/nonexistent/tokens' cannot be read"),
])
def test_malformed_api_tokens_are_refused_without_showing_a_token(env, message):
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert message in str(err.value) and "secret-" not in str(err.value)


def test_a_malformed_token_file_line_is_named(tmp_path):
    (tmp_path / "tokens").write_text("ci tok-1\nonly-a-name\n")
    with pytest.raises(SettingsError, match="PODIUM_API_TOKENS_FILE line 2: expected "
                                            "'name token'"):
        Settings.from_env({"PODIUM_API_TOKENS_FILE": str(tmp_path / "tokens")})


def test_slack_interactivity_without_a_workspace_is_a_refusal():
    assert Settings().refusals() == []
    assert Settings(slack_signing_secret="s", slack_team_id="T0123").refusals() == []
    (reason,) = Settings(slack_signing_secret="s").refusals()
    assert reason.startswith("SLACK_SIGNING_SECRET is set (Slack approvals) but SLACK_TEAM_ID "
                             "is not")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_slack_approvals_without_a_workspace(tmp_path, command):
    import subprocess
    import sys

    (tmp_path / "podium.yaml").write_text("{}\n")
    proc = subprocess.run([sys.executable, "-m", "webhook_server.cli", command],
                          env={"PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                               "PODIUM_MLFLOW_WEBHOOK_SECRET": "s", "PATH": "",
                               "SLACK_SIGNING_SECRET": "sign", "SLACK_BOT_TOKEN": "xoxb-1",
                               "PYTHONPATH": str(Path(__file__).parents[3]),
                               "PODIUM_LOG_FORMAT": "text"},
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"podium {command}: refusing to start: SLACK_SIGNING_SECRET is set (Slack approvals) "
        "but SLACK_TEAM_ID is not: set the workspace id (T...) so clicks from any other "
        "workspace are refused"]


def test_a_bad_setting_stops_serve_in_one_line(tmp_path):
    from click.testing import CliRunner

    from webhook_server.cli import main

    result = CliRunner().invoke(main, ["serve"], env={
        "PODIUM_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
        "PODIUM_INSECURE_NO_SIGNATURE": "ture"})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: PODIUM_INSECURE_NO_SIGNATURE='ture' is not a boolean (true/false, 1/0, yes/no, "
        "on/off)"]


# --- the evaluator's sandbox -----------------------------------------------------------------

def test_the_sandbox_defaults():
    s = Settings.from_env({})
    assert (s.sandbox, s.sandbox_memory_mb, s.sandbox_cpu_s, s.sandbox_timeout_s,
            s.sandbox_user, s.sandbox_env, s.sandbox_spares) == (
        "auto", 4096, 600, 300.0, "nobody", None, 2)
    assert s.sandbox_env_names() == ()


def test_each_sandbox_setting_is_read_and_typed_from_the_environment():
    s = Settings.from_env({"PODIUM_SANDBOX": "bwrap", "PODIUM_SANDBOX_MEMORY_MB": "256",
                           "PODIUM_SANDBOX_CPU_S": "30", "PODIUM_SANDBOX_TIMEOUT": "2.5",
                           "PODIUM_SANDBOX_USER": "podium-model",
                           "PODIUM_SANDBOX_ENV": "OMP_NUM_THREADS, LANG,,TZ,LANG",
                           "PODIUM_SANDBOX_SPARES": "0"})
    assert (s.sandbox, s.sandbox_memory_mb, s.sandbox_cpu_s, s.sandbox_timeout_s,
            s.sandbox_user, s.sandbox_spares) == ("bwrap", 256, 30, 2.5, "podium-model", 0)
    assert s.sandbox_env_names() == ("OMP_NUM_THREADS", "LANG", "TZ")


@pytest.mark.parametrize("raw,value", [("auto", "auto"), ("bwrap", "bwrap"), ("user", "user"),
                                       ("process", "process"), (" Process ", "process")])
def test_each_isolation_choice_is_accepted_in_any_case(raw, value):
    assert Settings.from_env({"PODIUM_SANDBOX": raw}).sandbox == value


@pytest.mark.parametrize("raw", ["docker", "none", "bubblewrap", "bwrap,user"])
def test_an_unknown_isolation_is_refused_naming_the_variable_and_the_choices(raw):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"PODIUM_SANDBOX": raw})
    assert str(err.value) == (f"PODIUM_SANDBOX={raw!r} is not one of auto, bwrap, user, "
                              "process")


def test_settings_built_directly_still_refuse_an_unknown_isolation():
    with pytest.raises(SettingsError, match="PODIUM_SANDBOX='docker' is not one of auto, "):
        Settings(sandbox="docker")
    assert Settings(sandbox="process").sandbox == "process"


@pytest.mark.parametrize("name", [
    "SLACK_BOT_TOKEN", "PODIUM_MLFLOW_WEBHOOK_SECRET", "SLACK_WEBHOOK_URL", "HF_TOKEN",
    "my_api_key", "DB_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_REGION",
    "azure_storage_account", "GOOGLE_CLOUD_PROJECT", "MLFLOW_TRACKING_USERNAME",
    "PODIUM_DATABASE_URL"])
def test_a_sandbox_env_name_that_looks_like_a_secret_is_refused(name):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"PODIUM_SANDBOX_ENV": f"LANG,{name}"})
    assert str(err.value) == (f"PODIUM_SANDBOX_ENV: {name} looks like a secret; model code "
                              "never sees it")


@pytest.mark.parametrize("name", ["1ST", "A-B", "LANG=C", "$HOME", "A B"])
def test_a_sandbox_env_entry_that_is_not_a_variable_name_is_refused(name):
    with pytest.raises(SettingsError, match="PODIUM_SANDBOX_ENV: .* is not an environment "
                                            "variable name"):
        Settings.from_env({"PODIUM_SANDBOX_ENV": name})
    with pytest.raises(SettingsError, match="PODIUM_SANDBOX_ENV: "):
        Settings(sandbox_env=name)


def test_the_sandbox_settings_are_listed_by_podium_config():
    declared = {env for env, _, _ in describe()}
    assert {"PODIUM_SANDBOX", "PODIUM_SANDBOX_MEMORY_MB", "PODIUM_SANDBOX_CPU_S",
            "PODIUM_SANDBOX_TIMEOUT", "PODIUM_SANDBOX_USER", "PODIUM_SANDBOX_ENV",
            "PODIUM_SANDBOX_SPARES"} <= declared


def test_the_sandbox_cgroup_settings_are_read_and_bounded():
    s = Settings.from_env({"PODIUM_SANDBOX_PIDS": "128", "PODIUM_SANDBOX_CPU_SHARES": "256",
                           "PODIUM_SANDBOX_CGROUP_ROOT": "/elsewhere"})
    assert (s.sandbox_pids, s.sandbox_cpu_shares, s.sandbox_cgroup_root) == (
        128, 256, "/elsewhere")
    defaults = Settings()
    assert (defaults.sandbox_memory_mb, defaults.sandbox_pids, defaults.sandbox_cpu_shares,
            defaults.sandbox_cgroup_root) == (4096, 256, 512, "/sys/fs/cgroup")
    with pytest.raises(SettingsError, match=r"^PODIUM_SANDBOX_PIDS='4' is out of range: "
                                            r"expected >= 16 and <= 65536$"):
        Settings.from_env({"PODIUM_SANDBOX_PIDS": "4"})
    with pytest.raises(SettingsError, match=r"^PODIUM_SANDBOX_CPU_SHARES='lots' is not a valid "
                                            r"int$"):
        Settings.from_env({"PODIUM_SANDBOX_CPU_SHARES": "lots"})
    assert {"PODIUM_SANDBOX_PIDS", "PODIUM_SANDBOX_CPU_SHARES",
            "PODIUM_SANDBOX_CGROUP_ROOT"} <= {env for env, _, _ in describe()}


def test_the_spark_driver_memory_is_a_setting_checked_at_start():
    assert Settings().spark_driver_memory == "4g"
    assert Settings.from_env({"PODIUM_SPARK_DRIVER_MEMORY": "16G"}).spark_driver_memory == "16G"
    for bad in ("lots", "4 g", "0g", "-1g", "4gb"):
        with pytest.raises(SettingsError, match=r"^PODIUM_SPARK_DRIVER_MEMORY='.*' is not a JVM "
                                                r"memory size \(e\.g\. 512m, 4g, 16g\)$"):
            Settings.from_env({"PODIUM_SPARK_DRIVER_MEMORY": bad})
    assert "PODIUM_SPARK_DRIVER_MEMORY" in {env for env, _, _ in describe()}
