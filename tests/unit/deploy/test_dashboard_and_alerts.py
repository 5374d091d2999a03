"""deploy/grafana/podium.json and deploy/prometheus/alerts.yaml use only metric names a
running Podium exports; the dashboard is a sound Grafana model; the rules pass promtool's
check and unit tests; each alert has its runbook entry."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.signing import mlflow_headers, tag_set

ROOT = Path(__file__).parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "podium.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RUNBOOK = ROOT / "docs" / "operations.md"
METRIC = re.compile(r"\b(podium_[a-z_]+)\b")
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
          "monitoring decay": "podium_model_decayed", "workers": "podium_workers"}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
            for t in p.get("targets", [])]


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def exported_names(client) -> set[str]:
    """Every series name the live /metrics can show: each family's name with the suffixes
    its type adds (a histogram with no sample yet still declares its _bucket)."""
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body))
    text = client.get("/metrics").data.decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES[family.type])
    return names


def test_every_metric_the_dashboard_and_the_alerts_use_is_exported(client):
    exported = exported_names(client)
    used = {name for expr in dashboard_exprs() + [r["expr"] for r in alert_rules()]
            for name in METRIC.findall(expr)}
    assert used, "no podium_ metric found in the deploy files"
    assert used - exported == set()


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
