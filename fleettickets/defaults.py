"""Defaults the command line shows in its help, kept apart from the modules that use them.

The CLI reads these while it builds `--help`; importing them from the
database or HTTP modules would make every invocation, `--version` too, pay
for psycopg, boto3 and httpx.
"""

from __future__ import annotations

# Dashboard windows (EAT calendar days) and the normalized statuses its filter knows.
WINDOWS = ("today", "yesterday", "last_7_days", "last_30_days", "this_month", "custom")
STATUSES = ("open", "assigned", "in_progress", "on_hold", "resolved", "closed", "cancelled")
# Cap on features per GeoJSON collection of the dashboard payload.
DEFAULT_MAX_FEATURES = 10000
# Dispatch: the orders reporting.fn_dispatch_candidates knows, and its default limit.
ORDERS = ("distance", "urgency")
DEFAULT_DISPATCH_LIMIT = 10
# Map page background.
DEFAULT_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
# How long a run waits for a lock held by another before exiting 75.
DEFAULT_LOCK_WAIT_SECONDS = 30.0
