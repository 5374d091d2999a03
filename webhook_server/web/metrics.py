"""Prometheus metrics read from the store at scrape time.

Deliveries, duplicates, rejected signatures and jobs live in the database, so the figures
are the same whichever worker process answers the scrape, and survive restarts. The names
are a contract: ``deploy/grafana/podium.json`` and ``deploy/prometheus/alerts.yaml`` use
them, and a test checks every name they use against a live ``/metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from webhook_server.intake.sources import REJECTION_REASONS
from webhook_server.jobs.queue import counts, oldest_runnable_age_s
from webhook_server.store import Store, outbox, stage_timing, views
from webhook_server.store.counters import GATE_FAILURES, read

log = logging.getLogger(__name__)
ExpiryHours = Callable[[str], float]
MaxDays = Callable[[str], float | None]


class StoreCollector:
    def __init__(self, store: Store, expiry_hours: ExpiryHours | None = None,
                 live_max_days: MaxDays | None = None) -> None:
        """``expiry_hours(model)``: the policy's approval expiry (``podium_requests_overdue``
        is left out without it, or when the policy cannot be read); ``live_max_days(model)``:
        the policy's ``comparison.live.max_days`` (None: not set), for
        ``podium_shadowing_max_seconds``."""
        self.store = store
        self.expiry_hours = expiry_hours
        self.live_max_days = live_max_days

    def collect(self):
        with self.store.read() as conn:
            by_outcome = views.deliveries_by_outcome(conn)
            rejected = read(conn, "rejected_signatures")
            job_counts = counts(conn)
            age = oldest_runnable_age_s(conn)
            req_counts = views.requests_by_state(conn)
            notes = outbox.counts(conn)
            stage_times = stage_timing.read(conn)
            health = _health(conn)
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
        yield from self._health_families(health)

    def _health_families(self, h: dict):
        """What the alerts watch: workers alive, the last finished job of each kind, failing
        notifications, sandbox (gate) failures, decayed champions, overdue approvals."""
        oldest = GaugeMetricFamily("podium_request_oldest_open_seconds", "Seconds since the "
                                   "oldest request in each open state last changed",
                                   labels=["state"])
        for state, age in h["oldest"].items():
            oldest.add_metric([state], age)
        done = GaugeMetricFamily("podium_job_last_done_timestamp_seconds",
                                 "Unix time a job of each kind last finished", labels=["kind"])
        for kind, at in h["last_done"].items():
            done.add_metric([kind], at)
        failing = GaugeMetricFamily("podium_notifications_failing", "Pending notifications "
                                    "whose last attempt failed", labels=["channel"])
        pending_age = GaugeMetricFamily("podium_notification_oldest_pending_seconds",
                                        "Age of the oldest pending notification",
                                        labels=["channel"])
        for channel in ("slack", "gitlab"):
            failing.add_metric([channel], h["failing"].get(channel, 0))
            pending_age.add_metric([channel], h["pending_age"].get(channel, 0.0))
        gates = CounterMetricFamily("podium_gate_failures", "Checks and comparisons that "
                                    "gave no verdict (sandbox or model failures): failed ends "
                                    "the request, transient retries the job",
                                    labels=["stage", "outcome"])
        for labels, n in h["gates"].items():
            stage, _, outcome = labels.partition("|")
            gates.add_metric([stage, outcome], n)
        decayed = GaugeMetricFamily("podium_model_decayed", "1 when the latest monitoring "
                                    "report found the champion decayed", labels=["model"])
        for model, flag in h["decayed"].items():
            decayed.add_metric([model], int(flag))
        yield from (oldest, done, failing, pending_age, gates, decayed,
                    GaugeMetricFamily("podium_workers", "Worker processes with a live "
                                      "heartbeat", value=h["workers"]))
        yield from self._shadowing_families(h["shadowing"])
        overdue = self._overdue(h["awaiting"])
        if overdue is not None:
            yield GaugeMetricFamily("podium_requests_overdue", "Requests awaiting approval "
                                    "past the policy's expiry (the expiry scan ends them)",
                                    value=overdue)

    def _shadowing_families(self, rows: list[tuple[str, float, int]]):
        """Requests waiting for live evidence: how long, how many labelled pairs, and how
        long the policy lets them wait (``max_days``; left out when it cannot be read)."""
        waited = GaugeMetricFamily("podium_shadowing_seconds", "Seconds the model's request "
                                   "has waited in shadowing for live evidence",
                                   labels=["model"])
        pairs = GaugeMetricFamily("podium_shadowing_pairs", "Labelled pairs (outcomes the "
                                  "waiting version and the champion both predicted) at the "
                                  "request's last look", labels=["model"])
        limit = GaugeMetricFamily("podium_shadowing_max_seconds", "The policy's "
                                  "comparison.live.max_days in seconds: a request still "
                                  "undecided then ends inconclusive", labels=["model"])
        for model, seconds, n in rows:
            waited.add_metric([model], seconds)
            pairs.add_metric([model], n)
            try:
                days = self.live_max_days(model) if self.live_max_days else None
            except Exception as exc:  # the policy cannot be read: leave the figure out
                log.warning("podium_shadowing_max_seconds left out: %s", exc)
                days = None
            if days is not None:
                limit.add_metric([model], days * 86400)
        yield from (waited, pairs, limit)

    def _overdue(self, awaiting: list[tuple[str, float]]) -> int | None:
        if self.expiry_hours is None:
            return None
        try:
            return sum(1 for model, age in awaiting if age > self.expiry_hours(model) * 3600)
        except Exception as exc:  # the policy cannot be read: leave the figure out
            log.warning("podium_requests_overdue left out: %s", exc)
            return None


def _health(conn) -> dict:
    failing, pending_age = views.outbox_health(conn)
    return {"oldest": views.oldest_open_age_s(conn), "last_done": views.last_done_by_kind(conn),
            "failing": failing, "pending_age": pending_age, "workers": views.live_workers(conn),
            "gates": read(conn, GATE_FAILURES), "decayed": views.decayed_models(conn),
            "awaiting": views.awaiting_since(conn), "shadowing": views.shadowing(conn)}


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


def make_registry(store: Store, expiry_hours: ExpiryHours | None = None,
                  live_max_days: MaxDays | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, expiry_hours, live_max_days))
    return registry
