import pytest

from webhook_server.settings import Settings, SettingsError, describe


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
                "PODIUM_MLFLOW_WEBHOOK_SECRET", "PODIUM_DATABRICKS_WEBHOOK_SECRET",
                "PODIUM_API_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL",
                "SLACK_WEBHOOK_URL", "PODIUM_SLACK_API_URL", "PODIUM_PUBLIC_URL", "GITLAB_URL",
                "GITLAB_TOKEN", "GITLAB_PROJECT_ID", "GITLAB_TRIGGER_TOKEN"}
    assert contract <= declared


def test_the_service_says_which_slack_mode_it_runs_in():
    from webhook_server.notify.slack import describe_mode, mode

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
