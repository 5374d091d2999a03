"""``podium demo``."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--keep-running", is_flag=True,
              help="Leave MLflow, Podium and its web page (/ui/) up until Ctrl-C.")
def demo(keep_running: bool) -> None:
    """The loop on embedded defaults: local MLflow, Podium, a request end to end."""
    from webhook_server.dev.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))



COMMANDS = (demo,)
