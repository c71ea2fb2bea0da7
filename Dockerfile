# Pay2Slay container image: the faucet process with its side web server on port 8000.
#
#   docker build -t pay2slay .
#   docker run -d --name pay2slay -v pay2slay-data:/data --env-file pay2slay.env -p 8000:8000 pay2slay
#
# The build stage installs the package into a virtual environment with the same
# constraints.txt that CI uses; the runtime stage copies only that environment and the YAML
# configuration. Build with --build-arg EXTRAS=otel to include OpenTelemetry tracing.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/pay2slay

COPY pyproject.toml constraints.txt README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY core ./core

ARG EXTRAS=""
RUN /opt/pay2slay/bin/pip install -c constraints.txt ".${EXTRAS:+[$EXTRAS]}" \
    && /opt/pay2slay/bin/pip check


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="pay2slay" \
      org.opencontainers.image.description="Discord bot that pays Banano to Fortnite players for verified kills" \
      org.opencontainers.image.licenses="MIT"

# Defaults for a container: JSON logs, the server reachable from outside the container, the
# database on the /data volume and the configuration in /app/configs. Each one is an ordinary
# override variable, so `docker run -e` or the Akash SDL can change it.
ENV PATH=/opt/pay2slay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    P2S_CONFIG_DIR=/app/configs \
    P2S_INTEGRATIONS__DATABASE__URL=sqlite+aiosqlite:////data/pay2slay.db \
    P2S_INTEGRATIONS__SERVER__HOST=0.0.0.0 \
    P2S_INTEGRATIONS__SERVER__PORT=8000 \
    P2S_INTEGRATIONS__OBSERVABILITY__LOG_FORMAT=json

RUN groupadd --system --gid 10001 pay2slay \
    && useradd --system --uid 10001 --gid pay2slay --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin pay2slay \
    && mkdir -p /app /data \
    && chown pay2slay:pay2slay /data

COPY --from=build /opt/pay2slay /opt/pay2slay
# Baked-in defaults; mount a directory over /app/configs to replace them.
COPY configs /app/configs

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# Liveness only: /healthz answers while the process serves requests. /readyz is for load
# balancers and monitoring, since a restart does not fix a node or Discord outage.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('P2S_INTEGRATIONS__SERVER__PORT', '8000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

STOPSIGNAL SIGTERM
# `docker run IMAGE` runs the bot; `docker run IMAGE db backup /data/backup.db` runs another
# pay2slay command in the same environment.
ENTRYPOINT ["pay2slay"]
CMD ["run"]
