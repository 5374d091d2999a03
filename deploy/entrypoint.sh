#!/bin/sh
# The image's one entrypoint: bring the store's schema up to date, then run the service.
#
#   entrypoint.sh serve [podium serve options]     HTTP (+ a job worker unless --no-worker)
#   entrypoint.sh worker [podium worker options]   job workers only
#   entrypoint.sh migrate                          the migration alone (the Kubernetes Job)
#   entrypoint.sh COMMAND ...                      any other podium command, as is
#
# `serve` listens on $PODIUM_HOST:$PODIUM_PORT (0.0.0.0:8000: a container's port is reached
# from outside it); a --host/--port given after `serve` wins. PODIUM_SKIP_MIGRATE=true skips
# the migrate step here (serve and worker still bring the schema to head at start; on
# PostgreSQL migrators take turns under an advisory lock, so pods and the Job may start
# together).
#
# Signals: podium replaces this shell (exec), so SIGTERM reaches it directly (the image runs
# tini as PID 1, which forwards it): `podium serve`'s gunicorn stops accepting, finishes the
# requests in flight (graceful timeout 10 s), then stops its worker process; `podium worker`
# lets each thread finish the job it is running (waiting up to 30 s; a longer job is left to
# its lease, and another worker takes it over after PODIUM_JOB_LEASE) and exits 0. Give the
# runtime's stop timeout 60 s (compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds).
set -eu

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

migrate() {
  if [ "${PODIUM_SKIP_MIGRATE:-false}" != "true" ]; then
    podium migrate
  fi
}

case "$command" in
  serve)
    migrate
    exec podium serve --host "${PODIUM_HOST:-0.0.0.0}" --port "${PODIUM_PORT:-8000}" "$@"
    ;;
  worker)
    migrate
    exec podium worker "$@"
    ;;
  migrate)
    exec podium migrate
    ;;
  *)
    exec podium "$command" "$@"
    ;;
esac
