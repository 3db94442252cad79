"""Shared fixtures: real PostgreSQL + PostGIS and a real S3 endpoint (see fix_db, fix_s3).

Every test runs with the clock pinned (fix_clock), so no outcome depends on the
hour, the date or the host's time zone the suite happens to run at.
"""

pytest_plugins = ["tests.fix_db", "tests.fix_s3", "tests.geocode_server", "tests.fix_clock"]
