"""What the pages show: stored text as text (never markup), the requests table with its
filters and pages, one request's timeline, checks and comparison chart, a model, the
operations; bad input is a 4xx page, never a 5xx. Runs on SQLite and PostgreSQL (the
page's own queries)."""

from html import unescape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.ui import waiting
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import audit, ledger, states
from webhook_server.store import transition_requests as reqs

XSS = "<script>alert(1)</script>"
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def ui_db(db_url):
    return db_url


def _request(svc, model="churn", version="4", key=None, target="Production"):
    return svc.intake.record(Delivery("api", key or f"{model}-{version}", "api.request", "{}",
                                      TransitionRequested(model, version, target,
                                                          "api"))).request_id


def test_a_model_name_and_a_reason_with_markup_show_as_text(usvc, as_person):
    rid = waiting(usvc, model=f"churn{XSS}", key="xss")
    with usvc.store.tx() as conn:
        reqs.transition(conn, rid, expect=(states.AWAITING_APPROVAL,), to=states.REJECTED,
                        actor="ui:ana", reason=f"bad model {XSS}")
    page = as_person("ana")
    for url in ("/ui/", f"/ui/requests/{rid}", "/ui/models/churn%3Cscript%3Ealert(1)%3C"
                "%2Fscript%3E", "/ui/operations", f"/ui/?model=churn{XSS}"):
        html = page.get(url).get_data(as_text=True)
        assert "<script>alert" not in html, url
    shown = page.text(f"/ui/requests/{rid}")
    assert "churn&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "bad model &lt;script&gt;alert(1)&lt;/script&gt;" in shown


def test_requests_newest_first_by_pages_with_the_waiting_ones_on_top(usvc, as_person):
    first = waiting(usvc, model="churn", version="2", key="w")
    ids = [_request(usvc, "churn", str(v)) for v in range(3, 33)]
    page = as_person("eve")
    html = page.text("/ui/")
    pending, _, table = html.partition('id="requests"')
    assert f'data-request="{first}"' in pending.split('id="pending"')[1]
    shown = [int(x) for x in table.split('data-request="')[1:] for x in [x.split('"')[0]]]
    assert shown == sorted(ids, reverse=True)[:25]
    older = html.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
    second = page.text(older)
    rest = [int(x.split('"')[0]) for x in second.split('id="requests"')[1]
            .split('data-request="')[1:]]
    assert rest == sorted([first, *ids], reverse=True)[25:]
    assert 'id="pending"' not in second and 'id="older"' not in second


def test_filters_by_model_and_state(usvc, as_person):
    waiting(usvc, model="churn", version="2", key="w")
    _request(usvc, "churn", "3")
    _request(usvc, "fraud", "1")
    page = as_person("eve")
    assert page.text("/ui/?model=fraud").count('data-request="') == 1
    by_state = page.text("/ui/?state=queued").split('id="requests"')[1]
    assert by_state.count('data-request="') == 2 and "awaiting_approval</span>" not in by_state


@pytest.mark.parametrize("query,message", [
    ("state=approved", "state filter: one of queued"), ("before=abc", "before: a request"),
    ("before=" + "9" * 30, "before: a request"), ("model=" + "m" * 201, "model filter"),
    ("model=a%01b", "model filter"), ("state=%00", "contains a NUL character")])
def test_bad_filters_answer_a_400_page(as_person, query, message):
    resp = as_person("eve").get(f"/ui/?{query}")
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    assert message in resp.get_data(as_text=True)


@pytest.mark.parametrize("url,message", [
    ("/ui/requests/999", "no request 999"), ("/ui/models/nothing", "knows no model 'nothing'"),
    ("/ui/requests/99999999999999999999999", ""), ("/ui/nope", "")])
def test_unknown_things_answer_a_404_page(as_person, url, message):
    resp = as_person("eve").get(url)
    assert resp.status_code == 404 and resp.mimetype == "text/html"
    assert message in unescape(resp.get_data(as_text=True))


def test_one_request_shows_its_timeline_checks_comparison_chart_and_evidence(usvc, as_person):
    rid = waiting(usvc)
    html = as_person("eve").text(f"/ui/requests/{rid}")
    timeline = html.split('id="timeline"')[1].split("</table>")[0]
    assert [s in timeline for s in ("queued</span>", "checking</span>", "comparing</span>",
                                    "awaiting_approval</span>")] == [True] * 4
    assert "waiting for 1 approval(s)" in timeline and " s</td>" in timeline
    checks = html.split('id="checks"')[1].split("</table>")[0]
    assert '<tr class="fail"><td>latency_p95</td><td>budget</td><td>FAIL</td>' \
           '<td class="num">131.5</td><td class="num">100</td>' in checks
    assert "(1/2 passed)" in html
    comparison = html.split('id="comparison"')[1]
    assert "challenger v3" in comparison and "champion v2" in comparison
    assert comparison.count("<svg") == 2 and 'class="bar clears"' in comparison
    assert "the lower end clears it" in comparison and "bound +0.0000" in comparison
    assert "margin -1.00" in comparison  # business value: not worse by 1 EUR a customer
    assert 'id="digest"' in html and "abababababababab" in html
    assert 'href="http://127.0.0.1:9/#/models/churn/versions/3"' in html
    assert f'data-poll="/ui/requests/{rid}/poll"' in html


LIVE = {"alias": "challenger", "shadow_version": "3", "champion_version": "2", "pairs": 1240,
        "min_pairs": 1000, "auc_shadow": 0.8412, "auc_champion": 0.8203, "delta": 0.0209,
        "lower": 0.0041, "upper": 0.0377, "bound": 0.0, "alpha": 0.05, "power": 0.83,
        "effect": 0.02, "verdict": "better", "decision": "promote", "rule": "superiority",
        "max_days": 30.0, "looked_at": "2026-06-02T09:00:00+00:00"}


def test_a_request_decided_on_live_outcomes_shows_the_live_figures(usvc, as_person):
    from tests.support.ui import EVIDENCE

    rid = waiting(usvc, evidence={**EVIDENCE, "live": LIVE})
    html = as_person("eve").text(f"/ui/requests/{rid}")
    live = html.split('id="live-evidence"')[1].split("</section>")[0]
    assert "(promote; last look 2026-06-02T09:00:00+00:00)" in live
    assert "v3 (shadow, alias challenger)" in live and "champion v2" in live
    assert '<td class="num">0.8412</td><td class="num">0.8203</td>' in live
    assert "1240 labelled pairs (a decision needs 1000); difference +0.0209" in live
    assert "always-valid 95 % interval +0.0041 to +0.0377" in live
    assert "alpha 0.05" in live and "power 83 %" in live and live.count("<svg") == 1
    # before the first look there is nothing to show
    other = waiting(usvc, key="d-2", evidence={**EVIDENCE, "live": {"alias": "challenger"}})
    assert 'id="live-evidence"' not in as_person("eve").text(f"/ui/requests/{other}")


def test_stored_evidence_of_any_shape_never_breaks_the_page(usvc, as_person):
    odd = {"checks": [None, {"name": ["x"], "passed": "yes", "value": {"a": 1}},
                      {"value": float("inf")}], "holdout": [1],
           "comparison": {"delta": "big", "ci_low": None, "challenger": "v3",
                          "reasons": "not a list", "value_delta": True}}
    rid = waiting(usvc, evidence=odd)
    assert as_person("eve").get(f"/ui/requests/{rid}").status_code == 200
    with usvc.store.tx() as conn:
        from sqlalchemy import update

        from webhook_server.store.schema import requests

        conn.execute(update(requests).values(evidence="{not json"))
    assert as_person("eve").get(f"/ui/requests/{rid}").status_code == 200


def test_a_running_request_refreshes_itself_and_the_poll_follows_it(usvc, as_person):
    rid = _request(usvc)
    page = as_person("eve")
    html = page.text(f"/ui/requests/{rid}")
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    before = page.get(f"/ui/requests/{rid}/poll").json
    assert before["state"] == "queued" and f'data-mark="{before["mark"]}"' in html
    with usvc.store.tx() as conn:
        reqs.transition(conn, rid, expect=(states.QUEUED,), to=states.CHECKING, actor="w")
    assert page.get(f"/ui/requests/{rid}/poll").json["mark"] != before["mark"]
    assert page.get("/ui/requests/999/poll").status_code == 404
    with usvc.store.tx() as conn:
        reqs.transition(conn, rid, expect=(states.CHECKING,), to=states.FAILED, actor="w")
    ended = page.text(f"/ui/requests/{rid}")
    assert 'http-equiv="refresh"' not in ended and "data-poll" not in ended


def test_a_model_shows_its_champion_ledger_open_requests_and_last_drift(usvc, as_person):
    rid = waiting(usvc)
    with usvc.store.tx() as conn:
        ledger.record(conn, model="churn", alias="champion", from_version="1", to_version="2",
                      kind=ledger.PROMOTE, actor="ui:ana", request_id=rid)
        audit.record(conn, actor="scheduler", action="drift", subject="churn", detail={
            "model_version": "churn/2", "rows": 3000, "threshold": 0.2,
            "drifted": ["tenure"], "psi": {"tenure": 0.31, "MonthlyCharges": 0.05}})
    html = as_person("eve").text("/ui/models/churn")
    assert '<dd id="champion">v2</dd>' in html
    assert f'href="/ui/requests/{rid}">#{rid}</a>' in html.split('id="ledger"')[1]
    assert f'data-request="{rid}"' in html.split('id="open"')[1].split("</table>")[0]
    drift = html.split("Last drift report")[1]
    assert "<strong>tenure</strong>" in drift
    assert drift.index("tenure</td>") < drift.index("MonthlyCharges</td>")


def test_a_model_page_draws_its_monitoring_trends_as_inline_svg(usvc, as_person):
    waiting(usvc)
    with usvc.store.tx() as conn:
        ledger.record(conn, model="churn", alias="champion", from_version=None,
                      to_version="2", kind=ledger.PROMOTE, actor="ui:ana", request_id=None)
        for psi in (0.05, 0.31):
            audit.record(conn, actor="scheduler", action="drift", subject="churn", detail={
                "model_version": "churn/2", "rows": 3000, "threshold": 0.2,
                "drifted": ["tenure"], "psi": {"tenure": psi, "Monthly<b>": 0.01}})
    html = as_person("eve").text("/ui/models/churn")
    trends = html.split('id="trends"')[1].split("</section>")[0]
    assert trends.count("<svg") == 4  # AUC, live (no shadow: no data yet), churn, PSI
    assert "no data yet" in trends.split('id="live-chart"')[1].split("</figure>")[0]
    psi = trends.split("<svg")[4]
    assert "tenure" in psi and "Monthly&lt;b&gt;" in psi and "<b>" not in psi


def test_operations_show_deliveries_duplicates_dead_jobs_and_the_reconciler(usvc, as_person):
    from tests.support.signing import mlflow_headers, tag_set
    from webhook_server.jobs.scheduler import enqueue_reconcile
    from webhook_server.web.app import create_app

    client = create_app(usvc.settings, services=usvc).test_client()
    body = tag_set()
    for _ in range(3):
        client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body,
                                                                          delivery_id="d-7"))
    job = usvc.queue.claim("w")
    usvc.queue.fail(job, "MLflow down", permanent=True)
    enqueue_reconcile(usvc.store, usvc.queue, 60)
    html = as_person("eve").text("/ui/operations")
    row = html.split('id="deliveries"')[1].split("<code>d-7</code>")[1].split("</tr>")[0]
    assert "accepted" in row and '<td class="num">2</td>' in row and "/ui/requests/1" in row
    dead = html.split('id="dead-jobs"')[1].split("</table>")[0]
    assert "<code>request:1</code>" in dead and "MLflow down" in dead
    assert "Replay</button>" not in dead  # eve approves no model
    assert "<code>reconcile:" in html.split('id="reconciler"')[1]


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(["/ui/", "/ui/requests/", "/ui/models/", "/ui/operations",
                             "/ui/requests/1/poll", "/ui/models/churn/rollback"]),
       tail=st.text(max_size=30), query=st.dictionaries(
           st.sampled_from(["model", "state", "before", "to", "next"]),
           st.text(max_size=40), max_size=3))
def test_random_paths_and_queries_never_get_a_5xx(ui_app, usvc, as_person, path, tail, query):
    from urllib.parse import quote, urlencode

    if not getattr(usvc, "_seeded", False):
        waiting(usvc)
        usvc._seeded = True
    resp = as_person("ana").get(path + quote(tail, safe="/") + "?" + urlencode(query))
    assert resp.status_code < 500, resp.get_data(as_text=True)[:500]


def test_the_templates_and_static_files_are_package_data():
    """``pip install .`` (not only ``-e``) must carry every template, stylesheet and script."""
    from setuptools.config.setupcfg import read_configuration

    globs = read_configuration(ROOT / "setup.cfg")["options"]["package_data"]["webhook_server"]
    package = ROOT / "webhook_server"
    shipped = {p for g in globs for p in package.glob(g)}
    files = {p for d in ("web/ui/templates", "web/ui/static") for p in (package / d).rglob("*")
             if p.is_file()}
    assert files and files <= shipped, sorted(str(p) for p in files - shipped)

