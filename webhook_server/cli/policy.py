"""``podium policy check FILE``, ``podium policy example``."""

from __future__ import annotations

import json
import sys

import click

from webhook_server.cli.context import current


@click.group()
def policy() -> None:
    """The policy file (PODIUM_POLICY)."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def policy_check(file: str, as_json: bool) -> None:
    """Validate FILE: every problem with its line; exit 1 when there is any."""
    from podium_policy.check import load_policy
    from podium_policy.schema import PolicyError

    try:
        loaded = load_policy(file, warn=False)
    except PolicyError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "file": file,
                                   "problems": [p.as_json() for p in exc.problems],
                                   "warnings": list(exc.warnings)}, indent=2))
        else:
            for line in exc.warnings:
                click.echo(f"warning: {line}", err=True)
            for problem in exc.problems:
                click.echo(str(problem))
            click.echo(f"{len(exc.problems)} problem(s) in {file}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"ok": True, "file": file, "models": len(loaded.models),
                               "people": len(loaded.people),
                               "warnings": list(loaded.warnings)}, indent=2))
        return
    for line in loaded.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"ok: {loaded.summary()}")


@policy.command("example")
def policy_example() -> None:
    """Print the documented example policy (every key, with its default): the start of a
    podium.yaml where only the installed package is at hand (an image, a wheel)."""
    from importlib.resources import files

    click.echo(files("podium_policy").joinpath("podium.example.yaml").read_text("utf-8"),
               nl=False)


@policy.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--model", help="Only this registered model.")
@click.option("--last", default=50, show_default=True, type=click.IntRange(min=1),
              help="Decided requests replayed per model, newest first.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--mr", "mr_iid", metavar="IID", help="Also post the table as a note on this "
              "merge request of GITLAB_PROJECT_ID (edited in place on the next run).")
def policy_diff(old: str, new: str, model: str | None, last: int, as_json: bool,
                mr_iid: str | None) -> None:
    """Replay the last decisions under NEW instead of OLD, from their evidence bundles (no
    model is loaded): exit 0 when no decision changes, 3 when some would, 1 when a policy
    does not validate."""
    from webhook_server.service.policy_diff import diff, table

    policies = [_load_or_exit(path) for path in (old, new)]
    ctx = current()
    svc = ctx.reader()
    rows = diff(svc.store, svc.registry, *policies, model=model, last=last)
    text = table(rows)
    if as_json:
        click.echo(json.dumps({"old": old, "new": new, "changed": sum(r.changed for r in rows),
                               "rows": [r.as_json() for r in rows]}, indent=2))
    else:
        click.echo(text, nl=False)
    if mr_iid:
        from webhook_server.adapters.gitlab import post_policy_diff

        click.echo(post_policy_diff(ctx.settings, mr_iid, old, new, text), err=True)
    sys.exit(3 if any(r.changed for r in rows) else 0)


def _load_or_exit(path: str):
    """The policy at ``path``; every problem and exit 1 when it does not validate."""
    from podium_policy.check import load_policy
    from podium_policy.schema import PolicyError

    try:
        return load_policy(path, warn=False)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) in {path}", err=True)
        sys.exit(1)


COMMANDS = (policy,)
