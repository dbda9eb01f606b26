# DataFast container image.
#
#   docker build -t datafast .
#   docker run -d -p 8000:8000 -v datafast-data:/data datafast
#
# With no other settings it runs embedded mode: SQLite and chDB under the /data volume, one process.
# Set DATABASE_URL, CLICKHOUSE_URL and VALKEY_URL for scaled mode (see docker-compose.scaled.yml and
# helm/datafast). The same image runs `datafast serve` (default), `datafast worker` and `datafast migrate`.

# --- builder: the project's wheel and its locked dependencies, in a venv copied whole into the runtime image
FROM python:3.11-slim-bookworm AS builder

ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
 && python -m venv /opt/datafast

WORKDIR /src

# Dependencies come from uv.lock alone (no dev, test or lint groups), checked against the lock's hashes.
# Wheels are used where they exist; a package published only as an sdist is built here, which works
# for pure-Python ones (this image has no compiler). This layer is rebuilt when the lock or pyproject changes.
# EXTRAS: `embedded` (default) brings chDB for embedded mode; `--build-arg EXTRAS=` builds a smaller
# image for scaled mode only (a ClickHouse server over CLICKHOUSE_URL).
ARG EXTRAS=embedded
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project ${EXTRAS:+--extra "$EXTRAS"} --format requirements-txt --output-file requirements.txt \
 && /opt/datafast/bin/pip install --no-cache-dir --no-deps --require-hashes --requirement requirements.txt

# The wheel packs migrations/ as datafast/migrations (hatch force-include in pyproject.toml).
COPY README.md ./
COPY src ./src
COPY migrations ./migrations
RUN uv build --wheel --out-dir /tmp/dist \
 && /opt/datafast/bin/pip install --no-cache-dir --no-deps /tmp/dist/datafast-*.whl

# --- assets: the tracking script (tracker/) and the dashboard SPA (frontend/), as `make build` builds
# them, with Debian's Node.js. The runtime stage copies them into the installed package
# (datafast/static/js and datafast/static/app), where the app serves them.
FROM python:3.11-slim-bookworm AS assets

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tracker
COPY tracker/package.json tracker/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tracker/build.mjs ./
COPY tracker/src ./src
RUN TRACKER_OUT_DIR=/out node build.mjs
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/index.html frontend/vite.config.js frontend/svelte.config.js frontend/vendor-docs.mjs ./
COPY frontend/src ./src
RUN DASHBOARD_OUT_DIR=/app-out npm run build

# --- runtime: the venv, a non-root user and the /data volume; no compiler, no uv, no sources
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="DataFast" \
      org.opencontainers.image.description="Self-hostable, revenue-first web analytics" \
      org.opencontainers.image.licenses="AGPL-3.0-only"

ENV PATH="/opt/datafast/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json

# A fixed uid/gid (10001) so that Kubernetes' runAsNonRoot can check it and volumes can be chowned to it.
# /data is created and owned before VOLUME so that a new named volume starts out writable by that user;
# a bind mount must be owned by 10001:10001 on the host.
RUN groupadd --system --gid 10001 datafast \
 && useradd --system --uid 10001 --gid datafast --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin datafast \
 && mkdir -p /data /app \
 && chown datafast:datafast /data

COPY --from=builder /opt/datafast /opt/datafast
COPY --from=assets /out /opt/datafast/lib/python3.11/site-packages/datafast/static/js
COPY --from=assets /app-out /opt/datafast/lib/python3.11/site-packages/datafast/static/app

# DataFast reads an optional .env from its working directory: mount one at /app/.env if you need it.
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# slim images have no curl: ask /healthz with Python's urllib (any error or non-2xx answer exits non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]

ENTRYPOINT ["datafast"]
CMD ["serve"]
