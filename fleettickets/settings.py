"""Settings: the one door through which configuration enters, from the environment and `.env`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from dotenv import dotenv_values

from fleettickets.errors import ConfigError

GEOCODER_PROVIDERS = ("locationiq", "opencage", "nominatim")

# Setting name -> environment variable, for messages that name the variable.
ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "s3_endpoint": "RUSTFS_ENDPOINT",
    "s3_access_key_id": "RUSTFS_ACCESS_KEY_ID",
    "s3_secret_access_key": "RUSTFS_SECRET_ACCESS_KEY",
    "s3_bucket": "RUSTFS_BUCKET",
    "s3_region": "RUSTFS_REGION",
    "s3_read_timeout_seconds": "RUSTFS_READ_TIMEOUT_SECONDS",
    "inc_prefix": "INC_PREFIX",
    "geocoder_provider": "GEOCODER_PROVIDER",
    "geocoder_api_key": "GEOCODER_API_KEY",
    "geocoder_base_url": "GEOCODER_BASE_URL",
    "geocoder_requests_per_second": "GEOCODER_REQUESTS_PER_SECOND",
    "geocoder_retry_failed_days": "GEOCODER_RETRY_FAILED_DAYS",
    "status_max_pending_minutes": "STATUS_MAX_PENDING_MINUTES",
    "status_max_silence_minutes": "STATUS_MAX_SILENCE_MINUTES",
    "export_hours": "EXPORT_HOURS",
    "heartbeat_url": "HEARTBEAT_URL",
    "heartbeat_geocode_url": "HEARTBEAT_GEOCODE_URL",
}
# Settings read as positive numbers, and as whole minutes.
NUMBER_FIELDS = ("geocoder_requests_per_second", "geocoder_retry_failed_days", "s3_read_timeout_seconds")
_INT_FIELDS = ("status_max_pending_minutes", "status_max_silence_minutes")
EXPORT_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# A heartbeat URL is a secret too: whoever holds it can report a healthy run.
SECRET_FIELDS = (
    "s3_access_key_id",
    "s3_secret_access_key",
    "geocoder_api_key",
    "heartbeat_url",
    "heartbeat_geocode_url",
)
# Secret URLs whose secret is their path and query: masking every 4-character
# piece of the whole URL would mask "http" and "ping" in every message.
URL_SECRET_FIELDS = ("heartbeat_url", "heartbeat_geocode_url")
# What libpq accepts for sslmode; anything else fails only at connect time.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_bucket: str = "tickets"
    s3_region: str = "us-east-1"
    # Longest silence on an S3 socket before the read fails (and, for a
    # request, is retried): a hung endpoint never holds a run for long.
    s3_read_timeout_seconds: float = 60.0
    inc_prefix: str = "automations/inc/"
    geocoder_provider: str | None = None
    geocoder_api_key: str | None = None
    geocoder_base_url: str | None = None
    # None: the provider's free-tier rate (fleettickets.geocoding.providers).
    geocoder_requests_per_second: float | None = None
    # Age after which 'not_found' and 'rejected' answers are asked again.
    geocoder_retry_failed_days: float = 30.0
    # Health thresholds for `status --check` (docs/operations.md). The exporter
    # writes every 20 minutes and the ingest runs every 20 minutes, so a file
    # normally waits under 20; 45 means two runs in a row missed it.
    status_max_pending_minutes: int = 45
    status_max_silence_minutes: int = 60
    export_hours: str = "06:00-20:00"  # EAT wall-clock, when the exporter writes
    # Dead-man's switch push monitors (Healthchecks.io convention), pinged after runs.
    heartbeat_url: str | None = None
    heartbeat_geocode_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
        """Read settings; real environment variables win over the `.env` file."""
        merged = _merged_environment(environ, env_file)
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = merged.get(ENV_NAMES[field.name], "").strip()
            if raw:
                values[field.name] = _parse(field.name, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def secrets_in_environment(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> list[str]:
        """Every secret value configured, also when the settings do not validate.

        A malformed DATABASE_URL is exactly when its password is most likely
        to turn up in an error message.
        """
        merged = _merged_environment(environ, env_file)
        values = [merged.get(ENV_NAMES[name], "").strip() for name in SECRET_FIELDS if name not in URL_SECRET_FIELDS]
        for name in URL_SECRET_FIELDS:
            values += url_token_secrets(merged.get(ENV_NAMES[name], "").strip())
        values += database_url_secrets(merged.get("DATABASE_URL", "").strip())
        values.append(merged.get("PGPASSWORD", ""))
        return [v for v in values if v]

    @classmethod
    def sources(cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> dict[str, str]:
        """Where each setting's value comes from: "environment", ".env" or "default"."""
        dotenv_path = env_file if env_file is not None else Path(".env")
        from_file = {k for k, v in dotenv_values(dotenv_path).items() if v} if dotenv_path.is_file() else set()
        env = os.environ if environ is None else environ
        found = {}
        for name in ENV_NAMES.values():
            if name in env:  # set in the environment, even empty, it hides the file's value
                found[name] = "environment" if env[name].strip() else "default"
            else:
                found[name] = ".env" if name in from_file else "default"
        return found

    def validate(self) -> None:
        if self.database_url is not None:
            _check_database_url(self.database_url)
        for name in ("s3_endpoint", "geocoder_base_url", "heartbeat_url", "heartbeat_geocode_url"):
            value = getattr(self, name)
            if value is not None and urlsplit(value).scheme not in ("http", "https"):
                raise ConfigError(f"{ENV_NAMES[name]} must be an http:// or https:// URL")
        if not self.inc_prefix.endswith("/"):
            raise ConfigError("INC_PREFIX must end with '/' (e.g. automations/inc/)")
        if self.inc_prefix.startswith("/"):
            raise ConfigError("INC_PREFIX must not start with '/'")
        if self.geocoder_provider is not None and self.geocoder_provider.lower() not in GEOCODER_PROVIDERS:
            raise ConfigError("GEOCODER_PROVIDER must be one of " + ", ".join(GEOCODER_PROVIDERS))
        if not EXPORT_HOURS.match(self.export_hours):
            raise ConfigError("EXPORT_HOURS must look like 06:00-20:00 (EAT, start-end)")
        for name in _INT_FIELDS:
            if getattr(self, name) < 1:
                raise ConfigError(f"{ENV_NAMES[name]} must be a whole number of minutes, at least 1")

    def require(self, *names: str) -> None:
        """Fail with a message naming the variable when a needed setting is missing."""
        missing = [ENV_NAMES[n] for n in names if getattr(self, n) in (None, "")]
        if missing:
            verb, pronoun = ("is", "it") if len(missing) == 1 else ("are", "them")
            raise ConfigError(
                f"{', '.join(missing)} {verb} not set (set {pronoun} in the environment or in .env; see .env.example)"
            )

    @property
    def changes_prefix(self) -> str:
        return f"{self.inc_prefix}changes/"

    @property
    def processed_prefix(self) -> str:
        return f"{self.inc_prefix}processed/"

    def secrets(self) -> list[str]:
        """Every secret value in force, for log redaction."""
        values = [getattr(self, name) for name in SECRET_FIELDS if name not in URL_SECRET_FIELDS]
        for name in URL_SECRET_FIELDS:
            values += url_token_secrets(getattr(self, name) or "")
        if self.database_url:
            values += database_url_secrets(self.database_url)
        values.append(os.environ.get("PGPASSWORD", ""))
        return list(dict.fromkeys(v for v in values if v))

    def redacted(self) -> dict[str, str | int | None]:
        """The settings as a dict that is safe to print."""
        shown: dict[str, str | int | None] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in SECRET_FIELDS and value:
                value = "***"
            elif field.name == "database_url" and value:
                value = redact_url_password(value)
            shown[ENV_NAMES[field.name]] = None if value is None else str(value)
        return shown


def _merged_environment(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    dotenv_path = env_file if env_file is not None else Path(".env")
    if dotenv_path.is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v})
    merged.update(os.environ if environ is None else environ)
    return merged


def database_url_secrets(url: str) -> list[str]:
    """Every text a database URL's password could be read as, however malformed the URL.

    Parsers disagree on a password holding '@' or '/' (libpq ends the user part
    at the first '@', Python at the last), so each reading counts as a secret,
    raw and percent-decoded, with a ``password=`` query parameter's value.
    """
    rest = url.split("://", 1)[-1]
    head, _, query = rest.partition("?")
    authority = head.split("/", 1)[0]
    found = []
    for userinfo in (
        authority.partition("@")[0] if "@" in authority else "",
        authority.rpartition("@")[0],
        head.rpartition("@")[0],
    ):
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if unquote(key).strip() == "password":
            found.append(value)
    found += [unquote(value) for value in found]
    return list(dict.fromkeys(value for value in found if value))


def url_token_secrets(url: str) -> list[str]:
    """The parts of a push-monitor URL that grant access: long path segments and query values."""
    if not url:
        return []
    parts = urlsplit(url)
    pieces = [unquote(segment) for segment in parts.path.split("/")]
    pieces += [unquote(pair.partition("=")[2]) for pair in parts.query.split("&")]
    return [piece for piece in dict.fromkeys(pieces) if len(piece) >= 8]


def _check_database_url(url: str) -> None:
    """Refuse what libpq would only refuse at connect time, without quoting the URL.

    Messages name the part that is wrong, never its text: any part of a
    malformed URL may be a piece of its password.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL is not a valid URL ({exc})") from None
    if parts.scheme not in ("postgres", "postgresql"):
        shown = parts.scheme if parts.scheme.isalnum() else "something else"
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL (got a value starting with {shown!r})")
    if _BAD_PERCENT.search(url):
        raise ConfigError(
            "DATABASE_URL has a '%' that is not followed by two hex digits; write a "
            "literal '%' as %25 (in a password too)"
        )
    if "@" in parts.netloc.partition("@")[2]:
        raise ConfigError(
            "DATABASE_URL has more than one '@' before the host; write an '@' in the user name or password as %40"
        )
    hosts = parts.netloc.rpartition("@")[2]
    for host in hosts.split(","):
        port = host.rpartition("]")[2].partition(":")[2] if host.startswith("[") else host.partition(":")[2]
        if port and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
            raise ConfigError("DATABASE_URL has a port that is not a number from 1 to 65535")
    for pair in parts.query.split("&") if parts.query else ():
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        if key == "sslmode" and value not in SSL_MODES:
            raise ConfigError(f"DATABASE_URL: sslmode must be one of {', '.join(SSL_MODES)}")
        if key == "port" and not (value.isdigit() and value.isascii() and 0 < int(value) < 65536):
            raise ConfigError("DATABASE_URL has a port that is not a number from 1 to 65535")
        if key == "connect_timeout" and not (value.isdigit() and value.isascii()):
            raise ConfigError("DATABASE_URL: connect_timeout must be a whole number of seconds")


def _parse(name: str, raw: str) -> object:
    if name in NUMBER_FIELDS:
        return _number(name, raw)
    if name in _INT_FIELDS:
        return _whole_minutes(name, raw)
    return raw


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{ENV_NAMES[name]} must be a positive number (got {raw!r})")
    return value


def _whole_minutes(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_NAMES[name]} must be a whole number of minutes (got {raw!r})") from None


def redact_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
