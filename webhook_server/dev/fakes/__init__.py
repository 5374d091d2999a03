"""Small HTTP servers that speak the real Slack and GitLab APIs, for tests and the demo."""
