"""The named failures of fleettickets and the exit statuses they map to.

The library raises these; only the CLI turns them into a message and an exit
status. Each message says what went wrong and, where it can, what to do next.
"""

from __future__ import annotations

# Exit statuses are part of the operator contract (docs/operations.md):
EXIT_OK = 0  # success, including "nothing to do"
EXIT_FAILURE = 1  # the work failed; the message says where
EXIT_USAGE = 2  # bad option, missing or malformed setting
EXIT_LOCKED = 75  # another run holds the lock (EX_TEMPFAIL: try again later)


class FleetTicketsError(Exception):
    """Base class: an expected failure with a message meant for an operator."""

    exit_status = EXIT_FAILURE
    # What a run had done when it failed (an IngestReport), for `--json`.
    report: object | None = None


class ConfigError(FleetTicketsError):
    """A setting is missing or malformed."""

    exit_status = EXIT_USAGE


class UsageError(FleetTicketsError):
    """The command was asked for something it refuses before doing anything."""

    exit_status = EXIT_USAGE


class LockBusy(FleetTicketsError):
    """Another run holds the advisory lock for this job."""

    exit_status = EXIT_LOCKED


class DashboardArgumentError(FleetTicketsError):
    """The dashboard function refused its arguments (SQLSTATE 22023): a usage error."""

    exit_status = EXIT_USAGE


class DispatchArgumentError(FleetTicketsError):
    """Dispatch arguments the command or the function refused (SQLSTATE 22023): a usage error."""

    exit_status = EXIT_USAGE


class MigrationError(FleetTicketsError):
    """The migrations folder and the database ledger disagree, or a migration failed."""


class BadChangeFile(FleetTicketsError):
    """A change file cannot be read as a whole (no header, bad encoding, no ticket_id)."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.reason = reason
        self.line = line


class ListingError(FleetTicketsError):
    """The bucket listing cannot be trusted (pagination bug, repeated token)."""


class GeocoderError(FleetTicketsError):
    """Base class for geocoding provider failures that stop a run."""


class GeocoderAuthError(GeocoderError):
    """The provider refused the key (401/403): stop at once."""


class GeocoderQuotaExhausted(GeocoderError):
    """The provider's daily quota is spent: stop gracefully, keep what is done."""


class GeocoderUnavailable(GeocoderError):
    """The provider kept failing (network, 5xx, repeated 429) after bounded retries."""


class GazetteerImportError(FleetTicketsError):
    """A reviewed gazetteer file has problems; nothing of it was applied."""


class AdoptRefused(FleetTicketsError):
    """The database is neither fresh nor the earlier loader's as documented; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "this database matches neither a fresh database nor the earlier loader's; nothing "
            "was changed:\n" + "\n".join(f"  - {p}" for p in problems)
        )
        self.problems = problems
