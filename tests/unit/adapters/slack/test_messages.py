"""The words of the standalone messages: payloads carry data, ``messages.text`` says it, the
same words the emitters used to write whole into the outbox."""

import pytest

from webhook_server.adapters.notify import blocks, messages

A, B = "a" * 64, "b" * 64


@pytest.mark.parametrize(("payload", "said"), [
    ({"what": "version", "model": "churn", "version": "4", "run_id": "r1"},
     ":new: churn v4 registered (run r1)"),
    ({"what": "version", "model": "churn", "version": "4", "run_id": None},
     ":new: churn v4 registered"),
    ({"what": "files_swapped", "model": "churn", "version": "4", "alias": "champion",
      "judged": A, "now": B},
     ":rotating_light: the files of churn v4 changed after they were checked (judged sha256 "
     "aaaaaaaaaaaa, now bbbbbbbbbbbb): the champion alias was not moved; request a new "
     "check of the new files"),
    ({"what": "external", "model": "churn", "alias": "champion", "seen": "7"},
     ":warning: churn: alias `champion` was moved to v7 outside Podium; recorded in the "
     "ledger as external"),
    ({"what": "reverted", "model": "churn", "alias": "champion", "moved_to": "7",
      "home": "3"},
     ":rotating_light: churn: alias `champion` was moved to v7 outside Podium (MLflow does "
     "not say by whom); put back to v3 (aliases.protect: revert). Promote a version "
     "through Podium: `podium request`."),
    ({"what": "revert_refused", "model": "churn", "alias": "champion", "moved_to": "7",
      "home": "3", "promoted": A, "files": B},
     ":rotating_light: churn: alias `champion` was moved outside Podium to v7, and v3's "
     "files changed since its promotion (sha256 aaaaaaaaaaaa, now bbbbbbbbbbbb): not "
     "reverted; a person must decide"),
    ({"what": "files_changed", "model": "churn", "version": "3", "promoted": A, "files": B},
     ":rotating_light: churn: the files of the champion v3 changed after its promotion "
     "(sha256 aaaaaaaaaaaa promoted, bbbbbbbbbbbb now): serving may load code nothing "
     "judged; roll back (`podium rollback churn`) or promote a checked version"),
    ({"what": "drift", "model": "churn", "model_version": "churn/3",
      "drifted": ["Contract", "tenure"], "threshold": 0.2, "retrain": True},
     ":warning: churn (churn/3): drift in Contract, tenure (PSI >= 0.2); retraining queued"),
    ({"what": "drift", "model": "churn", "model_version": "churn/3", "drifted": ["tenure"],
      "threshold": 0.25, "retrain": False},
     ":warning: churn (churn/3): drift in tenure (PSI >= 0.25)"),
    ({"what": "monitoring", "model": "churn", "period": "2026-W23",
      "decay": {"version": "3", "period": "2026-W22", "reason": "AUC fell"},
      "drifted": ["Contract"], "retrain": "queued",
      "drift": {"model_version": "churn/3", "threshold": 0.2, "psi": {"Contract": 0.4123}}},
     ":chart_with_downwards_trend: churn, monitoring 2026-W23\n"
     "DECAY: churn v3 in 2026-W22: AUC fell\n"
     "drift (churn/3): Contract PSI 0.41 (threshold 0.2)\n"
     "retrain queued (policy monitoring.retrain_on_decay)"),
    ({"what": "monitoring", "model": "churn", "period": "2026-06", "decay": None,
      "drifted": [], "drift": None, "retrain": None},
     ":chart_with_downwards_trend: churn, monitoring 2026-06"),
    ({"what": "job_dead", "job": "boom:1", "kind": "boom", "attempts": 3,
      "error": "RuntimeError: no", "hook_error": None},
     ":skull: job boom:1 (boom) is dead after 3 attempt(s): RuntimeError: no "
     "(`podium jobs --state dead`, `podium replay`)"),
    ({"what": "job_dead", "job": "request:7", "kind": "request", "attempts": 1,
      "error": "x", "hook_error": "KeyError: 'a'"},
     ":skull: job request:7 (request) is dead after 1 attempt(s): x; its dead hook failed: "
     "KeyError: 'a' (`podium jobs --state dead`, `podium replay`)"),
    ({"text": "a row written before payloads carried data"},
     "a row written before payloads carried data"),
])
def test_each_message_says_what_its_data_says(payload, said):
    assert messages.text(payload) == said
    text, body = blocks.message(payload)
    assert text == blocks.md(said) and body[0]["text"]["text"] == text


@pytest.mark.parametrize(("say", "figures", "said"), [
    ("no_request", {}, "Request 7 does not exist; nothing was decided."),
    ("needs_reason", {}, "Nothing changed: a rejection needs a reason; use `podium reject 7 "
                         "--reason ...`."),
    ("stale", {}, "Nothing changed: request 7's evidence changed since this message was "
                  "posted; look again at the updated message."),
    ("no_form", {}, "Nothing changed: the form asking why could not be opened in time. Click "
                    "Reject again, or reject on Podium's page or with `podium reject 7 "
                    "--reason ...`."),
    ("no_digest", {}, "Nothing changed: this message of request 7 carries no evidence digest "
                      "(it was posted before digests); decide on the page or with `podium "
                      "approve 7 --evidence ...`."),
    ("refused", {"why": "U9 may not approve {churn}"},
     "Nothing changed: U9 may not approve {churn}."),
    ("give_reason", {"why": "a rejection needs a reason"},
     "Nothing changed: a rejection needs a reason; use Reject and give one."),
    ("approved_short", {"approvals": 1, "quorum": 2},
     "You approved request 7 (1 of 2); waiting for more approvals."),
    ("approved", {"model": "churn", "version": "3"},
     "You approved request 7: promoting churn v3."),
    ("rejected", {}, "You rejected request 7."),
])
def test_each_answer_to_a_click_says_what_its_data_says(say, figures, said):
    assert messages.reply({"say": say, "request_id": 7, "user": "U1", **figures}) == said
    assert messages.reply({"text": said, "user": "U1"}) == said  # a row of an older Podium


def test_the_steps_of_a_request_waiting_for_live_evidence_say_so():
    waiting = blocks.step({"to": "shadowing", "actor": "policy",
                           "reason": "passed the holdout against the champion v1; waiting "
                                     "for live evidence on alias 'challenger'"})
    assert waiting.startswith(":eyes: shadowing: passed the holdout against the champion v1")
    ended = blocks.step({"to": "inconclusive", "actor": "policy",
                         "reason": "no live decision within 30 days (max_days): 12 pairs"})
    assert ended == (":grey_question: inconclusive by policy: no live decision within 30 "
                     "days (max_days): 12 pairs")
