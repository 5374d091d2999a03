"""Prometheus metrics read from the store at scrape time.

Deliveries, duplicates, rejected signatures and jobs live in the database, so the figures
are the same whichever worker process answers the scrape, and survive restarts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from webhook_server.intake.sources import REJECTION_REASONS
from webhook_server.jobs.queue import counts, oldest_runnable_age_s
from webhook_server.store import Store, outbox, stage_timing, views
from webhook_server.store.counters import read


class StoreCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):
        with self.store.read() as conn:
            by_outcome = views.deliveries_by_outcome(conn)
            rejected = read(conn, "rejected_signatures")
            job_counts = counts(conn)
            age = oldest_runnable_age_s(conn)
            req_counts = views.requests_by_state(conn)
            notes = outbox.counts(conn)
            stage_times = stage_timing.read(conn)
        delivered = CounterMetricFamily("podium_deliveries", "Verified deliveries stored",
                                        labels=["source", "outcome"])
        dup = CounterMetricFamily("podium_duplicate_deliveries",
                                  "Deliveries received again and ignored", labels=["source"])
        dups: dict[str, int] = {}
        for source, status, n, d in by_outcome:
            delivered.add_metric([source, status], n)
            dups[source] = dups.get(source, 0) + int(d)
        for source, n in dups.items():
            dup.add_metric([source], n)
        bad = CounterMetricFamily("podium_rejected_signatures",
                                  "Deliveries refused before their content was trusted "
                                  "(401; 403 for a Slack click from another workspace)",
                                  labels=["source", "reason"])
        for (source, reason), n in rejection_counts(rejected).items():
            bad.add_metric([source, reason], n)
        jobs_g = GaugeMetricFamily("podium_jobs", "Jobs by state", labels=["state"])
        for state in ("queued", "running", "done", "dead"):
            jobs_g.add_metric([state], job_counts.get(state, 0))
        reqs_g = GaugeMetricFamily("podium_requests", "Transition requests by state",
                                   labels=["state"])
        for state, n in req_counts.items():
            reqs_g.add_metric([state], n)
        notes_g = GaugeMetricFamily("podium_notifications",
                                    "Outbox notifications by channel and state",
                                    labels=["channel", "state"])
        for channel in ("slack", "gitlab"):
            for state in (outbox.PENDING, outbox.SENT, outbox.DEAD):
                notes_g.add_metric([channel, state], notes.get((channel, state), 0))
        stage_h = HistogramMetricFamily(
            "podium_request_stage_seconds", "Seconds requests spent in each state before "
            "leaving it (stage=decision: created to terminal)", labels=["stage"])
        for stage, (buckets, total) in stage_times.items():
            stage_h.add_metric([stage], buckets, sum_value=total)
        yield from (delivered, dup, bad, jobs_g, reqs_g, notes_g, stage_h,
                    GaugeMetricFamily("podium_queue_age_seconds",
                                      "Age of the oldest runnable queued job", value=age))


SOURCES = ("mlflow", "databricks", "slack")


def rejection_counts(rows: dict[str, int]) -> dict[tuple[str, str], int]:
    """Counter rows (``source|reason``) as fixed label pairs: rows written by older versions
    with free text (the request's timestamp, say) are summed under ``other``."""
    out: dict[tuple[str, str], int] = {}
    for labels, n in rows.items():
        source, _, reason = labels.partition("|")
        key = (source if source in SOURCES else "other",
               reason if reason in REJECTION_REASONS else "other")
        out[key] = out.get(key, 0) + n
    return out


def make_registry(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
