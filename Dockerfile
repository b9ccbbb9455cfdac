# incident-brief: one image for both Procfile processes. The default command is `web`; run
# `incident-brief clock` in the same image for the clock (compose.yaml does both).
#
#   docker build -t incident-brief .
#   docker run --env-file .env -p 8000:8000 incident-brief                     # web
#   docker run --env-file .env incident-brief incident-brief clock             # clock, exactly one
#
# Dependencies come from uv.lock (uv sync --frozen: the lock file or nothing), without the dev
# group; the process runs as an unprivileged user. Settings are environment variables
# (docs/settings.md); never bake a .env into the image (.dockerignore keeps it out).

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (a layer that changes only with the lock file), then the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY bot ./bot
COPY connectors ./connectors
COPY sandbox ./sandbox
COPY evals ./evals
COPY prompts ./prompts
COPY config ./config
RUN uv sync --frozen --no-dev

FROM python:3.11-slim
RUN groupadd --system --gid 10001 incident-brief \
    && useradd --system --uid 10001 --gid incident-brief --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin incident-brief
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 PORT=8000
# Read-only code; a SQLite file (one host only) would need a writable volume: use PostgreSQL.
USER incident-brief
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# The Procfile's web command; `sh -c` expands ${PORT} as the Procfile's platforms do.
CMD ["sh", "-c", "exec incident-brief serve --host 0.0.0.0 --port ${PORT:-8000}"]
