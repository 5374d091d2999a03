"""deploy/grafana/podium.json and deploy/prometheus/alerts.yaml use only metric names a
running Podium exports; the dashboard is a sound Grafana model; the rules pass promtool's
check and unit tests; each alert has its runbook entry."""

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from podium_policy.check import parse_text
from tests.support.signing import mlflow_headers, tag_set
from webhook_server.intake import tell
from webhook_server.jobs.worker import Worker
from webhook_server.service.handlers import for_services
from webhook_server.store import audit, counters, stage_timing
from webhook_server.store import transition_requests as reqs
from webhook_server.store.clock import db_now

ROOT = Path(__file__).parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "podium.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RUNBOOK = ROOT / "docs" / "operations.md"
METRIC = re.compile(r"\b(podium_[a-z_]+)\b")
SELECTOR = re.compile(r"\b(podium_[a-z_]+)\{([^}]*)\}")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count",
                                                             "_created"),
            "gauge": (), "summary": ("_sum", "_count", "_created"), "unknown": ()}
# what the issue asks the dashboard to show, as the metrics that show it
WANTED = {"requests by state": "podium_requests",
          "decision latency by stage": "podium_request_stage_seconds_bucket",
          "queue depth": "podium_jobs", "queue age": "podium_queue_age_seconds",
          "outbox backlog": "podium_notifications",
          "outbox failures": "podium_notifications_failing",
          "webhook rejections by reason": "podium_rejected_signatures_total",
          "sandbox failures": "podium_gate_failures_total",
          "monitoring decay": "podium_model_decayed", "workers": "podium_workers",
          "shadowing: days waited": "podium_shadowing_seconds",
          "shadowing: max_days": "podium_shadowing_max_seconds",
          "shadowing: labelled pairs": "podium_shadowing_pairs"}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
            for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def exported(client, svc) -> dict[str, set[str]]:
    """Every series name the live /metrics can show, with the label names its samples carry:
    each family's name and the suffixes its type adds (a histogram with no sample yet still
    declares its _bucket). A delivery, a refused one, a finished job, a failed gate, a
    monitoring report, a stage timing and a request waiting for live evidence first, so the
    labelled families have samples."""
    svc.policy = parse_text("default:\n  shadow: [challenger]\n  comparison:\n"
                            "    live: {min_pairs: 500}\n")
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body, secret="wrong"))
    Worker(svc.queue, for_services(svc), owner="w").run_once()
    counters.incr(svc.store, counters.GATE_FAILURES, "check|failed")
    with svc.store.tx() as conn:
        audit.record(conn, actor="scheduler", action="monitor", subject="churn",
                     detail={"decayed": False})
        now = db_now(conn)
        stage_timing.observe(conn, "checking", now - timedelta(seconds=3), now)
        shadowing = tag_set(version="2")
    client.post("/webhooks/mlflow", data=shadowing, headers=mlflow_headers(shadowing))
    with svc.store.tx() as conn:
        rid = max(r.id for r in reqs.list_(conn))
        tell.transition(conn, rid, expect=("queued",), to="shadowing", actor="policy")
    text = client.get("/metrics").data.decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {k for sample in family.samples for k in sample.labels} - {"le"}
        for name in (family.name, *(family.name + s for s in SUFFIXES[family.type])):
            names[name] = labels
    return names


def test_every_metric_and_label_the_dashboard_and_the_alerts_use_is_exported(client, svc):
    live = exported(client, svc)
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "no podium_ metric found in the deploy files"
    assert used - set(live) == set()
    for expr in exprs:
        for name, selector in SELECTOR.findall(expr):
            keys = set(re.findall(r"(\w+)\s*=~?", selector))
            assert keys <= live[name], f"{name}{{{selector}}}: {keys - live[name]} not exported"
        for by in re.findall(r"by \(([^)]*)\)", expr):
            names_here = [n for n in METRIC.findall(expr)]
            labels = {x.strip() for x in by.split(",")} - {"le"}
            assert any(labels <= live[n] for n in names_here), f"by ({by}) in {expr}"


def test_the_dashboard_shows_what_an_operator_needs():
    used = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    missing = {what: name for what, name in WANTED.items() if name not in used}
    assert missing == {}


def test_the_dashboard_is_a_grafana_model_with_unique_ids_and_no_overlapping_panels():
    model = json.loads(DASHBOARD.read_text())
    assert model["uid"] == "podium-overview" and model["schemaVersion"] >= 36
    assert [v["name"] for v in model["templating"]["list"]] == ["datasource"]
    panels = model["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = {}
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"] and all(t["expr"].strip() for t in p["targets"])


def test_every_alert_links_a_runbook_entry_that_names_a_command():
    text = RUNBOOK.read_text()
    sections = {m.group(1).lower(): m.group(2) for m in re.finditer(
        r"^### (\w+)\n(.*?)(?=^###? |\Z)", text, re.M | re.S)}
    for rule in alert_rules():
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md" and anchor in sections, rule["alert"]
        assert "`podium " in sections[anchor], f"{anchor}: names no command to run"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus): the alert "
                    "rules are not checked here")
    return found


def test_the_alert_rules_pass_promtool_check():
    out = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in out.stdout


def test_the_alert_rules_pass_their_promtool_unit_tests():
    out = subprocess.run([_promtool(), "test", "rules", "alerts.test.yaml"],
                         cwd=ALERTS.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_dashboard_query_parses_as_promql(tmp_path):
    """promtool parses each panel query as a recording rule (Grafana's $__rate_interval
    made a plain range first): no Grafana here, so this is the check the queries get."""
    rules = [{"record": f"podium:dashboard:q{i}",
              "expr": expr.replace("$__rate_interval", "5m")}
             for i, expr in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout
