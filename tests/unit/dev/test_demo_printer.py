"""The demo prints every Slack message, even one that arrives while training has
redirected sys.stdout (a message arrives on the fake Slack's own thread)."""

import contextlib
import io

from webhook_server.dev.demo import SlackPrinter


def buttons(*labels: str) -> list[dict]:
    return [{"type": "actions", "elements": [{"type": "button", "text": {
        "type": "plain_text", "text": label}} for label in labels]}]


def test_a_message_arriving_during_a_stdout_redirect_still_reaches_the_terminal(capsys):
    printer = SlackPrinter()
    swallowed = io.StringIO()
    with contextlib.redirect_stdout(swallowed):
        printer("ephemeral", {"user": "U1", "text": "You approved request 1."})
        printer("post", {"ts": "1.1", "text": "churn v1 → Production: awaiting_approval",
                         "blocks": buttons("Approve", "Reject")})
        printer("update", {"ts": "1.1", "text": "churn v1 → Production: awaiting_approval",
                           "blocks": buttons("Approve", "Reject")})  # unchanged
        printer("post", {"ts": "1.2", "thread_ts": "1.1", "text": "line one\nline two"})
        printer("post", {"ts": "1.3", "text": "churn v2 → Production: awaiting_approval",
                         "blocks": buttons("Rollback", "Dismiss")})
        printer("update", {"ts": "1.3", "text": "churn v2 → Production: queued",
                           "blocks": [{"type": "actions", "elements": []}]})
    out = capsys.readouterr().out
    assert swallowed.getvalue() == ""
    assert out.splitlines() == [
        "    slack  (only <@U1> sees) You approved request 1.",
        "    slack  churn v1 → Production: awaiting_approval   [Approve] [Reject]",
        "    slack    └ line one · line two",
        "    slack  churn v2 → Production: awaiting_approval   [Rollback] [Dismiss]",
        "    slack  ✎ churn v2 → Production: queued"]
