"""``podium demo``."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--keep-running", is_flag=True,
              help="Leave MLflow, Podium and its web page (/ui/) up until Ctrl-C.")
@click.option("--trace", is_flag=True,
              help="Trace Podium to a local OTLP receiver and log JSON; at the end, print "
                   "the first promotion's trace trees and JSON log lines.")
def demo(keep_running: bool, trace: bool) -> None:
    """The loop on embedded defaults: local MLflow, Podium, a request end to end."""
    from webhook_server.dev.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running, trace=trace))



COMMANDS = (demo,)
