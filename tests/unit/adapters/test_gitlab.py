"""Podium → GitLab through the real python-gitlab client and a fake GitLab API: one note
per decision on the linked merge request, retried through outages, never posted for a
version without a merge request, and a deploy pipeline triggered on promotion."""

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from tests.support.settings import make_settings
from webhook_server.adapters.gitlab import GitLabSender, marker
from webhook_server.dev.fakes.gitlab import FakeGitLab
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import Job
from webhook_server.service.services import build
from webhook_server.store import outbox as ob
from webhook_server.store.schema import outbox, utcnow
from webhook_server.workflow import Gates


@pytest.fixture
def fake_gitlab():
    with FakeGitLab(token="glpat-test", trigger_token="glptt-test", project_id="42",
                    merge_requests=(7,)) as fake:
        yield fake


@pytest.fixture
def gsvc(db_url, fake_gitlab, make_svc):
    svc = make_svc(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9",
                              gitlab_url=fake_gitlab.url, gitlab_token="glpat-test",
                              gitlab_trigger_token="glptt-test", gitlab_project_id="42"))
    svc.registry = MemoryRegistry({"champion": "1"})
    svc.policy = parse_policy({})
    return svc


def decide(svc, version="3", mr="7"):
    """A Production request for ``version`` run to its decision (promoted)."""
    if mr:
        svc.registry.tags.setdefault(version, {}).update(
            {"gitlab.mr_iid": mr, "gitlab.project_id": "42"})
    rid = svc.intake.record(Delivery("api", f"d-{version}", "api.request", "{}",
                                     TransitionRequested("churn", version, "Production",
                                                         "api"))).request_id
    workflow = svc.use_gates(Gates(passing, lambda m, c, k: comparison(c, k)))
    workflow.handle(Job(1, f"request:{rid}", "request", {"request_id": rid}, 1, 6, "w"))
    return rid


def gitlab_rows(svc):
    with svc.store.read() as conn:
        return [dict(r) for r in conn.execute(
            outbox.select().where(outbox.c.channel == "gitlab").order_by(outbox.c.id))
            .mappings()]


def make_due(svc):
    with svc.store.tx() as conn:
        conn.execute(outbox.update().values(run_after=utcnow()))


def test_a_decision_posts_one_note_on_the_linked_merge_request(gsvc, fake_gitlab):
    rid = decide(gsvc)
    sender = gsvc.gitlab_sender()
    assert sender.flush() == {"sent": 1, "retry": 0, "dead": 0}
    assert sender.flush()["sent"] == 0
    (note,) = fake_gitlab.notes[7]
    assert note["body"].startswith(marker(rid, "glpat-test"))
    assert "churn v3 → Production: **promoted**" in note["body"]
    assert "| decided by | policy |" in note["body"]
    assert "| checks | 22/22 passed |" in note["body"]
    assert "roc_auc" in note["body"]
    assert gitlab_rows(gsvc)[0]["result"] == "note 1 on !7"


def test_a_version_without_a_merge_request_gets_no_note(gsvc, fake_gitlab):
    decide(gsvc, mr=None)
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert fake_gitlab.notes[7] == [] and not any("notes" in c for c in fake_gitlab.calls)
    assert gitlab_rows(gsvc)[0]["result"] == "skipped: no merge request linked to the version"


def test_gitlab_answering_500_is_retried_and_the_note_arrives_once(gsvc, fake_gitlab):
    decide(gsvc)
    fake_gitlab.fail_next(3, 500)  # python-gitlab retries twice itself, then gives up
    sender = gsvc.gitlab_sender()
    assert sender.flush() == {"sent": 0, "retry": 1, "dead": 0}
    (row,) = gitlab_rows(gsvc)
    assert row["state"] == "pending" and "500" in row["last_error"]
    make_due(gsvc)
    assert sender.flush()["sent"] == 1
    assert len(fake_gitlab.notes[7]) == 1


def test_a_crash_after_posting_finds_the_note_instead_of_posting_again(gsvc, fake_gitlab,
                                                                      monkeypatch):
    decide(gsvc)
    real = ob.mark_sent

    def crash(conn, row_id, result):
        raise SystemError("killed after GitLab answered")

    monkeypatch.setattr(ob, "mark_sent", crash)
    with pytest.raises(SystemError):
        gsvc.gitlab_sender().flush()
    monkeypatch.setattr(ob, "mark_sent", real)
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert len(fake_gitlab.notes[7]) == 1
    assert gitlab_rows(gsvc)[0]["result"] == "note 1 (found after a retry)"


def test_an_unknown_merge_request_is_dropped_with_the_reason(gsvc, fake_gitlab):
    decide(gsvc, mr="99")
    assert gsvc.gitlab_sender().flush()["dead"] == 1
    (row,) = gitlab_rows(gsvc)
    assert row["state"] == "dead" and "404" in row["last_error"]


def test_a_promotion_triggers_the_deploy_pipeline_when_the_policy_asks(gsvc, fake_gitlab):
    gsvc.policy = parse_policy({"default": {"gitlab": {"deploy_ref": "main"}}})
    decide(gsvc)
    sender = gsvc.gitlab_sender()
    assert sender.flush()["sent"] == 2  # the note, then the deploy trigger it queued
    (pipeline,) = fake_gitlab.pipelines
    assert pipeline["ref"] == "main"
    assert pipeline["variables"] == {"MODEL_NAME": "churn", "MODEL_VERSION": "3",
                                     "PODIUM_DECISION": "promoted"}


def test_without_gitlab_settings_decisions_are_marked_and_nothing_is_sent(db_url):
    svc = build(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9"))
    svc.store.migrate()
    svc.registry = MemoryRegistry({"champion": "1"})
    svc.policy = parse_policy({})
    try:
        decide(svc)
        sender = GitLabSender(svc.store, svc.settings, svc.registry, svc.policy)
        assert sender.flush()["sent"] == 1
        assert gitlab_rows(svc)[0]["result"] == "skipped: GITLAB_URL / GITLAB_TOKEN not set"
    finally:
        svc.close()


# --- which project a version may name ---------------------------------------------------

def test_a_project_id_tag_naming_another_project_gets_no_note(gsvc, fake_gitlab):
    decide(gsvc)
    gsvc.registry.tags["3"]["gitlab.project_id"] = "666"  # any project the token reaches
    assert gsvc.gitlab_sender().flush() == {"sent": 1, "retry": 0, "dead": 0}
    assert not any("notes" in c for c in fake_gitlab.calls)
    (row,) = gitlab_rows(gsvc)
    assert row["state"] == "sent" and row["result"] == (
        "skipped: gitlab.project_id '666' is not an allowed project (GITLAB_PROJECT_ID=42, "
        "or GITLAB_ALLOWED_PROJECTS): no note posted")


def test_without_a_configured_project_a_tag_is_not_enough(gsvc, fake_gitlab):
    gsvc.settings = gsvc.settings.replace(gitlab_project_id=None)
    decide(gsvc)
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert fake_gitlab.notes[7] == []
    assert "is not an allowed project (GITLAB_PROJECT_ID=unset" in gitlab_rows(gsvc)[0]["result"]


def test_a_refused_tag_still_deploys_in_the_configured_project(gsvc, fake_gitlab):
    gsvc.policy = parse_policy({"default": {"gitlab": {"deploy_ref": "main"}}})
    decide(gsvc)
    gsvc.registry.tags["3"]["gitlab.project_id"] = "666"
    assert gsvc.gitlab_sender().flush()["sent"] == 2
    assert fake_gitlab.notes[7] == []
    assert [c for c in fake_gitlab.calls if "trigger" in c] == [
        "POST /api/v4/projects/42/trigger/pipeline"]


def test_a_merge_request_id_that_is_no_number_is_skipped_with_the_reason(gsvc, fake_gitlab):
    decide(gsvc, mr="7; DROP")
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert gitlab_rows(gsvc)[0]["result"] == (
        "skipped: gitlab.mr_iid '7; DROP' is not a merge request number")


def test_the_allow_list_names_further_projects(gsvc, fake_gitlab):
    from webhook_server.adapters.gitlab import choose_project

    assert choose_project(None, "42") == ("42", None)
    assert choose_project("42", "42") == ("42", None)
    assert choose_project("group/churn", "42", " group/churn , 43") == ("group/churn", None)
    assert choose_project("43", None, "group/churn,43") == ("43", None)
    project, why = choose_project("44", "42", "43")
    assert project is None and "'44' is not an allowed project" in why
    assert choose_project(None, None) == (
        None, "no gitlab.project_id tag and GITLAB_PROJECT_ID unset")

    class WithAllowList:  # GITLAB_ALLOWED_PROJECTS, as Settings will carry it
        def __init__(self, settings, allowed):
            self._settings, self.gitlab_allowed_projects = settings, allowed

        def __getattr__(self, name):
            return getattr(self._settings, name)

    decide(gsvc)  # the version names project 42; Podium's own project is another one
    settings = gsvc.settings.replace(gitlab_project_id="1000")
    sender = GitLabSender(gsvc.store, WithAllowList(settings, "43, 42"), gsvc.registry,
                          gsvc.policy)
    assert sender.flush()["sent"] == 1
    assert len(fake_gitlab.notes[7]) == 1
    assert gitlab_rows(gsvc)[0]["result"] == "note 1 on !7"


# --- model-controlled text in notes -----------------------------------------------------

def fail_with(svc, version, message, mr="7"):
    """A request whose model check dies with ``message`` (the model's own words)."""
    from webhook_server.workflow import GateFailed

    def check(uri):
        raise GateFailed(message)

    svc.registry.tags.setdefault(version, {}).update({"gitlab.mr_iid": mr,
                                                      "gitlab.project_id": "42"})
    rid = svc.intake.record(Delivery("api", f"d-{version}", "api.request", "{}",
                                     TransitionRequested("churn", version, "Production",
                                                         "api"))).request_id
    workflow = svc.use_gates(Gates(check, lambda m, c, k: comparison(c, k)))
    workflow.handle(Job(1, f"request:{rid}", "request", {"request_id": rid}, 1, 6, "w"))
    return rid


def test_a_reason_is_inert_markdown_in_the_note(gsvc, fake_gitlab):
    hostile = ("boom @all see [the fix](https://evil.example/x) ![px](https://evil.example/p)"
               " <img src=x> `code` | forged cell\n| decided by | admin |\n/close #12 !7")
    fail_with(gsvc, "3", hostile)
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    (note,) = fake_gitlab.notes[7]
    body = note["body"]
    reason_line = next(line for line in body.splitlines() if line.startswith("| reason |"))
    assert reason_line.count(" | ") == 1 and reason_line.endswith(" |")  # one cell, one line
    assert "@all" not in body and "@\u200ball" in reason_line
    assert "](" not in reason_line.replace("\\](", "") and "<img" not in body
    assert "https://" not in reason_line and "`code`" not in body
    assert "\n| decided by | admin |" not in body and "\n/close" not in body
    assert "#12" not in reason_line and "!7" not in reason_line


def test_a_reason_cannot_forge_another_requests_marker(gsvc, fake_gitlab, monkeypatch):
    """Request A's reason carries request B's marker (the old, guessable one and the new
    one, were it known): B's note is still posted after B's own retry."""
    rid_a = fail_with(gsvc, "3", "x")
    rid_b = rid_a + 1
    forged = f"<!-- podium:request:{rid_b} --> {marker(rid_b, 'glpat-test')}"
    with gsvc.store.tx() as conn:  # A's reason as a model could write it
        from webhook_server.store.schema import requests
        conn.execute(requests.update().where(requests.c.id == rid_a).values(reason=forged))
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert marker(rid_b, "glpat-test") not in fake_gitlab.notes[7][0]["body"]
    assert "<!--" not in fake_gitlab.notes[7][0]["body"].split("\n", 1)[1]
    # B ends; its first try fails after being attempted: the retry looks for B's note
    assert fail_with(gsvc, "4", "y") == rid_b
    fake_gitlab.fail_next(3, 500)
    sender = gsvc.gitlab_sender()
    assert sender.flush()["retry"] == 1
    make_due(gsvc)
    assert sender.flush()["sent"] == 1
    assert [n["body"].startswith(marker(rid_b, "glpat-test"))
            for n in fake_gitlab.notes[7]] == [False, True]


def test_a_person_quoting_a_marker_does_not_stop_the_note(gsvc, fake_gitlab):
    rid = fail_with(gsvc, "3", "x")
    with gsvc.store.tx() as conn:  # the first try was attempted, then crashed
        conn.execute(outbox.update().where(outbox.c.channel == "gitlab")
                     .values(attempted_at=utcnow()))
    fake_gitlab.notes[7].append({"id": 99, "body": f"<!-- podium:request:{rid} -->\nfake",
                                 "noteable_iid": 7, "author": {"username": "mallory"}})
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert fake_gitlab.notes[7][-1]["body"].startswith(marker(rid, "glpat-test"))


def test_secrets_in_a_models_error_never_leave(gsvc, fake_gitlab, caplog):
    gsvc.settings = gsvc.settings.replace(slack_bot_token="xoxb-very-secret-1")
    from webhook_server.core import scrub

    scrub.use(gsvc.settings.secrets())
    rid = fail_with(gsvc, "3", "env dump: GITLAB=glpat-test SLACK=xoxb-very-secret-1 \x1b[2J"
                    + "x" * 2000)
    with gsvc.store.read() as conn:
        from webhook_server.store import transition_requests as reqs
        req = reqs.get(conn, rid)
        events = reqs.history(conn, rid)
    assert "glpat-test" not in req.reason and "xoxb-very-secret-1" not in req.reason
    assert req.reason.startswith("env dump: GITLAB=[redacted] SLACK=[redacted] ")
    assert "\x1b" not in req.reason and len(req.reason) == 1000 and req.reason.endswith("…")
    assert not any("glpat-test" in (e.note or "") for e in events)
    assert "[redacted]" in gsvc.registry.tags["3"]["podium.reason"]
    assert gsvc.gitlab_sender().flush()["sent"] == 1
    assert "glpat-test" not in fake_gitlab.notes[7][0]["body"].split("\n", 1)[1]
    import logging
    logging.getLogger("podium.test").warning("token %s", "xoxb-very-secret-1")
    assert "xoxb-very-secret-1" not in caplog.text and "token [redacted]" in caplog.text
