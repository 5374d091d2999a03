"""What the drill's people do through the balancer: both approvers click Approve in Slack
at the same moment (on the message's own button, whose value carries the evidence digest;
a signed interaction, again until Slack got a 200, as a person clicks again), and an
operator (the person behind the API token) asks for a rollback through the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from bench.scaleout.cluster import APPROVERS, SIGNING, TOKEN, Cluster
from webhook_server.dev.fakes.slack import click_payload, sign


@dataclass
class Click:
    request_id: int
    user: str
    status: int
    delivery_id: str  # what Podium stores it under: team:user:action_ts


class People:
    def __init__(self, cluster: Cluster, give_up: float) -> None:
        self.cluster, self.give_up = cluster, give_up
        self.clicks: list[Click] = []
        self._lock = threading.Lock()

    def approve_together(self, request_id: int) -> None:
        """Both approvers click Approve at the same moment (each until Slack got a 200)."""
        barrier = threading.Barrier(len(APPROVERS))
        threads = [threading.Thread(target=self._click, args=(request_id, uid, barrier))
                   for uid in APPROVERS.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _button(self, request_id: int) -> str | None:
        """The Approve button's value on the request's newest message (it carries the
        evidence digest the message shows), once Slack has the message."""
        while time.monotonic() < self.give_up:
            value = self.cluster.slack.button_value(request_id)
            if value is not None:
                return value
            time.sleep(0.2)
        return None

    def _click(self, request_id: int, user: str, barrier: threading.Barrier) -> None:
        value = self._button(request_id)
        barrier.wait()
        while time.monotonic() < self.give_up:
            payload = click_payload(request_id, user, team=self.cluster.slack.team_id,
                                    channel=self.cluster.slack.channel_id,
                                    value=self.cluster.slack.button_value(request_id) or value)
            body = urlencode({"payload": json.dumps(payload)})
            action = payload["actions"][0]["action_ts"]
            try:
                resp = requests.post(f"{self.cluster.balancer.url}/slack/interactions",
                                     data=body, headers=sign(SIGNING, body), timeout=15)
                status = resp.status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.clicks.append(Click(request_id, user, status,
                                         f"{self.cluster.slack.team_id}:{user}:{action}"))
            if status == 200:
                return
            time.sleep(1.0)  # the person clicks again

    def rollback(self, model: str,
                 recorded: Callable[[], tuple[int, str] | None]) -> tuple[int, str]:
        """(request id, target version) of a rollback asked through the API; ``recorded``
        finds it in the store when the answer was lost on its way back."""
        url = f"{self.cluster.balancer.url}/api/v1/models/{model}/rollback"
        while time.monotonic() < self.give_up:
            try:
                resp = requests.post(url, json={}, timeout=15,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
            except requests.RequestException:
                resp = None
            if resp is not None and resp.status_code == 202:
                body = resp.json()
                return body["request"], str(body["to"])
            if resp is not None and 400 <= resp.status_code < 500:
                raise RuntimeError(f"rollback refused: {resp.status_code} {resp.text[:200]}")
            found = recorded()  # the answer was lost: was the rollback recorded?
            if found:
                return found
            time.sleep(1.0)
        raise TimeoutError(f"rollback of {model} never accepted")
