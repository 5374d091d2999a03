"""Trends as inline SVG: valid XML, outside text escaped, gaps and markers drawn, and a
chart that says so when there is no data."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from podium_policy.policy import parse_policy
from tests.unit.monitoring.logdata import labelled_batch, promoted
from webhook_server.monitoring.report import MonitorReport
from webhook_server.monitoring.svg import line_chart
from webhook_server.monitoring.trends import charts, model_trends

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  (our own output, no entities)


def texts(svg: str) -> list[str]:
    return [t.text for t in parse(svg).iter(f"{NS}text")]


def test_a_chart_is_one_svg_element_with_a_point_per_value_and_a_legend():
    svg = line_chart("AUC", ["W1", "W2", "W3"],
                     {"v1": [0.8, 0.7, None], "v2": [None, 0.9, 0.85]},
                     intervals={"v1": [(0.75, 0.85), None, None]}, threshold=0.75)
    root = parse(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert len(list(root.iter(f"{NS}circle"))) == 4  # None is no point
    assert len(list(root.iter(f"{NS}polyline"))) == 2
    assert {"v1", "v2", "W1", "W3"} <= set(texts(svg))
    tips = [t.text for c in root.iter(f"{NS}circle") for t in c.iter(f"{NS}title")]
    assert "v1 W1: 0.80 (0.75 to 0.85)" in tips


def test_a_gap_breaks_the_line():
    svg = line_chart("x", ["a", "b", "c", "d"], {"s": [0.5, None, 0.6, 0.7]})
    root = parse(svg)
    (line,) = root.iter(f"{NS}polyline")  # a and c are not joined across the gap
    assert len(line.get("points").split()) == 2


def test_outside_text_is_escaped_everywhere():
    evil = '<script>alert("x")</script> & co'
    svg = line_chart(evil, [evil], {evil: [0.5]}, markers=[(evil, evil)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = parse(svg)  # still one valid document
    assert root.find(f"{NS}title").text == evil and evil in texts(svg)


def test_no_data_draws_a_chart_that_says_so():
    for svg in (line_chart("empty", [], {}), line_chart("none", ["W1"], {"v1": [None]})):
        assert texts(svg)[-1] == "no data yet"
        assert not list(parse(svg).iter(f"{NS}circle"))
    empty = MonitorReport("churn", "week", 0.5, None, {}, [], None, None)
    for svg in charts(empty, [], []).values():
        assert "no data yet" in texts(svg)


def test_the_model_trends_come_from_the_store(svc):
    promoted(svc.store, "3", auc=0.84)
    labelled_batch(svc.store, datetime(2026, 6, 2, tzinfo=UTC), 300, separation=1.4, seed=1)
    labelled_batch(svc.store, datetime(2026, 6, 9, tzinfo=UTC), 300, separation=0.5, seed=2)
    from webhook_server.store import audit

    with svc.store.tx() as conn:
        for psi in (0.05, 0.3):
            audit.record(conn, actor="scheduler", action="drift", subject="churn", detail={
                "model_version": "churn/3", "threshold": 0.2, "drifted": [],
                "psi": {"Contract": psi, "<tenure>": 0.01}})
    with svc.store.read() as conn:
        out = model_trends(conn, "churn", parse_policy({}).for_model("churn"),
                           now=datetime(2026, 7, 1, tzinfo=UTC))
        late = model_trends(conn, "churn", parse_policy({}).for_model("churn"),
                            now=datetime(2026, 12, 5, tzinfo=UTC))
    assert set(out) == {"auc", "psi", "churn", "live"}
    assert "no data yet" in texts(out["live"])  # no shadow logged
    # the page reads the last 26 weeks only: in December, the week of June 2 is out
    assert "2026-W23" not in texts(late["auc"]) and "2026-W24" in texts(late["auc"])
    assert {"v3", "2026-W23", "2026-W24"} <= set(texts(out["auc"]))
    assert texts(out["auc"]).count("v3") == 2  # the legend, and the champion's move
    assert {"Contract", "<tenure>"} <= set(texts(out["psi"])) and "&lt;tenure&gt;" in out["psi"]
    assert {"predicted", "observed"} <= set(texts(out["churn"]))


def test_the_page_draws_each_shadows_live_gain_with_its_interval_and_pairs(svc):
    from tests.unit.monitoring.logdata import decayed_beside_former

    when = datetime(2026, 6, 2, tzinfo=UTC)
    decayed_beside_former(svc.store, when)  # v2 in shadow beside the champion v3
    with svc.store.read() as conn:
        out = model_trends(conn, "churn", parse_policy({}).for_model("churn"),
                           now=datetime(2026, 7, 1, tzinfo=UTC))
    assert "v2 shadow, 1,000 pairs" in texts(out["auc"]) and "v3" in texts(out["auc"])
    live = parse(out["live"])
    assert "v2 vs v3, 1,000 pairs" in texts(out["live"])
    (point,) = live.iter(f"{NS}circle")
    tip = point.find(f"{NS}title").text  # the gain and its always-valid interval
    gain, low, high = (float(v) for v in re.findall(r"[+-]\d\.\d{4}", tip))
    assert 0 < low < gain < high
