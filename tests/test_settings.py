"""Settings: environment and .env, validation naming the variable, no secret ever shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleettickets.errors import ConfigError
from fleettickets.settings import Settings

NO_FILE = Path("/nonexistent/.env")


def test_defaults_and_environment() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://u:pw@db/x"}, env_file=NO_FILE)
    assert settings.s3_bucket == "tickets"
    assert settings.s3_region == "us-east-1"
    assert settings.inc_prefix == "automations/inc/"
    assert settings.changes_prefix == "automations/inc/changes/"
    assert settings.processed_prefix == "automations/inc/processed/"


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RUSTFS_BUCKET=from-file\nINC_PREFIX=other/\n")
    settings = Settings.from_env({"RUSTFS_BUCKET": "from-env"}, env_file=env_file)
    assert settings.s3_bucket == "from-env"
    assert settings.inc_prefix == "other/"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a postgresql:// URL"),
        ({"RUSTFS_ENDPOINT": "localhost:9000"}, "RUSTFS_ENDPOINT must be an http:// or https:// URL"),
        ({"INC_PREFIX": "automations/inc"}, "INC_PREFIX must end with '/'"),
        ({"GEOCODER_PROVIDER": "google"}, "GEOCODER_PROVIDER must be one of locationiq, opencage, nominatim"),
        ({"STATUS_MAX_PENDING_MINUTES": "an hour"}, "STATUS_MAX_PENDING_MINUTES must be a whole number of minutes"),
        (
            {"STATUS_MAX_SILENCE_MINUTES": "0"},
            "STATUS_MAX_SILENCE_MINUTES must be a whole number of minutes, at least 1",
        ),
        ({"EXPORT_HOURS": "6am-8pm"}, "EXPORT_HOURS must look like 06:00-20:00"),
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env, env_file=NO_FILE)
    assert caught.value.exit_status == 2


def test_require_names_missing_variables() -> None:
    settings = Settings.from_env({}, env_file=NO_FILE)
    with pytest.raises(ConfigError, match="^RUSTFS_ENDPOINT, RUSTFS_SECRET_ACCESS_KEY are not set"):
        settings.require("s3_endpoint", "s3_secret_access_key")


def test_secrets_are_listed_and_redacted() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:s3cret-pw@db:5432/tickets",
            "RUSTFS_ACCESS_KEY_ID": "AKID-123",
            "RUSTFS_SECRET_ACCESS_KEY": "very-secret",
            "GEOCODER_API_KEY": "pk.abcdef",
        },
        env_file=NO_FILE,
    )
    assert set(settings.secrets()) == {"s3cret-pw", "AKID-123", "very-secret", "pk.abcdef"}
    shown = repr(settings.redacted())
    for secret in settings.secrets():
        assert secret not in shown
    assert "postgresql://app:***@db:5432/tickets" in shown


def test_geocoding_numbers() -> None:
    settings = Settings.from_env({"GEOCODER_REQUESTS_PER_SECOND": "0.5"}, env_file=NO_FILE)
    assert settings.geocoder_requests_per_second == 0.5
    assert settings.geocoder_retry_failed_days == 30.0
    for bad in ("0", "-1", "fast", "inf", "nan"):
        with pytest.raises(ConfigError, match="GEOCODER_RETRY_FAILED_DAYS must be a positive number"):
            Settings.from_env({"GEOCODER_RETRY_FAILED_DAYS": bad}, env_file=NO_FILE)
