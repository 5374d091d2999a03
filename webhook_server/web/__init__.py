"""The HTTP edge: the Flask app, its routes (webhooks, Slack, API, health), the web page, /metrics,
the sign-in limiter and the gunicorn launcher."""
