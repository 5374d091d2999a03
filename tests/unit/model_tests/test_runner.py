from model_tests.runner import safe_env


def test_the_child_environment_carries_no_secrets():
    env = safe_env({"PATH": "/usr/bin", "MLFLOW_TRACKING_URI": "http://m",
                    "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s",
                    "PODIUM_MLFLOW_WEBHOOK_SECRET": "w", "PODIUM_API_TOKEN": "t",
                    "GITLAB_TOKEN": "g", "AWS_SECRET_ACCESS_KEY": "a", "DB_PASSWORD": "p"})
    assert env == {"PATH": "/usr/bin", "MLFLOW_TRACKING_URI": "http://m"}
