"""Doctor: is this deployment set up right? Every setting and one line per check.

Meant for before the first run and for "something looks wrong": it reads and
lists, never writes, takes no lock, and sends a geocoder request only when
asked to (that request counts against the provider's quota).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleettickets.errors import FleetTicketsError
from fleettickets.logs import redact
from fleettickets.settings import ENV_NAMES, Settings

if TYPE_CHECKING:
    from fleettickets.status import ReaderFacts

# Beyond this difference between this machine's clock and the database's,
# run times, ages and the pinned-clock previews stop lining up.
MAX_CLOCK_SKEW_SECONDS = 30.0
GEOCODER_PROBE_QUERY = "Nairobi, Kenya"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "fail" or "skipped"
    detail: str


@dataclass
class Diagnosis:
    settings: dict[str, dict[str, str | int | None]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "settings": self.settings,
            "checks": [{"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks],
        }


def diagnose(
    *, geocoder: bool = False, environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> Diagnosis:
    """Run every check in order; a check that cannot run says why it was skipped."""
    result = Diagnosis()
    sources = Settings.sources(environ, env_file)
    try:
        settings = Settings.from_env(environ, env_file)
    except FleetTicketsError as exc:
        secrets = Settings.secrets_in_environment(environ, env_file)
        result.settings = {name: {"value": None, "source": sources[name]} for name in ENV_NAMES.values()}
        result.checks.append(Check("settings", "fail", redact(str(exc), secrets)))
        for name in ("database", "postgis", "migrations", "reader role", "clock skew", "bucket", "geocoder"):
            result.checks.append(Check(name, "skipped", "the settings do not load"))
        return result
    result.settings = {name: {"value": value, "source": sources[name]} for name, value in settings.redacted().items()}
    result.checks.append(Check("settings", "ok", "every setting parses"))
    result.checks += _database_checks(settings)
    result.checks.append(_guard("bucket", lambda: _bucket(settings), settings))
    if geocoder:
        result.checks.append(_guard("geocoder", lambda: _geocoder(settings), settings))
    else:
        result.checks.append(Check("geocoder", "skipped", "not asked (--geocoder sends one request)"))
    return result


def _guard(name: str, run: Callable[[], Check], settings: Settings) -> Check:
    try:
        return run()
    except Exception as exc:  # a check reports its failure; it never stops the others
        return Check(name, "fail", redact(f"{_reason(exc)}", settings.secrets()))


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, FleetTicketsError) else f"{type(exc).__name__}: {text}"


def _database_checks(settings: Settings) -> list[Check]:
    from fleettickets.db import connect
    from fleettickets.migrate import pending_migrations
    from fleettickets.status import READER_ROLE, read_reader_role

    later = ("postgis", "migrations", "reader role", "clock skew")
    try:
        conn = connect(settings, autocommit=True)
    except Exception as exc:
        failed = Check("database", "fail", redact(_reason(exc), settings.secrets()))
        return [failed, *(Check(name, "skipped", "the database is not reachable") for name in later)]
    checks = []
    with conn:
        version = conn.execute("SELECT current_setting('server_version')").fetchone()[0]  # type: ignore[index]
        info = conn.info
        checks.append(
            Check(
                "database",
                "ok",
                f"PostgreSQL {version}, database {info.dbname} on {info.host}:{info.port} as {info.user}",
            )
        )
        postgis = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
        checks.append(
            Check("postgis", "ok", f"PostGIS {postgis[0]}")
            if postgis
            else Check(
                "postgis",
                "fail",
                "the postgis extension is not installed (CREATE EXTENSION postgis, "
                "or let `fleettickets migrate` create it as a superuser)",
            )
        )
        checks.append(_guard("migrations", lambda: _migrations(pending_migrations(conn)), settings))
        checks.append(_guard("reader role", lambda: _reader_check(read_reader_role(conn, READER_ROLE)), settings))
        checks.append(_guard("clock skew", lambda: _clock_skew(conn), settings))
    return checks


def _migrations(plan: Any) -> Check:
    applied, pending = len(plan.applied), [m.filename for m in plan.pending]
    if pending:
        return Check(
            "migrations",
            "fail",
            f"{applied} applied, {len(pending)} pending ({pending[0]} to {pending[-1]}): run `fleettickets migrate`",
        )
    return Check("migrations", "ok", f"{applied} applied, none pending")


def _reader_check(reader: ReaderFacts) -> Check:
    role = reader.role
    if not reader.exists:
        return Check(
            "reader role",
            "fail",
            f"{role} is missing: a superuser runs CREATE ROLE {role} NOLOGIN, "
            "then the schema owner SELECT tickets.setup_reader_role()",
        )
    if not reader.granted:
        return Check(
            "reader role",
            "fail",
            f"{role} exists but is not granted the entry points: "
            "SELECT tickets.setup_reader_role() as the schema owner",
        )
    logins = ", ".join(login.name for login in reader.logins) or "none yet"
    return Check("reader role", "ok", f"{role} exists and is granted; logins: {logins}")


def _clock_skew(conn: Any) -> Check:
    # The machine's real clock, not a pinned one: this compares two wall clocks.
    before = time.time()
    server = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    after = time.time()
    local = datetime.fromtimestamp((before + after) / 2, tz=UTC)
    skew = (server - local).total_seconds()
    text = f"database clock {'ahead of' if skew >= 0 else 'behind'} this machine by {abs(skew):.1f}s"
    if abs(skew) > MAX_CLOCK_SKEW_SECONDS:
        return Check("clock skew", "fail", f"{text} (more than {MAX_CLOCK_SKEW_SECONDS:.0f}s: check NTP on both)")
    return Check("clock skew", "ok", text)


def _bucket(settings: Settings) -> Check:
    from fleettickets.s3 import make_s3_client

    client = make_s3_client(settings, attempts=1)

    def holds(prefix: str) -> bool:
        listing = client.list_objects_v2(Bucket=settings.s3_bucket, Prefix=prefix, MaxKeys=1)
        return bool(listing.get("KeyCount"))

    where = f"bucket {settings.s3_bucket} at {settings.s3_endpoint}"
    if holds(settings.changes_prefix):
        return Check("bucket", "ok", f"{where} is listable; {settings.changes_prefix} holds files")
    if holds(settings.processed_prefix):
        return Check(
            "bucket",
            "ok",
            f"{where} is listable; {settings.changes_prefix} is empty (all archived to {settings.processed_prefix})",
        )
    return Check(
        "bucket",
        "fail",
        f"{where} is listable but nothing is under {settings.changes_prefix} or "
        f"{settings.processed_prefix}: check INC_PREFIX and RUSTFS_BUCKET",
    )


def _geocoder(settings: Settings) -> Check:
    from fleettickets.geocoding.providers import make_geocoder

    if not settings.geocoder_provider:
        return Check("geocoder", "fail", "GEOCODER_PROVIDER is not set")
    with make_geocoder(
        settings.geocoder_provider, settings.geocoder_api_key, settings.geocoder_base_url, max_attempts=1
    ) as client:
        answer = client.lookup(GEOCODER_PROBE_QUERY)
    found = "found it" if answer.status == "ok" else "answered not found"
    return Check(
        "geocoder",
        "ok",
        f"{settings.geocoder_provider} accepted the key: one request for {GEOCODER_PROBE_QUERY!r}, {found}",
    )


def doctor_text(diagnosis: Diagnosis) -> str:
    lines = ["settings (value, where it came from):"]
    width = max(len(name) for name in diagnosis.settings)
    for name, entry in diagnosis.settings.items():
        value = "(not set)" if entry["value"] is None else entry["value"]
        lines.append(f"  {name:<{width}}  {value}  [{entry['source']}]")
    lines.append("checks:")
    for check in diagnosis.checks:
        lines.append(f"  {check.status.upper():<7} {check.name}: {check.detail}")
    counts = {s: sum(c.status == s for c in diagnosis.checks) for s in ("ok", "fail", "skipped")}
    verdict = "all checks pass" if diagnosis.ok else "some checks fail"
    lines.append(f"{verdict}: {counts['ok']} ok, {counts['fail']} failed, {counts['skipped']} skipped")
    return "\n".join(lines)
