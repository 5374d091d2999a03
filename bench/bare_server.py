"""Baseline for bench/intake.py: a bare Flask endpoint under Podium's gunicorn settings.

usage: python -m bench.bare_server PORT WORKERS
"""

import sys

from flask import Flask

from webhook_server.serve import run_gunicorn


def make_app() -> Flask:
    app = Flask("bare")

    @app.post("/webhooks/mlflow")
    def ok():
        return {"status": "ok"}

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    port, workers = (int(a) for a in sys.argv[1:3])
    run_gunicorn(make_app, "127.0.0.1", port, workers)
