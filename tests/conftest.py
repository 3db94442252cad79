"""Shared fixtures: real PostgreSQL + PostGIS and a real S3 endpoint (see fix_db, fix_s3)."""

pytest_plugins = ["tests.fix_db", "tests.fix_s3", "tests.geocode_server"]
