"""A Podium wired to a fake Slack and an in-memory registry (``tests.support.slack_rig``)."""

from __future__ import annotations

import pytest

from tests.support.registry import MemoryRegistry
from tests.support.settings import make_settings
from tests.support.slack_rig import ALICE, BOB, SIGNING, TOKEN, Rig
from webhook_server.dev.fakes.slack import FakeSlack


@pytest.fixture
def fake_slack():
    with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def rig(db_url, fake_slack, make_svc):
    settings = make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9",
                             slack_bot_token=TOKEN, slack_channel=fake_slack.channel_id,
                             slack_signing_secret=SIGNING, slack_api_url=fake_slack.api_url,
                             slack_team_id=fake_slack.team_id)
    registry = MemoryRegistry({"champion": "1"})
    r = Rig(make_svc(settings, registry=registry), fake_slack, registry)
    r.set_policy({"approvers": [ALICE, BOB]})
    return r
