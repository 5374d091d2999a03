"""``mlflow server`` in one process, for the demo, the benchmarks and the tests.

MLflow's ``server`` command imports MLflow, opens its stores (checking the schema), then
starts ``python -m uvicorn mlflow.server.fastapi_app:app`` as a child that imports MLflow
and opens the stores again: about 6.5 s of CPU and 5 s before the first answer on a two-core
machine, twice the work for one server. Here the command runs exactly as MLflow wrote it
(its options, its environment, its store checks), and only its last step, starting uvicorn,
happens in this process instead of a new one: half the CPU, ready in about 3 s.

Where the MLflow installed does not start uvicorn that way (another release), the command
runs unchanged.

    python -m webhook_server.dev.mlflow_server --host 127.0.0.1 --port 5000 ...
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    import mlflow.server as server
    from mlflow.cli import cli

    start = getattr(server, "_exec_cmd", None)
    if start is not None:
        def run_here(cmd, *args, extra_env=None, **kwargs):
            if list(cmd[1:3]) != ["-m", "uvicorn"]:
                return start(cmd, *args, extra_env=extra_env, **kwargs)
            os.environ.update(extra_env or {})
            import uvicorn

            uvicorn.main(args=list(cmd[3:]), prog_name="uvicorn")  # serves until stopped
            raise SystemExit(0)

        server._exec_cmd = run_here
    cli(args=["server", *argv], prog_name="mlflow")


if __name__ == "__main__":
    main(sys.argv[1:])
