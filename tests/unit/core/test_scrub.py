"""Model and user text loses Podium's secrets, control characters and excess length before
it is kept or shown; log lines lose the secrets too."""

import logging

import pytest

from webhook_server.adapters.notify import blocks
from webhook_server.core import scrub
from webhook_server.core.settings import Settings


@pytest.fixture
def secrets():
    s = Settings(slack_bot_token="xoxb-1234-secret", gitlab_token="glpat-abcdefgh",
                 database_url="postgresql://podium:p%40ss-w0rd!@db/podium",
                 named_api_tokens="ci=ci-token-0123", slack_signing_secret="short")
    scrub.use(s.secrets())
    yield s
    scrub.use(())


def test_settings_name_every_secret_value_including_url_passwords(secrets):
    assert {"xoxb-1234-secret", "glpat-abcdefgh", "ci-token-0123", "short",
            "p%40ss-w0rd!", "p@ss-w0rd!"} <= set(secrets.secrets())
    assert Settings(database_url="sqlite:///podium.db").secrets() == []


def test_clean_redacts_strips_and_caps(secrets):
    text = "boom xoxb-1234-\x00secret db=p@ss-w0rd! short \u202egnp.exe\x1b[0m" + "y" * 2000
    out = scrub.clean(text, 100)
    assert out.startswith("boom [redacted] db=[redacted] short gnp.exe[0m")  # short: kept
    assert len(out) == 100 and out.endswith("…")
    assert scrub.clean("line one\n\tline two") == "line one\n\tline two"
    assert scrub.maybe(None) is None and scrub.clean(None) == ""


def test_a_secret_cut_by_the_cap_is_redacted_first(secrets):
    assert "glpat" not in scrub.clean("x" * 95 + "glpat-abcdefgh", 100)


def test_slack_blocks_never_show_a_secret(secrets):
    assert "xoxb" not in blocks.step({"to": "failed", "actor": "worker",
                                      "reason": "token xoxb-1234-secret"})
    assert "[redacted]" in blocks.md("ci-token-0123")


def test_log_records_are_scrubbed_whatever_the_logger(secrets, caplog):
    log = logging.getLogger("some.library")
    log.warning("connecting with %s", "glpat-abcdefgh")
    try:
        raise RuntimeError("auth failed for ci-token-0123")
    except RuntimeError:
        log.exception("call failed")
    assert "glpat-abcdefgh" not in caplog.text and "ci-token-0123" not in caplog.text
    assert "connecting with [redacted]" in caplog.text
    assert "RuntimeError: auth failed for [redacted]" in caplog.text


def test_without_secrets_nothing_changes():
    scrub.use(())
    assert scrub.clean("xoxb-1234-secret") == "xoxb-1234-secret"
