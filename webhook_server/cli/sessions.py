"""``podium sessions list`` and ``podium sessions revoke --person P``: the web page's token
logins, kept in the store, so ending one here ends it on every node at once."""

from __future__ import annotations

import click

from webhook_server.cli.context import current, emit
from webhook_server.core.identity import cli_actor, person
from webhook_server.core.text_table import render


def _person_of(svc):
    """name -> the person the policy maps ``ui:<name>`` to (the identity itself when the
    policy is unreadable or lists nobody)."""
    try:
        policy = svc.policy
    except Exception:  # no policy here: identities are their own people
        policy = None
    if policy is None:
        return lambda name: f"ui:{name}"
    return lambda name: person(policy, f"ui:{name}")


@click.group("sessions")
def sessions_group() -> None:
    """Web page logins (token logins on /ui/): list them, end them."""


@sessions_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_sessions(as_json: bool) -> None:
    """Live web page sessions: who, since when, until when (never an id)."""
    from webhook_server.store import sessions

    svc = current().services()
    person_of = _person_of(svc)
    with svc.store.read() as conn:
        rows = [{"person": person_of(s.name), "actor": f"ui:{s.name}",
                 "created_at": s.created_at.isoformat(), "expires_at": s.expires_at.isoformat()}
                for s in sessions.live(conn)]
    emit(rows, as_json, lambda: render(
        ["person", "actor", "since", "until"],
        [[r["person"], r["actor"], r["created_at"][:19], r["expires_at"][:19]] for r in rows]))


@sessions_group.command("revoke")
@click.option("--person", "who", required=True,
              help="The person (policy people:) or identity (ui:<name>) whose sessions end.")
@click.option("--json", "as_json", is_flag=True)
def revoke(who: str, as_json: bool) -> None:
    """End every web page session of a person, on every node (the next page they open
    asks them to log in again)."""
    from webhook_server.store import sessions
    from webhook_server.store.audit import record

    svc = current().services()
    person_of = _person_of(svc)
    with svc.store.tx() as conn:
        names = {s.name for s in sessions.live(conn) if who in (person_of(s.name),
                                                                   f"ui:{s.name}")}
        ended = sessions.revoke(conn, names)
        if ended:
            record(conn, actor=_cli_actor(), action="sessions.revoke", subject=who,
                   detail={"sessions": ended})
    data = {"person": who, "revoked": ended, "actors": sorted(f"ui:{n}" for n in names)}
    emit(data, as_json, lambda: (f"revoked {ended} session(s) of {who}"
                                 + (f" ({', '.join(data['actors'])})" if names else "")))


def _cli_actor() -> str:
    return cli_actor()


COMMANDS = (sessions_group,)
