"""A real S3 endpoint for the tests: moto's server mode on 127.0.0.1, reached over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from fleettickets.s3 import make_s3_client
from fleettickets.settings import Settings
from fleettickets_dev.localdb import free_port

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str) -> Settings:
    """Settings for a fresh, empty bucket of this test's own on the S3 endpoint."""
    settings = Settings(
        s3_endpoint=s3_endpoint,
        s3_access_key_id="AKIA5Q7ZXW3NV2K8",
        s3_secret_access_key="qW8zR2xV9nB4mK7pL3sT6yH1",
        s3_bucket=f"tickets-{next(_bucket_numbers)}",
    )
    make_s3_client(settings).create_bucket(Bucket=settings.s3_bucket)
    return settings


@pytest.fixture
def settings(db_url: str, s3_settings: Settings) -> Settings:
    """A fresh migrated database and a fresh bucket of this test's own."""
    return Settings(**{**s3_settings.__dict__, "database_url": db_url})
