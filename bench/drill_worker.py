"""`podium worker` with the drill's judge (bench/scaleout/judge.py): the same
command (start checks, banner, signals, worker threads, outbox sender, scheduler lease),
with the gates that score models replaced by one that reads a registry tag.

    python -m bench.drill_worker [--concurrency N] [--scheduler]   (settings: environment)
"""

from __future__ import annotations

import sys

from bench.scaleout.judge import TagJudge
from webhook_server.cli.context import Context
from webhook_server.cli.service import worker


def main() -> None:
    ctx = Context()
    svc = ctx.services()
    svc.use_gates(TagJudge(svc.registry).gates())
    worker.main(args=sys.argv[1:], prog_name="podium worker", obj=ctx)  # closes svc


if __name__ == "__main__":
    main()
