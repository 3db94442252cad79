#!/usr/bin/env bash
# One ingest for cron on a plain VM: apply every pending change file and exit
# with the ingest's own status (0 ok or nothing to do, 1 failed, 2 bad
# configuration, 75 another run holds the lock). See docs/operations.md.
#
# Settings come from .env beside this script (fleettickets reads .env from its
# working folder; real environment variables win) and are never printed.
# Example crontab (crontab -e), every 20 minutes from 06:05 to 20:45 EAT:
#   CRON_TZ=Africa/Nairobi
#   5-59/20 6-20 * * * /opt/fleettickets/run_ingest.sh >>/var/log/fleettickets/ingest.log 2>&1
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [ -x .venv/bin/fleettickets ]; then
    fleettickets=.venv/bin/fleettickets
elif command -v fleettickets >/dev/null 2>&1; then
    fleettickets=fleettickets
else
    echo "run_ingest.sh: fleettickets is not installed here (run ./scripts/ensure-deps or uv sync --locked --no-dev)" >&2
    exit 2
fi
exec "$fleettickets" ingest --apply "$@"
