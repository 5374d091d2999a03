"""``podium policy check FILE``, ``podium policy example``."""

from __future__ import annotations

import json
import sys

import click


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


COMMANDS = (policy,)
