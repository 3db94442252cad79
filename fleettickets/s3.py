"""The one boto3 client factory, set up for S3-compatible stores such as rustfs and MinIO."""

from __future__ import annotations

import boto3
from botocore.config import Config

from fleettickets.settings import Settings

# Path-style because rustfs only serves path-style and a hostname endpoint would
# otherwise get the bucket prepended to it; checksums "when_required" because
# boto3 >= 1.36 sends CRC32 trailers by default, which several S3-compatible
# stores reject or store inside the object.
CLIENT_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    connect_timeout=10,
    read_timeout=60,
    retries={"max_attempts": 5, "mode": "standard"},
)


def make_s3_client(settings: Settings, *, attempts: int | None = None):  # type: ignore[no-untyped-def]
    """A boto3 S3 client for the configured endpoint; credentials only from settings.

    `attempts` lowers the retry count for callers that want a quick answer
    (a health check) rather than a patient one (the ingest). A request that
    hangs is bounded by the read timeout times the attempts (plus backoff); a
    body that stalls mid-read fails after one read timeout.
    """
    settings.require("s3_endpoint", "s3_access_key_id", "s3_secret_access_key")
    config = CLIENT_CONFIG.merge(Config(read_timeout=settings.s3_read_timeout_seconds))
    if attempts is not None:
        config = config.merge(Config(retries={"max_attempts": attempts, "mode": "standard"}))
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=config,
    )
