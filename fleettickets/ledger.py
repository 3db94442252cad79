"""Each change file against the ledger of loaded files: new, loaded already (archiving left), or a conflict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import psycopg

    from fleettickets.source import ChangeFile

LedgerState = Literal["new", "loaded", "conflict"]


@dataclass(frozen=True)
class LedgerEntry:
    change: ChangeFile
    loaded_etag: str | None  # the version the ledger holds under this name, if any

    @property
    def state(self) -> LedgerState:
        if self.loaded_etag is None:
            return "new"
        # Same name, other bytes: a replaced file, never applied a second time.
        return "loaded" if self.loaded_etag == self.change.etag else "conflict"


def against_ledger(conn: psycopg.Connection, changes: list[ChangeFile]) -> list[LedgerEntry]:
    """`changes`, in their order, each with the version the ledger recorded under its name."""
    loaded: dict[str, str] = {}
    if changes:
        loaded = dict(
            conn.execute(
                "SELECT file_key, etag FROM tickets.ingest_files WHERE file_key = ANY(%s)",
                ([c.key for c in changes],),
            ).fetchall()
        )
    return [LedgerEntry(change, loaded.get(change.key)) for change in changes]
