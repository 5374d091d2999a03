"""Find requests the registry holds but the store does not (missed webhooks)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from webhook_server.adapters.registry import Registry
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.intake import Intake
from webhook_server.intake.sources import Delivery
from webhook_server.store import Store
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import utcnow

log = logging.getLogger(__name__)
SOURCE = "reconcile"
STALE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class ReconcileReport:
    scanned: int
    created: list[int]


def reconcile(store: Store, intake: Intake, registry: Registry,
              challenger_alias: str) -> ReconcileReport:
    """Create, exactly once, a request for every tagged/aliased version with none stored.

    The delivery id names (model, version, origin, target), so concurrent or repeated scans
    collide on the inbox's unique key instead of creating a second request; a webhook for
    the same tag landing meanwhile finds this request open (or this scan finds its), and
    intake links the later delivery to it instead of creating a second one. A version whose
    request Podium put on the shadow alias (the challenger alias, with live evidence), or
    whose request ended since the scan began, is left alone: the alias is Podium's own, or
    was when the registry was read (a new request there would write its tags over the
    decision's).
    """
    # a request that ended while the registry was read leaves a stale sight of its alias
    # (or tag): stamped with the store's clocks, which other nodes set (hence the margin)
    since = utcnow() - STALE_MARGIN
    found = registry.requested_versions(challenger_alias)
    created: list[int] = []
    for item in found:
        with store.read() as conn:
            if reqs.exists_for(conn, item.model, item.version, item.origin, item.raw_target):
                continue
            if reqs.explains_registry(conn, item.model, item.version, since):
                log.info("reconciler: %s v%s: its %s is Podium's own (a request of it is "
                         "shadowing, promoting or just ended); the next scan looks again",
                         item.model, item.version, item.origin)
                continue
        delivery_id = f"{item.model}:{item.version}:{item.origin}:{item.raw_target.lower()}"
        event = TransitionRequested(item.model, item.version, item.raw_target,
                                    origin=item.origin, requested_by="reconciler")
        body = json.dumps({"model": item.model, "version": item.version,
                           "target": item.raw_target, "origin": item.origin})
        result = intake.record(Delivery(SOURCE, delivery_id, "reconcile.request", body, event))
        if result.already_open:  # its webhook arrived between our check and now
            log.info("reconciler: %s v%s: %s", item.model, item.version, result.detail)
        elif not result.duplicate and result.request_id is not None:
            log.warning("reconciler: %s v%s had a %s request with no stored request; "
                        "created request %s", item.model, item.version, item.origin,
                        result.request_id)
            created.append(result.request_id)
    return ReconcileReport(scanned=len(found), created=created)
