"""Baseline for bench/intake.py: a bare Flask endpoint under Podium's gunicorn settings
(webhook_server.web.serve.run_gunicorn: the same worker class, count and options). It reads the
body, as Podium does, and answers 200 with a small JSON document; it checks nothing and
stores nothing.

usage: python -m bench.bare_server PORT WORKERS
"""

import sys

from flask import Flask, request

from webhook_server.web.serve import run_gunicorn


def make_app() -> Flask:
    app = Flask("bare")

    @app.post("/webhooks/mlflow")
    def ok():
        request.get_data()
        return {"status": "ok"}

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    port, workers = (int(a) for a in sys.argv[1:3])
    run_gunicorn(make_app, "127.0.0.1", port, workers)
