"""Each request's history says how long each stage took, and /metrics has the same as a
histogram by stage that every process shares."""

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from tests.support.signing import SECRET
from webhook_server.cli import main
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import stage_timing
from webhook_server.store import transition_requests as reqs

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_observations_land_in_their_bucket_and_read_back_cumulative(svc):
    with svc.store.tx() as conn:
        stage_timing.observe(conn, "checking", T0, T0 + timedelta(seconds=2.5))
        stage_timing.observe(conn, "checking", T0, T0 + timedelta(seconds=0.1))
        stage_timing.observe(conn, "awaiting_approval", T0, T0 + timedelta(days=3))
        stage_timing.observe(conn, "queued", None, T0)  # no start: nothing to say
    with svc.store.read() as conn:
        read = stage_timing.read(conn)
    assert set(read) == {"checking", "awaiting_approval"}
    buckets, total = read["checking"]
    assert dict(buckets)["0.25"] == 1 and dict(buckets)["2"] == 1 and dict(buckets)["3"] == 2
    assert buckets[-1] == ("+Inf", 2) and total == 2.6
    buckets, total = read["awaiting_approval"]
    assert dict(buckets)["86400"] == 0 and buckets[-1] == ("+Inf", 1)


def decide(svc) -> int:
    rid = svc.intake.record(Delivery("mlflow", "d-1", "model_version_tag.set", "{}",
                                     TransitionRequested("churn", "3", "Production",
                                                         "tag"))).request_id
    with svc.store.tx() as conn:
        for frm, to in (("queued", "checking"), ("checking", "comparing"),
                        ("comparing", "rejected")):
            assert reqs.transition(conn, rid, expect=(frm,), to=to, actor="test")
        reqs.note(conn, rid, "test", "a note line does not end a stage")
    return rid


def test_a_decided_request_is_in_the_metrics_histogram_by_stage(svc, client):
    decide(svc)
    text = client.get("/metrics").get_data(as_text=True)
    for stage in ("queued", "checking", "comparing", "decision"):
        assert f'podium_request_stage_seconds_count{{stage="{stage}"}} 1.0' in text
        assert f'podium_request_stage_seconds_bucket{{le="+Inf",stage="{stage}"}} 1.0' in text
    assert 'stage="rejected"' not in text  # a terminal state is no stage


def test_show_prints_each_stages_duration(svc):
    rid = decide(svc)
    env = {"PODIUM_DATABASE_URL": svc.settings.database_url,
           "PODIUM_MLFLOW_WEBHOOK_SECRET": SECRET}
    data = json.loads(CliRunner().invoke(main, ["show", str(rid), "--json"], env=env).output)
    seconds = [h["seconds"] for h in data["history"]]
    assert [h["to"] for h in data["history"]] == ["queued", "checking", "comparing",
                                                   "rejected", "rejected"]
    assert all(s >= 0 for s in seconds[:-1]) and seconds[-1] is None
    assert list(data["stages"]) == ["queued", "checking", "comparing", "rejected"]
    table = CliRunner().invoke(main, ["show", str(rid)], env=env).output
    assert "then" in table.splitlines()[1] and "stages: queued " in table
