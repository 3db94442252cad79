"""An independent model of how a change file must be read, for the fuzzed accounting test.

Written from the feed contract and the documented limits, apart from
fleettickets.clean on purpose: a character-by-character CSV tokenizer (RFC 4180
with strict quotes) and the row rules, with no code shared with the loader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

NOISE = {
    "week_start",
    "week_end",
    "source_s3_bucket",
    "source_s3_key",
    "source_snapshot_id",
    "department",
    "source_type",
}
TRUE_TEXTS = {"true", "t", "yes", "y", "1"}
MAX_TICKET_ID_CHARS = 100
MAX_COLUMNS = 1500


class Refused(Exception):
    """The whole file must be refused; ``line`` is where, when the model knows."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line


@dataclass
class Record:
    start: int  # physical line where the record starts
    end: int  # physical line where it ends
    fields: list[str]
    crossing: int | None = None  # where the first quoted field that crosses a line break opened


@dataclass
class Outcome:
    loaded: dict[str, dict[str, str | None]] = field(default_factory=dict)  # ticket -> raw, later row wins
    clean: int = 0
    alarms: int = 0
    sentinels: int = 0
    rejected: list[int] = field(default_factory=list)  # lines

    @property
    def records(self) -> int:
        return self.clean + self.alarms + self.sentinels + len(self.rejected)


def tokenize(text: str) -> Iterator[Record]:
    """Records of ``text`` in order; physical lines end at CRLF, LF or CR; blank lines are no record."""
    line = 1
    i, n = 0, len(text)
    while i < n:
        start = line
        crossing = None
        fields: list[str] = []
        if text[i] in "\r\n":  # a blank line
            i += 2 if text.startswith("\r\n", i) else 1
            line += 1
            continue
        while True:  # one field per pass
            value: list[str] = []
            if i < n and text[i] == '"':
                opened = line
                i += 1
                while True:
                    if i >= n:
                        raise Refused("a quote is never closed", opened)
                    char = text[i]
                    if char == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            value.append('"')
                            i += 2
                            continue
                        i += 1
                        if i < n and text[i] not in ",\r\n":
                            raise Refused("text follows a closing quote", opened)
                        break
                    if char == "\r" or char == "\n":
                        crossing = crossing or opened
                        step = 2 if text.startswith("\r\n", i) else 1
                        value.append(text[i : i + step])
                        i += step
                        line += 1
                        continue
                    value.append(char)
                    i += 1
            else:
                while i < n and text[i] not in ",\r\n":
                    value.append(text[i])
                    i += 1
            fields.append("".join(value))
            if i < n and text[i] == ",":
                i += 1
                continue
            break
        end = line
        if i < n:  # the line break that ends the record
            i += 2 if text.startswith("\r\n", i) else 1
            line += 1
        yield Record(start, end, fields, crossing)


def read_file(data: bytes) -> Outcome:
    """What loading ``data`` must do, or Refused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused("not UTF-8") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    records = tokenize(text)
    header = next(records, None)
    if header is None:
        raise Refused("no header")
    names = [name.strip() for name in header.fields]
    if len(names) > MAX_COLUMNS:
        raise Refused("too many columns", header.start)
    if any("\x00" in name for name in names) or "" in names or len(set(names)) < len(names):
        raise Refused("bad column names", header.start)
    if "ticket_id" not in names:
        raise Refused("no ticket_id", header.start)
    width = len(names)
    outcome = Outcome()
    for row in records:
        if row.end > row.start and len(row.fields) != width:
            raise Refused("a quoted field crosses lines into a record of the wrong width", row.crossing)
        if len(row.fields) != width:
            first = next((v.strip() for v in row.fields if v.strip()), "")
            if is_sentinel(first):
                outcome.sentinels += 1
            else:
                outcome.rejected.append(row.start)
            continue
        values = dict(zip(names, row.fields, strict=False))
        ticket = values["ticket_id"].strip()
        if any("\x00" in v for v in row.fields):
            outcome.rejected.append(row.start)
        elif is_sentinel(ticket):
            outcome.sentinels += 1
        elif values.get("is_alarm", "").strip().lower() in TRUE_TEXTS:
            outcome.alarms += 1
        elif not ticket or len(ticket) > MAX_TICKET_ID_CHARS:
            outcome.rejected.append(row.start)
        else:
            outcome.clean += 1
            outcome.loaded.pop(ticket, None)
            outcome.loaded[ticket] = raw_of(values, ticket)
    return outcome


def is_sentinel(text: str) -> bool:
    return text[:14].upper() == "EXPORT STOPPED"


def raw_of(values: dict[str, str], ticket: str) -> dict[str, str | None]:
    raw: dict[str, str | None] = {}
    for name, value in values.items():
        if name in NOISE:
            continue
        raw[name] = None if value == "" or value.isspace() else value
    raw["ticket_id"] = ticket
    if raw.get("region") is not None:
        raw["region"] = raw["region"].lower()  # type: ignore[union-attr]
    if raw.get("raw_status") is not None:
        raw["raw_status"] = raw["raw_status"].upper()  # type: ignore[union-attr]
    return raw
