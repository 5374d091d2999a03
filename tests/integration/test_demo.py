"""`podium demo` end to end in a scratch directory, run from the wheel installed outside the
checkout (tests/support/wheel.py), as a user who ran `pip install podium` would: what it
prints is what MLflow and the store hold."""

import json
import re
import subprocess

import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, text

from tests.support import wheel

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)  # a whole story of process starts: 3-4.5 min beside 3 workers
def test_demo_tells_the_whole_story_and_leaves_it_in_mlflow_and_the_store(
        tmp_path, tmp_path_factory):
    installed = wheel.session_wheel(tmp_path_factory)
    # An installed Podium is no git checkout: its lineage is the commit the environment
    # names, as the image bakes it in (PODIUM_GIT_COMMIT), else the git_commit check fails.
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=wheel.ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    # --trace: the same story, traced to the demo's OTLP receiver, with JSON logs
    proc = subprocess.run([str(installed.bin / "podium"), "demo", "--trace"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=400,
                          env={"PATH": f"{installed.bin}:/usr/bin:/bin",
                               "PODIUM_GIT_COMMIT": commit})
    assert f"podium: {installed.venv}" in installed.run(
        [str(installed.bin / "python"), "-c", "import webhook_server, pathlib; print('podium:',"
         " pathlib.Path(webhook_server.__file__).parents[4])"], cwd=tmp_path).stdout
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "test delivery: ok (HTTP 200)" in out
    # Slack, as the terminal shows it: buttons, the click, the ephemeral answer.
    assert "churn-demo v1 → Production: awaiting_approval   [Approve] [Reject]" in out
    assert out.count("clicking Approve as <@U0DEMOAPPROVER>") == 2
    assert "(only <@U0DEMOAPPROVER> sees) You approved request 1" in out
    assert "MLflow shows on v1: podium.status=promoted, podium.checks=22/22 passed, " \
        "podium.decided_by=slack:U0DEMOAPPROVER" in out
    assert "MLflow shows on v2: podium.status=rejected" in out
    assert "champion alias stays at v1" in out
    assert "champion alias -> v3; v1 is now archived" in out
    assert "scored 2,000 customers with churn-demo/3" in out and "drift in" in out
    assert "champion v3 -> v1" in out and "champion v1 -> v3" in out
    assert "final aliases: challenger -> v3, champion -> v1" in out  # the decay's rollback
    assert "Podium put it back to v3 (ledger: external, then reverted" in out
    assert out.count("was moved to v2 outside Podium") == 1  # one alert
    assert "INFO werkzeug" not in out + proc.stderr  # the fake Slack does not log requests
    # monitoring: podium score logs the champion's batch and, in shadow, the former
    # champion's; the outcomes are joined to both; the decay and the live comparison
    # reported; the monitoring job proposes the rollback, clicked in Slack
    decay = out.split("\n[8] ")[1].split("\n[9] ")[0]
    assert "podium score (policy monitoring.shadow_former): 2,000 predictions of " \
        "churn-demo/3 logged under inference-log/model=churn-demo/version=3/" in decay
    assert "shadow former (version 1, in a sandbox of its own): 2,000 rows logged under " \
        "inference-log/model=churn-demo/version=1/, not written" in decay
    assert "podium labels: 2,000 outcomes joined to 4,000 predictions (each version's; " \
        "0 rejected)" in decay
    assert "(exit 1: the policy's decay rule fired)" in decay
    assert "DECAY: churn-demo v3 in " in decay
    live = re.search(r"v1 vs v3 +all logged +2,000 +(0\.\d{4}) +(0\.\d{4}) +\+0\.\d{4} +"
                     r"\[\+(0\.\d{4}), \+0\.\d{4}\] .* better", decay)
    assert live and float(live[1]) > float(live[2]) and float(live[3]) > 0
    assert "retrain" not in decay  # on_decay: propose asks for the rollback instead
    assert re.search(r"rollback request 6: v3 -> v1, awaiting approval: live roc_auc v1 "
                     r"0\.\d{4} vs champion v3 0\.\d{4} on 2,000 labelled outcomes", decay)
    assert "slack  :raised_hand: churn-demo v1 → Production: awaiting_approval   " \
        "[Rollback] [Dismiss]" in decay
    assert "champion v3 decayed and v1 is significantly better live than v3" in decay
    assert "slack  :chart_with_downwards_trend: churn-demo, monitoring " in decay
    assert "proposed as request 6: Rollback or Dismiss it" in decay
    assert "clicking Rollback as <@U0DEMOAPPROVER> (a signed request to " \
        "/slack/interactions)" in decay
    assert "(only <@U0DEMOAPPROVER> sees) You agreed to request 6: rolling churn-demo back " \
        "to v1." in decay
    assert "champion rolled back from v3 to v1" in decay
    assert "champion alias -> v1 (MLflow: v1 promoted, v3 archived); ledger: rollback " \
        "v3 -> v1 by slack:U0DEMOAPPROVER" in decay
    # live evidence: a second model whose policy waits for live outcomes; v3's files win on
    # the holdout, wait in shadowing on the challenger alias, are scored in shadow beside
    # v1's and promoted once a look at the labelled outcomes clears the always-valid bound
    live = out.split("\n[9] ")[1].split("\n[10] ")[0]
    assert "registered v1 and v3 of churn-demo again as churn-demo-live v1 and v2" in live
    assert "no champion yet, the policy promotes it (22/22 passed)" in live
    assert "state shadowing: passed the holdout against the champion v1; waiting for live " \
        "evidence on alias 'challenger': 1,500 labelled pairs, at most 30 days; MLflow: " \
        "challenger -> v2, champion -> v1" in live
    assert "podium score: 4,500 customers scored by churn-demo-live/1 (the output); v2 on " \
        "alias challenger, in a sandbox of its own: 4,500 rows logged in shadow, not " \
        "written" in live
    looks = re.findall(r"outcomes (\d)/3: 1,500 joined to 3,000 predictions; look \1: "
                       r"([\d,]+) pairs, .*: (better|undecided) -> (promote|keep waiting)", live)
    assert looks and looks[-1][1:] == (f"{1500 * len(looks):,}", "better", "promote")
    assert all(x[2:] == ("undecided", "keep waiting") for x in looks[:-1])
    figures = re.search(r"promoted on live outcomes: ([\d,]+) labelled pairs, ROC AUC v2 "
                        r"(0\.\d{4}) vs v1 (0\.\d{4}), difference \+(0\.\d{4}), always-valid "
                        r"95% interval \[\+(0\.\d{4}), \+0\.\d{4}\]", live)
    assert figures and figures[1] == looks[-1][1] and float(figures[2]) > float(figures[3])
    assert float(figures[5]) > 0  # the lower end cleared the bound (superiority: 0)
    assert "MLflow: champion -> v2, challenger removed; v1 archived" in live
    assert re.search(rf"Slack, request \d+'s message: Live evidence {figures[1]} labelled "
                     r"pairs \(of 1,500 needed\), ROC AUC v2 0\.\d{4} vs champion v1 "
                     r"0\.\d{4}, difference \+0\.\d{4}, always-valid interval .*: better",
                     live)
    assert "slack  ✎ :trophy: churn-demo-live v2 → Production: promoted" in live
    # the first promotion as traces: the webhook's down to the checks, the click's down to
    # the alias move, across the HTTP and the job worker processes
    assert "Traces of request 1 (2: the webhook's, then the approval's)" in out
    webhook_trace, click_trace = out.split("\ntrace ")[1:3]
    assert webhook_trace.splitlines()[1].startswith("POST /webhooks/mlflow  [server")
    for line in ("  job request  [consumer", "    step checking  [internal",
                 "      sandbox check  [internal", "      mlflow get_model_version  [client"):
        assert line in webhook_trace
    assert click_trace.splitlines()[1].startswith("POST /slack/interactions  [server")
    assert "mlflow set_registered_model_alias  [client" in click_trace
    assert "alias=champion" in click_trace
    logged = [json.loads(line) for line in out.split("JSON log lines of request 1")[1]
              .splitlines() if line.startswith("{")]
    assert logged and all(r["request_id"] == 1 and r["node"] for r in logged)
    assert any(len(r.get("trace_id", "")) == 32 for r in logged)
    assert re.search(r"\$ podium verify (\d+)\n +verified: request \1, bundle [0-9a-f]{64}",
                     out)
    assert "$ podium policy diff podium.yaml podium-stricter.yaml" in out
    assert "decision(s) would change." in out

    demo = tmp_path / ".podium" / "demo"
    with create_engine(f"sqlite:///{demo / 'podium.db'}").connect() as conn:
        rows = conn.execute(text("SELECT version, origin, target, state, decided_by FROM "
                                 "requests WHERE model = 'churn-demo' ORDER BY id")).all()
        ledger = conn.execute(text("SELECT kind, from_version, to_version, actor FROM ledger "
                                   "WHERE model = 'churn-demo' ORDER BY id")).all()
        live_rows = conn.execute(text("SELECT version, state, decided_by, evidence FROM "
                                      "requests WHERE model = 'churn-demo-live' ORDER BY id")
                                 ).all()
        live_moves = conn.execute(text("SELECT kind, from_version, to_version FROM ledger "
                                       "WHERE model = 'churn-demo-live' ORDER BY id")).all()
        unsent = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE channel = 'slack' "
                                   "AND state != 'sent'")).scalar_one()
    assert [tuple(r) for r in rows] == [
        ("1", "tag", "Production", "promoted", "slack:U0DEMOAPPROVER"),
        ("2", "tag", "Production", "rejected", "policy"),
        ("3", "alias", "Production", "promoted", "slack:U0DEMOAPPROVER"),
        ("1", "rollback", "Production", "promoted", "cli:demo"),  # rollbacks are requests
        ("3", "rollback", "Production", "promoted", "cli:demo"),
        ("1", "rollback", "Production", "promoted", "slack:U0DEMOAPPROVER")]  # the decay's
    assert [tuple(r) for r in ledger] == [
        ("promote", None, "1", "slack:U0DEMOAPPROVER"),
        ("promote", "1", "3", "slack:U0DEMOAPPROVER"),
        ("rollback", "3", "1", "cli:demo"), ("rollback", "1", "3", "cli:demo"),
        ("external", "3", "2", "external"),  # set by hand in MLflow...
        ("reverted", "2", "3", "podium:guard"),  # ...and put back by Podium
        ("rollback", "3", "1", "slack:U0DEMOAPPROVER")]  # the proposal, approved in Slack
    assert unsent == 0  # every Slack message was delivered
    assert [tuple(r[:3]) for r in live_rows] == [("1", "promoted", "policy"),
                                                 ("2", "promoted", "policy")]
    evidence = json.loads(live_rows[1][3])["live"]
    assert (evidence["decision"], evidence["verdict"], evidence["pairs"]) == (
        "promote", "better", 1500 * len(looks))
    assert evidence["lower"] > 0 and evidence["min_pairs"] == 1500
    assert [tuple(m) for m in live_moves] == [("promote", None, "1"), ("promote", "1", "2")]
    with create_engine(f"sqlite:///{demo / 'podium.db'}").connect() as conn:
        batches = conn.execute(text("SELECT model, version, rows, role FROM inference_batches "
                                    "ORDER BY id")).all()
        proposer = conn.execute(text("SELECT requested_by FROM requests WHERE id = 6")
                                ).scalar_one()
        labelled = dict(conn.execute(text("SELECT model, COUNT(*) FROM labels GROUP BY model")
                                     ).all())
        alerts = conn.execute(text("SELECT key, state FROM outbox WHERE key LIKE "
                                   "'monitor:%'")).all()
        retrains = conn.execute(text("SELECT COUNT(*) FROM jobs WHERE kind = 'retrain'")
                                ).scalar_one()
        monitored = conn.execute(text("SELECT detail FROM audit WHERE action = 'monitor'")
                                 ).scalars().all()
    assert [tuple(b) for b in batches] == [("churn-demo", "3", 2000, "champion"),
                                           ("churn-demo", "1", 2000, "shadow"),
                                           ("churn-demo-live", "1", 4500, "champion"),
                                           ("churn-demo-live", "2", 4500, "shadow")]
    assert labelled == {"churn-demo": 4000, "churn-demo-live": 2 * 1500 * len(looks)}
    assert proposer == "monitor"
    assert len(alerts) == 1 and alerts[0][1] == "sent"
    assert retrains == 0
    (detail,) = [json.loads(d) for d in monitored]
    assert detail["decayed"] is True and detail["retrain"] is None
    rollback = detail["rollback"]
    assert (rollback["mode"], rollback["former"], rollback["better"], rollback["state"],
            rollback["request"]) == ("propose", "1", True, "awaiting_approval", 6)
    assert rollback["live"]["pairs"] == 2000 and rollback["live"]["lower"] > 0
    for version in ("3", "1"):
        assert list((demo / "inference-log" / "model=churn-demo" / f"version={version}")
                    .rglob("*.parquet"))

    # The registry, read with the demo's servers stopped: MLflow's client on its store (no
    # server: its aliases name versions as numbers there)
    db = f"sqlite:///{demo / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=db, registry_uri=db)
    assert str(client.get_registered_model("churn-demo").aliases["champion"]) == "1"
    status = {v: client.get_model_version("churn-demo", v).tags.get("podium.status")
              for v in ("1", "2", "3")}
    assert status == {"1": "promoted", "2": "rejected", "3": "archived"}
    reason = client.get_model_version("churn-demo", "2").tags["podium.reason"]
    assert reason.startswith("loses the comparison")
    assert {alias: str(v) for alias, v in
            client.get_registered_model("churn-demo-live").aliases.items()} == {"champion": "2"}
    assert client.get_model_version("churn-demo-live", "2").tags["podium.status"] == \
        "promoted"
