"""The Slack app manifest asks for the bot scopes of the Web API methods Podium calls and no
others; `podium slack manifest --url` prints it for the operator's address."""

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from webhook_server.adapters.notify import manifest as m
from webhook_server.cli import main

ROOT = Path(__file__).parents[3]
# where Podium calls Slack's Web API (WebClient attributes named after the methods)
CALLERS = [*sorted((ROOT / "webhook_server" / "adapters" / "notify").glob("*.py")),
           ROOT / "webhook_server" / "service" / "approvals.py"]
CALL = re.compile(r"\.(?:client|quick)\.([a-z]+(?:_[a-zA-Z]+)+)\b")


def called_methods() -> set[str]:
    return {name.replace("_", ".") for path in CALLERS
            for name in CALL.findall(path.read_text())}


def test_the_manifest_lists_every_web_api_method_podium_calls_and_only_those():
    called = called_methods()
    assert "chat.postMessage" in called and "views.open" in called  # the scan sees calls
    assert called == set(m.METHOD_SCOPES)


def test_the_bot_scopes_are_exactly_those_the_called_methods_need():
    scopes = m.manifest(m.EXAMPLE_URL)["oauth_config"]["scopes"]["bot"]
    assert scopes == ["channels:history", "chat:write", "groups:history", "usergroups:read"]
    assert set(scopes) == {s for method in called_methods() for s in m.METHOD_SCOPES[method]}


def test_the_shipped_manifest_is_the_commands_output_for_the_example_address():
    shipped = (ROOT / "deploy" / "slack" / "manifest.yaml").read_text()
    result = CliRunner().invoke(main, ["slack", "manifest", "--url", m.EXAMPLE_URL])
    assert result.exit_code == 0 and result.output == shipped
    doc = yaml.safe_load(shipped)
    assert doc["settings"]["interactivity"] == {
        "is_enabled": True, "request_url": "https://podium.example.com/slack/interactions"}


@pytest.mark.parametrize("url,request_url", [
    ("https://podium.acme.io", "https://podium.acme.io/slack/interactions"),
    ("https://acme.io/podium/", "https://acme.io/podium/slack/interactions"),
    ("https://acme.io:8443/slack/interactions", "https://acme.io:8443/slack/interactions"),
])
def test_the_interactivity_url_follows_the_operators_address(url, request_url):
    result = CliRunner().invoke(main, ["slack", "manifest", "--url", url])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["settings"]["interactivity"]["request_url"] == \
        request_url


@pytest.mark.parametrize("url,message", [
    ("http://podium.acme.io", "--url must be Podium's public https:// address (Slack posts "
                              "clicks only to https), got 'http://podium.acme.io'"),
    ("podium.acme.io", "--url must be Podium's public https:// address"),
    ("https://", "--url must be Podium's public https:// address"),
    ("https://acme.io/?x=1", "--url must have no query or fragment, got 'https://acme.io/?x=1'"),
])
def test_a_url_slack_cannot_post_to_is_refused_with_the_reason(url, message):
    result = CliRunner().invoke(main, ["slack", "manifest", "--url", url])
    assert result.exit_code == 2 and message in result.output
