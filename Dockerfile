# Podium's image: the wheel `python -m build` makes, installed with the exact versions CI
# tested (requirements.lock), run as a non-root user, bubblewrap included for the model
# sandbox. One entrypoint (deploy/entrypoint.sh): `serve` (default), `worker`, `migrate`,
# or any podium command. README, "Deploy", says what the sandbox needs from the runtime.
#
#   docker build -t podium .                      # python:3.11-slim-bookworm
#   docker build --build-arg PYTHON_IMAGE=python:3.12-slim-bookworm -t podium .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md requirements.lock ./
COPY podium_policy ./podium_policy
COPY training ./training
COPY model_tests ./model_tests
COPY webhook_server ./webhook_server
RUN python -m pip install --constraint requirements.lock build \
    && python -m build --wheel --outdir /dist . \
    && python -m venv /opt/podium \
    && /opt/podium/bin/pip install --constraint requirements.lock \
       "$(ls /dist/podium-*.whl)[postgres]"

FROM ${PYTHON_IMAGE} AS runtime
# bubblewrap: the model sandbox; tini: PID 1 that forwards SIGTERM and reaps the sandboxes'
# orphans; libgomp1: LightGBM's OpenMP runtime. Debian's versions of the base image's release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap tini libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 podium \
    && useradd --system --uid 10001 --gid podium --home-dir /var/lib/podium \
       --create-home --shell /usr/sbin/nologin podium \
    && mkdir -p /etc/podium \
    && chown podium:podium /var/lib/podium
COPY --from=build /opt/podium /opt/podium
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/podium-entrypoint
# The store and the inference log live in /var/lib/podium (a volume) unless
# PODIUM_DATABASE_URL names PostgreSQL; the policy is mounted at /etc/podium/podium.yaml.
# GIT_PYTHON_REFRESH=quiet: no git in the image; a model trained here takes its lineage
# from the commit the image was built from:
#   docker build --build-arg PODIUM_GIT_COMMIT="$(git rev-parse HEAD)" \
#     --build-arg PODIUM_GIT_BRANCH="$(git rev-parse --abbrev-ref HEAD)" .
ARG PODIUM_GIT_COMMIT=""
ARG PODIUM_GIT_BRANCH=""
ENV PODIUM_GIT_COMMIT=$PODIUM_GIT_COMMIT \
    PODIUM_GIT_BRANCH=$PODIUM_GIT_BRANCH
ENV PATH=/opt/podium/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GIT_PYTHON_REFRESH=quiet \
    PODIUM_DATABASE_URL=sqlite:////var/lib/podium/podium.db \
    PODIUM_INFERENCE_LOG=/var/lib/podium/inference-log \
    PODIUM_POLICY=/etc/podium/podium.yaml \
    PODIUM_HOST=0.0.0.0 \
    PODIUM_PORT=8000
USER 10001:10001
WORKDIR /var/lib/podium
VOLUME ["/var/lib/podium"]
EXPOSE 8000
# /readyz: the store at the newest schema and MLflow reachable (503 otherwise). Only the
# web container answers HTTP: compose and Kubernetes give workers their own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PODIUM_PORT', '8000') + '/readyz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "podium-entrypoint"]
CMD ["serve"]
