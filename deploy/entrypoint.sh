#!/bin/sh
# The image's one entrypoint: bring the store's schema up to date, then run the service.
#
#   entrypoint.sh serve [podium serve options]     HTTP (+ a job worker unless --no-worker)
#   entrypoint.sh worker [podium worker options]   job workers only
#   entrypoint.sh migrate                          the migration alone (the Kubernetes Job)
#   entrypoint.sh COMMAND ...                      any other podium command, as is
#
# `serve` listens on $PODIUM_HOST:$PODIUM_PORT (0.0.0.0:8000: a container's port is reached
# from outside it); a --host/--port given after `serve` wins. PODIUM_SKIP_MIGRATE=true leaves
# the schema to the migration Job (serve and worker then refuse nothing: they migrate at start
# anyway, which is a no-op on a store already at head).
#
# Signals: podium replaces this shell (exec), so SIGTERM reaches it directly (the image runs
# tini as PID 1, which forwards it): `podium serve`'s gunicorn stops accepting, finishes the
# requests in flight (graceful timeout 10 s), then stops its worker process; `podium worker`
# finishes the job step each thread is running, releases its leases and exits 0. Give the
# runtime's stop timeout 60 s (compose stop_grace_period, Kubernetes
# terminationGracePeriodSeconds).
set -eu

command="${1:-serve}"
[ "$#" -gt 0 ] && shift
PODIUM="${PODIUM_BIN:-podium}"

migrate() {
  if [ "${PODIUM_SKIP_MIGRATE:-false}" != "true" ]; then
    "$PODIUM" migrate
  fi
}

case "$command" in
  serve)
    migrate
    exec "$PODIUM" serve --host "${PODIUM_HOST:-0.0.0.0}" --port "${PODIUM_PORT:-8000}" "$@"
    ;;
  worker)
    migrate
    exec "$PODIUM" worker "$@"
    ;;
  migrate)
    exec "$PODIUM" migrate
    ;;
  *)
    exec "$PODIUM" "$command" "$@"
    ;;
esac
