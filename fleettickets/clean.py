"""Reading one change file as a stream of cleaned, dropped and rejected rows."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

from fleettickets.errors import BadChangeFile

# Export noise (feed contract): never stored.
DROPPED_COLUMNS = frozenset(
    {
        "week_start",
        "week_end",
        "source_s3_bucket",
        "source_s3_key",
        "source_snapshot_id",
        "department",
        "source_type",
    }
)
TRUE_TEXTS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TEXTS = frozenset({"false", "f", "no", "n", "0"})
SENTINEL_PREFIX = "EXPORT STOPPED"
MAX_KEPT_REJECTIONS = 100
# Limits (README, "Limits"): past them a file is refused, or a row rejected.
# A ticket_id must fit the indexes that include it (migration 25).
MAX_TICKET_ID_CHARS = 100
# One cell: generous, far past any real export, still bounded in memory.
MAX_FIELD_CHARS = 16 * 1024 * 1024
# The staging table holds one column per kept column; PostgreSQL allows 1,600.
MAX_COLUMNS = 1500

# Large enough that the per-read overhead vanishes, small enough to stay cheap.
_CHUNK_BYTES = 1 << 20
_BOM = "\ufeff"
_BLANK_TO_NONE = {"": None}.get


class BinaryStream(Protocol):
    """Anything with ``read(size) -> bytes``: an open file, an S3 StreamingBody."""

    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class CleanRow:
    """A ticket row to load: ``line`` is where its record starts in the file."""

    line: int
    ticket_id: str
    record: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class DroppedRow:
    """A row that is not a ticket (``reason`` is ``alarm`` or ``sentinel``)."""

    line: int
    ticket_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that should have been a ticket but cannot be loaded."""

    line: int
    reason: str


Row = CleanRow | DroppedRow | RejectedRow


@dataclass
class FileCounts:
    """What became of a file's rows; keeps the first rejections, counts them all."""

    rows_read: int = 0
    clean: int = 0
    dropped_alarms: int = 0
    dropped_sentinels: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows_read += 1
        if isinstance(row, CleanRow):
            self.clean += 1
        elif isinstance(row, DroppedRow):
            if row.reason == "alarm":
                self.dropped_alarms += 1
            else:
                self.dropped_sentinels += 1
        else:
            self.rejected += 1
            if len(self.rejections) < MAX_KEPT_REJECTIONS:
                self.rejections.append((row.line, row.reason))

    def tally(self, rows: Iterable[Row]) -> Iterator[CleanRow]:
        """Count every row and pass on only the clean ones."""
        for row in rows:
            self.add(row)
            if isinstance(row, CleanRow):
                yield row


def parse_bool(text: str | None) -> bool | None:
    """Read a feed boolean (true/TRUE/1/yes, false/FALSE/0/no); else None.

    The Python twin of SQL tickets.to_bool(), which reads the stored rows: like
    it, only spaces around the word are ignored (tests/test_rules.py).
    """
    if text is None:
        return None
    folded = text.strip(" ").lower()
    if folded in TRUE_TEXTS:
        return True
    if folded in FALSE_TEXTS:
        return False
    return None


def clean_record(row: Mapping[str, str | None]) -> dict[str, str | None]:
    """Apply the column rules to one row given as column name -> text."""
    return _record_maker(list(row))([value or "" for value in row.values()])


def read_change_file(stream: BinaryStream, source: str) -> Iterator[Row]:
    """Yield each record of a change file as a clean, dropped or rejected row.

    ``stream`` is read in chunks through ``read(size)`` (an open binary file, an
    S3 ``StreamingBody``); ``source`` names the file in messages.  Blank lines are
    skipped.  Raises :class:`BadChangeFile` when the file cannot be read at all,
    including when its CSV structure is broken (a quote that never closes where
    it should): such a file is refused whole, never half-loaded, because the
    records a stray quote swallowed cannot be told apart from data.
    """
    _allow_long_fields()
    nul_seen: list[bool] = []  # set by _text_lines: only then do rows pay the NUL check
    record_lines: list[str] = []  # the physical lines of the record being read
    reader = csv.reader(_kept(_text_lines(stream, source, nul_seen), record_lines), strict=True)
    line_end = 0  # physical lines consumed so far: the previous record's end
    try:
        header: list[str] = []
        header_line = 0
        for header in reader:
            header_line, line_end = line_end + 1, reader.line_num
            record_lines.clear()
            if header:
                break
        if not header:
            raise BadChangeFile(source, "the file is empty: there is no header row")
        columns = _check_header(header, source, header_line)
        width = len(columns)
        key = columns.index("ticket_id")
        alarm = columns.index("is_alarm") if "is_alarm" in columns else None
        make_record = _record_maker(columns)
        for values in reader:
            line, line_end = line_end + 1, reader.line_num
            spans_lines = line_end > line
            if spans_lines and len(values) != width:
                # A quoted field crossed a line break and the record came out
                # the wrong width: the lines it took in were other records.
                raise BadChangeFile(
                    source,
                    f"a quote opened here does not close where it should: the record "
                    f"it starts runs to line {line_end} and has {len(values)} fields, "
                    f"header has {width}; nothing was read from the file (re-export it)",
                    _quote_opening_line(record_lines, line),
                )
            record_lines.clear()
            if not values:
                continue
            if len(values) != width:
                first = next((v.strip() for v in values if v.strip()), "")
                if _is_sentinel(first):
                    # The exporter may write the sentinel as a lone cell.
                    yield DroppedRow(line, first, "sentinel")
                else:
                    reason = f"row has {len(values)} fields, header has {width}"
                    yield RejectedRow(line, reason)
                continue
            ticket = values[key].strip()
            if nul_seen and any("\x00" in value for value in values):
                # PostgreSQL text cannot hold NUL; one such cell must not sink the file.
                yield RejectedRow(line, "contains a NUL character, which cannot be stored")
            elif _is_sentinel(ticket):
                yield DroppedRow(line, ticket, "sentinel")
            elif alarm is not None and parse_bool(values[alarm]):
                yield DroppedRow(line, ticket, "alarm")
            elif not ticket:
                yield RejectedRow(line, "blank ticket_id")
            elif len(ticket) > MAX_TICKET_ID_CHARS:
                yield RejectedRow(
                    line,
                    f"ticket_id is {len(ticket):,} characters long; at most {MAX_TICKET_ID_CHARS} are allowed",
                )
            else:
                yield CleanRow(line, ticket, make_record(values))
    except csv.Error as exc:
        start = line_end + 1
        raise BadChangeFile(source, _csv_error_reason(exc), _quote_opening_line(record_lines, start)) from exc


def _allow_long_fields() -> None:
    # Process-wide in the csv module; only ever raised, never lowered.
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)


def _kept(lines: Iterator[str], kept: list[str]) -> Iterator[str]:
    for text in lines:
        kept.append(text)
        yield text


def _csv_error_reason(exc: csv.Error) -> str:
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return (
            f"a field is longer than {MAX_FIELD_CHARS:,} characters, the most a "
            "change file may hold in one cell; nothing was read from the file"
        )
    if "expected after" in text or "unexpected end of data" in text:
        return (
            f"a quote opened here does not close where it should ({text}); "
            "nothing was read from the file (re-export it)"
        )
    return f"not readable as CSV ({text})"


def _quote_opening_line(lines: list[str], first_line: int) -> int:
    """The line on which the quote that broke a record opened.

    That is the quote followed by text other than a comma or a line end, or
    the one still open at the end of the file; failing both (a record of the
    wrong width), the first quoted field that crosses a line break; failing
    that, the record's first line.
    """
    quoted = pending = False  # pending: inside quotes, a '"' seen (closing, or the first of '""')
    at_field_start = True
    opened_on = crossing = 0
    for offset, text in enumerate(lines):
        for char in text:
            if quoted:
                if not pending:
                    pending = char == '"'
                    continue
                pending = False
                if char == '"':
                    continue  # an escaped quote
                if char not in ",\r\n":
                    return opened_on  # text after a closing quote
                quoted = False
            if char == '"' and at_field_start:
                quoted, opened_on = True, first_line + offset
            at_field_start = char in ",\r\n"
        if quoted and not pending and not crossing:
            crossing = opened_on
    if quoted and not pending:
        return opened_on  # never closed
    return crossing or first_line


def _text_lines(stream: BinaryStream, source: str, nul_seen: list[bool]) -> Iterator[str]:
    """Decode physical lines, keeping their endings as csv wants (newline="").

    Decoding line by line, rather than through a TextIOWrapper, lets a bad byte be
    reported on its own line instead of somewhere in an 8 KiB block.
    """
    line_count = 0
    carry = b""
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        if not chunk:
            break
        pieces = (carry + chunk).splitlines(keepends=True)
        # A piece not ending in \n may be cut short, or be half of a \r\n.
        carry = b"" if pieces[-1].endswith(b"\n") else pieces.pop()
        if b"\x00" in chunk and not nul_seen:
            nul_seen.append(True)
        if pieces:
            yield from _decode(pieces, source, line_count)
            line_count += len(pieces)
    if carry:
        yield from _decode([carry], source, line_count)


def _decode(pieces: list[bytes], source: str, before: int) -> list[str]:
    try:
        lines = list(map(bytes.decode, pieces))
    except UnicodeDecodeError:
        for offset, piece in enumerate(pieces):
            try:
                piece.decode()
            except UnicodeDecodeError as exc:
                raise BadChangeFile(
                    source,
                    f"bytes that are not UTF-8 ({exc.reason} at byte {exc.start + 1} "
                    "of the line); re-export the file as UTF-8",
                    before + offset + 1,
                ) from exc
        raise
    if before == 0 and lines[0].startswith(_BOM):
        lines[0] = lines[0][1:]
    return lines


def _check_header(header: Sequence[str], source: str, line: int) -> list[str]:
    columns = [name.strip() for name in header]
    if len(columns) > MAX_COLUMNS:
        raise BadChangeFile(source, f"header has {len(columns):,} columns; at most {MAX_COLUMNS:,} are supported", line)
    with_nul = next((i for i, name in enumerate(columns, 1) if "\x00" in name), None)
    if with_nul is not None:
        raise BadChangeFile(source, f"header column {with_nul} contains a NUL character", line)
    if "" in columns:
        position = columns.index("") + 1
        raise BadChangeFile(source, f"header column {position} has no name", line)
    repeated = sorted(name for name, n in Counter(columns).items() if n > 1)
    if repeated:
        names = ", ".join(repeated)
        raise BadChangeFile(source, f"duplicate column names in header: {names}", line)
    if "ticket_id" not in columns:
        found = ", ".join(columns[:8]) + (", …" if len(columns) > 8 else "")
        raise BadChangeFile(source, f"header has no ticket_id column (found: {found})", line)
    return columns


def _is_sentinel(ticket: str) -> bool:
    return ticket[: len(SENTINEL_PREFIX)].upper() == SENTINEL_PREFIX


def _record_maker(
    columns: Sequence[str],
) -> Callable[[list[str]], dict[str, str | None]]:
    """Build the per-row cleaner for one header, so rows pay no lookups."""
    kept = [(pos, name) for pos, name in enumerate(columns) if name not in DROPPED_COLUMNS]
    names = [name for _, name in kept]
    pick = _picker([pos for pos, _ in kept], len(columns))

    def make(values: list[str]) -> dict[str, str | None]:
        chosen = pick(values)
        # map and dict.get keep the common case in C: "" -> None, text -> text.
        record = dict(zip(names, map(_BLANK_TO_NONE, chosen, chosen), strict=False))
        if any(map(str.isspace, chosen)):
            for name, value in record.items():
                if value is not None and value.isspace():
                    record[name] = None
        ticket = record.get("ticket_id")
        if ticket is not None:
            record["ticket_id"] = ticket.strip()
        region = record.get("region")
        if region is not None:
            record["region"] = region.lower()
        status = record.get("raw_status")
        if status is not None:
            record["raw_status"] = status.upper()
        return record

    return make


def _picker(positions: list[int], width: int) -> Callable[[list[str]], Sequence[str]]:
    if len(positions) == width:
        return lambda values: values
    if len(positions) == 1:
        only = positions[0]
        return lambda values: (values[only],)
    if not positions:
        return lambda values: ()
    return itemgetter(*positions)
