"""``podium slack manifest --url URL``: the Slack app, ready to paste."""

from __future__ import annotations

import click


@click.group("slack")
def slack_group() -> None:
    """The Slack app Podium talks through."""


@slack_group.command("manifest")
@click.option("--url", required=True,
              help="Podium's public https:// address (interactivity goes to "
                   "URL/slack/interactions).")
@click.option("--name", default="Podium", show_default=True, help="The app's name.")
def manifest(url: str, name: str) -> None:
    """Print the Slack app manifest (bot scopes, interactivity) for Podium at URL."""
    from webhook_server.adapters.notify.manifest import ManifestError, render

    try:
        click.echo(render(url, name), nl=False)
    except ManifestError as exc:
        raise click.UsageError(str(exc)) from None


COMMANDS = (slack_group,)
