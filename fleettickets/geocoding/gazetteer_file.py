"""Gazetteer review in a spreadsheet: export both gazetteers to CSV, import corrections back."""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import sql

from fleettickets.clean import parse_bool
from fleettickets.db import connect, job_lock
from fleettickets.errors import GazetteerImportError
from fleettickets.geocoding.tables import TABLES, GazetteerTable, Kind, place_key, refresh_geometry
from fleettickets.migrate import require_current_schema
from fleettickets.settings import Settings

logger = logging.getLogger(__name__)

COLUMNS = (
    "kind",
    "key",
    "name",
    "cluster_key",
    "region",
    "latitude",
    "longitude",
    "status",
    "verified",
    "distance_km",
    "confidence",
    "provider",
    "query",
    "display_name",
    "last_error",
    "fetched_at",
    "open_tickets",
)
REQUIRED = ("kind", "key", "latitude", "longitude", "verified")
MAX_REPORTED = 20
# Longer than any name, query or answer a gazetteer holds; a longer cell is a
# mistake (a paste gone wrong), reported by line rather than quoted.
MAX_CELL_CHARS = 10_000
# What the csv module is allowed to read in one cell before the check above
# speaks; process-wide, so set the same wherever the csv module is used.
_CSV_FIELD_LIMIT = 16 * 1024 * 1024

EXPORT_SQL = """
WITH open_locations AS (
    SELECT tickets.place_key(location_name) AS key, count(*) AS n
      FROM tickets.inc WHERE is_actionable GROUP BY 1
), open_clusters AS (
    SELECT tickets.cluster_key_of(cluster) AS key, count(*) AS n
      FROM tickets.inc WHERE is_actionable GROUP BY 1
)
SELECT 'cluster', g.cluster_key, g.cluster, NULL, g.region, g.latitude, g.longitude,
       g.status, g.verified, NULL, g.confidence, g.provider, g.query, g.display_name,
       g.last_error, g.fetched_at, coalesce(o.n, 0)
  FROM tickets.geo_clusters g LEFT JOIN open_clusters o ON o.key = g.cluster_key
UNION ALL
SELECT 'location', g.location_key, g.location_name, g.cluster_key, g.region, g.latitude,
       g.longitude, g.status, g.verified, g.distance_km, g.confidence, g.provider, g.query,
       g.display_name, g.last_error, g.fetched_at, coalesce(o.n, 0)
  FROM tickets.geo_locations g LEFT JOIN open_locations o ON o.key = g.location_key
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Edit:
    line: int
    kind: Kind
    key: str
    name: str
    cluster_key: str | None
    region: str | None
    point: tuple[float, float] | None  # (lat, lon)
    verified: bool


@dataclass
class ImportReport:
    rows: int = 0
    inserted: list[tuple[str, str]] = field(default_factory=list)  # (kind, key)
    changed: list[tuple[str, str]] = field(default_factory=list)
    tickets_moved: int = 0
    applied: bool = True


def export_csv(settings: Settings, out: Path) -> int:
    """Write every gazetteer row to `out`; returns the number of rows."""
    with connect(settings) as conn:
        require_current_schema(conn)
        rows = conn.execute(EXPORT_SQL).fetchall()
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([_cell(value) for value in row] for row in rows)
    logger.info("exported %d gazetteer rows to %s", len(rows), out)
    return len(rows)


def import_csv(settings: Settings, path: Path, *, dry_run: bool = False) -> ImportReport:
    """Apply reviewed coordinates and `verified` flags, all or nothing.

    Only latitude, longitude and verified are taken from existing rows; new
    rows also take name, cluster_key and region. Changed coordinates become an
    'ok' operator answer (provider 'manual'); cleared ones a 'rejected' row.
    A dry run does all of it and rolls it back, so its counts are the real ones.
    """
    edits = read_edits(path)
    report = ImportReport(rows=len(edits), applied=not dry_run)
    with connect(settings, autocommit=True) as conn, job_lock(conn, "geocode"):
        require_current_schema(conn)
        with conn.transaction():
            for edit in edits:
                _apply(conn, edit, report)
            _refresh(conn, report)
            if dry_run:
                raise psycopg.Rollback
    return report


def read_edits(path: Path) -> list[Edit]:
    """Parse and validate the whole file; any problem raises before anything is applied.

    Lines are counted as a spreadsheet writes them (LF, CRLF or CR), never at
    characters such as U+2028 that str.splitlines would also break at, and a
    problem names the line its record starts on.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GazetteerImportError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    edits: list[Edit] = []
    seen: dict[tuple[str, str], int] = {}
    header: list[str] | None = None
    end = 0  # the line the previous record ended on
    try:
        for values in reader:
            line, end = end + 1, reader.line_num
            if not values:
                continue
            if header is None:
                header = values
                problems += _header_problems(header)
                if problems:
                    break
                continue
            if any("\x00" in value for value in values):
                problems.append(f"line {line}: contains a NUL character")
                continue
            longest = max(map(len, values))
            if longest > MAX_CELL_CHARS:
                problems.append(
                    f"line {line}: a cell is {longest:,} characters long; "
                    f"gazetteer cells hold at most {MAX_CELL_CHARS:,}"
                )
                continue
            try:
                edit = _edit(line, _as_row(header, values))
            except ValueError as exc:
                problems.append(f"line {line}: {exc}")
                continue
            first = seen.setdefault((edit.kind, edit.key), line)
            if first != line:
                problems.append(f"line {line}: {edit.kind} {edit.key!r} already on line {first}")
            edits.append(edit)
    except csv.Error as exc:
        problems.append(f"line {end + 1}: {_csv_problem(exc)}")
    if header is None and not problems:
        problems.append("the file is empty: there is no header row")
    if problems:
        raise GazetteerImportError(_summary(path, problems))
    return edits


def _as_row(header: list[str], values: list[str]) -> dict[str, Any]:
    if len(values) > len(header):
        raise ValueError(f"{len(values)} cells, but the header has {len(header)} columns")
    # A spreadsheet may drop trailing empty cells: those read as blank.
    return dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    if "unexpected end of data" in text:
        return "a quote opened in this record is never closed"
    if "expected after" in text:
        return f"text follows a closing quote ({text}); a quote inside a cell must be doubled"
    return f"not readable as CSV ({text})"


def _header_problems(header: list[str]) -> list[str]:
    problems = []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        problems.append(
            "unknown columns " + ", ".join(repr(n) for n in unknown) + " (known: " + ", ".join(COLUMNS) + ")"
        )
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        problems.append("missing columns " + ", ".join(missing))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        problems.append("repeated columns " + ", ".join(repeated))
    return problems


def _edit(line: int, row: dict[str, Any]) -> Edit:
    kind = cast(Kind, (row.get("kind") or "").strip().lower())
    if kind not in TABLES:
        raise ValueError(f"kind must be 'cluster' or 'location', not {row.get('kind')!r}")
    key = place_key(row.get("key"))
    if key is None:
        raise ValueError("key is blank")
    verified_text = row.get("verified") or ""
    # A blank cell reads as false: a spreadsheet leaves unticked cells empty.
    verified = parse_bool(verified_text) if verified_text.strip() else False
    if verified is None:
        raise ValueError(f"verified must be true or false, not {row.get('verified')!r}")
    name = (row.get("name") or "").strip() or key
    region = (row.get("region") or "").strip().lower() or None
    cluster_key = place_key(row.get("cluster_key")) if kind == "location" else None
    return Edit(line, kind, key, name, cluster_key, region, _point(row), verified)


def _point(row: dict[str, Any]) -> tuple[float, float] | None:
    lat_text = (row.get("latitude") or "").strip()
    lon_text = (row.get("longitude") or "").strip()
    if not lat_text and not lon_text:
        return None
    if not lat_text or not lon_text:
        raise ValueError("latitude and longitude must both be filled or both be blank")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise ValueError(f"coordinates {lat_text!r}, {lon_text!r} are not numbers") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise ValueError(f"latitude {lat_text} is outside -90..90")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise ValueError(f"longitude {lon_text} is outside -180..180")
    if lat == 0 and lon == 0:
        raise ValueError("coordinates 0, 0 are a blank, not a place")
    return lat, lon


def _summary(path: Path, problems: list[str]) -> str:
    shown = problems[:MAX_REPORTED]
    more = len(problems) - len(shown)
    tail = f"\n  ... and {more} more" if more else ""
    return (
        f"{path}: {len(problems)} problem(s); nothing was imported. Fix the file and "
        "import it again:\n  " + "\n  ".join(shown) + tail
    )


def _apply(conn: psycopg.Connection, edit: Edit, report: ImportReport) -> None:
    table = TABLES[edit.kind]
    name, key_column = sql.Identifier(table.name), sql.Identifier(table.key_column)
    current = conn.execute(
        sql.SQL("SELECT latitude, longitude, status, verified FROM tickets.{} WHERE {} = %s").format(name, key_column),
        (edit.key,),
    ).fetchone()
    if current is None:
        if edit.point is None and not edit.verified:
            raise GazetteerImportError(
                f"line {edit.line}: new {edit.kind} {edit.key!r} has no coordinates; fill "
                "them in or mark it verified (a place that cannot be found); nothing was imported"
            )
        _insert(conn, edit, table)
        report.inserted.append((edit.kind, edit.key))
        return
    lat, lon, status, verified = current
    stored = None if lat is None else (lat, lon)
    moved = not _same_point(stored, edit.point)
    new_status = status
    if edit.point is not None and (moved or edit.verified):
        new_status = "ok"
    elif edit.point is None and stored is not None:
        new_status = "rejected"
    if not moved and new_status == status and edit.verified == verified:
        return
    lat, lon = edit.point if edit.point else (None, None)
    provider = sql.SQL(", provider = 'manual', last_error = NULL" if moved and edit.point else "")
    conn.execute(
        sql.SQL(
            "UPDATE tickets.{} SET latitude = %s, longitude = %s, status = %s, "
            "verified = %s, updated_at = now(){} WHERE {} = %s"
        ).format(name, provider, key_column),
        (lat, lon, new_status, edit.verified, edit.key),
    )
    report.changed.append((edit.kind, edit.key))


def _insert(conn: psycopg.Connection, edit: Edit, table: GazetteerTable) -> None:
    lat, lon = edit.point if edit.point else (None, None)
    columns = [table.key_column, table.name_column, "region", "latitude", "longitude", "status", "verified", "provider"]
    values: list[Any] = [
        edit.key,
        edit.name,
        edit.region,
        lat,
        lon,
        "ok" if edit.point else "not_found",
        edit.verified,
        "manual",
    ]
    if edit.kind == "location":
        columns.append("cluster_key")
        values.append(edit.cluster_key)
    conn.execute(
        sql.SQL("INSERT INTO tickets.{} ({}) VALUES ({})").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
        ),
        values,
    )


def _refresh(conn: psycopg.Connection, report: ImportReport) -> None:
    touched = set(report.changed + report.inserted)
    locations = sorted(k for kind, k in touched if kind == "location")
    clusters = sorted(k for kind, k in touched if kind == "cluster")
    if locations:
        conn.execute(
            "UPDATE tickets.geo_locations g SET distance_km = CASE WHEN g.geom IS NULL "
            "THEN NULL ELSE ST_DistanceSphere(g.geom, c.geom) / 1000.0 END "
            "FROM tickets.geo_locations l LEFT JOIN tickets.geo_clusters c "
            "ON c.cluster_key = l.cluster_key AND c.status = 'ok' "
            "WHERE g.location_key = l.location_key AND g.location_key = ANY(%s)",
            (locations,),
        )
    if locations or clusters:
        report.tickets_moved = refresh_geometry(conn, locations=locations, clusters=clusters)


def _same_point(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    if a is None or b is None:
        return a is b
    # A spreadsheet may round-trip the last digits; 1e-7 degrees is about 1 cm.
    return abs(a[0] - b[0]) < 1e-7 and abs(a[1] - b[1]) < 1e-7


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
