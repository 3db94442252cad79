# The fleettickets image: the locked dependencies and the package (migrations
# inside it) in /opt/venv, run as an unprivileged user. The container only
# stays up; Coolify runs the work in it as Scheduled Tasks
# (`fleettickets ingest --apply`, `fleettickets status --check`, or the
# earlier loader's `python import_tickets.py --from-bucket --apply`); see
# docs/operations.md.

FROM python:3.12-slim AS build
# uv from PyPI, pinned: the same tool, lock file and sync command as
# scripts/ensure-deps, less the dev group.
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first, so a code change does not re-download them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY fleettickets ./fleettickets
COPY migrations ./migrations
RUN uv sync --locked --no-dev --no-editable

FROM python:3.12-slim
ENV TZ=Africa/Nairobi \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home fleettickets
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The earlier loader's entry point: its scheduled task keeps working after the switch.
COPY import_tickets.py ./
USER 10001:10001
RUN fleettickets --version
# Keep-alive for Coolify: wait quietly, and stop at once on SIGTERM.
CMD ["sh", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]
