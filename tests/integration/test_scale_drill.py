"""The scale-out drill (bench/drill.py): Podium on PostgreSQL with 2 web nodes behind a
balancer and 3 workers, a real MLflow server, the fake Slack and GitLab, under faults; then
the invariants of docs/architecture.md.

The short one runs in the suite (12 requests over 3 models, one kill -9 of a web node, of a
worker and of the scheduler's worker, MLflow stopped for 10 s, every PostgreSQL session
terminated once); the full one (200 requests over 20 models, a kill every few seconds,
MLflow stopped for 20 s) runs with ``make drill`` and prints its figures. Both need
PostgreSQL: ``PODIUM_TEST_DATABASE_URL``, else the local server, else they skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.drill import options, report
from bench.scaleout.run import run
from tests.support.settings import PG_ENV
from webhook_server.store.db import normalise_url

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def admin_url() -> str:
    """A PostgreSQL server where the drill may create (and drop) its own database."""
    url = os.environ.get(PG_ENV) or LOCAL_PG
    engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        where = PG_ENV if os.environ.get(PG_ENV) else f"the local server ({LOCAL_PG})"
        pytest.skip(f"the scale drill needs PostgreSQL; {where} is unreachable: "
                    f"{type(exc).__name__}")
    finally:
        engine.dispose()
    return url


def test_the_short_scale_drill_keeps_every_invariant_through_one_fault_of_each_kind(
        admin_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # the drill retries itself
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    opts = options(["--quick", "--postgres", admin_url])
    opts.workdir = tmp_path / "drill"
    result = run(opts, say=lambda line: None)
    report(result)
    shown = capsys.readouterr().out
    assert result.passed, shown
    figures = result.figures
    assert figures["kills_by_kind"] == {"web": 1, "worker": 1, "scheduler": 1}, shown
    assert figures["restarts_survived"] == 3, shown
    assert len(figures["faults"]) == 2, shown  # MLflow stopped, PostgreSQL sessions killed
    assert figures["decided"] == figures["requests"] == 12, shown


@pytest.mark.drill
@pytest.mark.full_drill
@pytest.mark.timeout(1800)
def test_the_full_scale_drill_passes_and_prints_its_figures(admin_url, capsys):
    done = subprocess.run([sys.executable, "bench/drill.py", "--postgres", admin_url],
                          cwd=ROOT, capture_output=True, text=True, timeout=1700,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith(("PODIUM_", "MLFLOW_"))})
    with capsys.disabled():  # the figures, on the terminal of `make drill`
        print("\n" + done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


# --- the checks themselves fail when they should -----------------------------------------

def slack_row(row_id: int, key: str, request_id: int | None = 1, kind: str = "step") -> dict:
    return {"id": row_id, "key": key, "channel": "slack", "kind": kind, "state": "sent",
            "request_id": request_id, "result": "ts"}


def posted(*keys_: str) -> list[dict]:
    return [{"ts": str(i), "metadata": {"event_payload": {"key": k}}}
            for i, k in enumerate(keys_)]


def test_the_slack_check_refuses_a_message_posted_twice_or_out_of_order():
    from bench.scaleout.invariants import slack_once_in_order

    rows = [slack_row(1, "request:1:event:1"), slack_row(2, "request:1:event:2")]
    good = posted("request:1:parent", "request:1:event:1", "request:1:event:2")
    assert slack_once_in_order(rows, good).passed
    assert not slack_once_in_order(rows, good + posted("request:1:event:2")).passed
    swapped = posted("request:1:parent", "request:1:event:2", "request:1:event:1")
    assert not slack_once_in_order(rows, swapped).passed
    assert not slack_once_in_order(rows, good[:2]).passed  # one never posted


def test_the_note_check_refuses_a_decision_noted_twice():
    from bench.scaleout.invariants import notes_once
    from webhook_server.adapters.gitlab import marker

    rows = [{"channel": "gitlab", "key": "gitlab:request:4:decision", "request_id": 4,
             "state": "sent", "result": "note 1 on !7"}]
    note = {"body": f"{marker(4, 'glpat-drill')}\npromoted"}
    assert notes_once(rows, [note]).passed
    assert not notes_once(rows, [note, note]).passed


def test_the_error_check_allows_5xx_only_inside_an_injected_outage():
    from types import SimpleNamespace

    from bench.scaleout.balancer import Answer
    from bench.scaleout.chaos import GRACE_S, Fault
    from bench.scaleout.invariants import errors_only_in_outages

    chaos = SimpleNamespace(faults=[Fault("postgres", "pg_terminate_backend", 100.0, 101.0)])

    def cluster(at: float):
        answer = Answer(at, "POST", "/webhooks/mlflow", 503, "127.0.0.1:1", "d1")
        return SimpleNamespace(balancer=SimpleNamespace(answers=[answer]))

    assert errors_only_in_outages(cluster(101.0 + GRACE_S - 1), chaos).passed
    assert not errors_only_in_outages(cluster(101.0 + GRACE_S + 1), chaos).passed
