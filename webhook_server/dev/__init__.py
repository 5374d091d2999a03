"""What is not the service: the demo, local MLflow/Podium processes for the demo, tests and
benchmarks, and fake Slack and GitLab APIs that speak the real ones' protocols."""
