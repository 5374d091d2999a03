"""The systems outside Podium: the MLflow registry (the only place an ``MlflowClient`` is built),
Slack (notify) and GitLab."""
