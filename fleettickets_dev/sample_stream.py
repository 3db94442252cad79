"""A deterministic sample of the INC change stream, written as CSV files.

Every value derives from ``seed`` and a ticket's index, so a ticket's state at any
version can be regenerated without remembering it; rows are written as they are
made, which keeps memory flat for million-row files.

With ``hard_cases=True``, :func:`write_sample_stream` plants the feed contract's
awkward inputs.  File 0 is the baseline, file *k* the k-th delta; a case planned
for a file beyond the last one lands in the last file (see :func:`hard_case_files`).

- file 0: ``bom`` (UTF-8 byte-order mark); ``quoted_fields`` (a location_name with
  a comma, an assigned_team with double quotes, a location_name with a line
  break); ``alarm_rows`` (two rows with is_alarm ``true`` and ``TRUE``).
- file 1: ``crlf`` (CRLF line endings); ``boolean_variants`` (three rows whose
  booleans read ``TRUE``/``FALSE``, ``1``/``0`` and blank).
- file 2: ``reordered_columns`` (ticket_id is not first); ``time_formats`` (three
  rows with a ``T`` separator, fractional seconds, no seconds).
- file 3: ``extra_column`` (an unknown ``escalation_level`` column after owner);
  ``debris`` (``#VALUE!``, ``0000-00-00 00:00:00`` and ``N/A`` in time and text
  fields of three rows).
- file 4: ``missing_column`` (no ``scheduled_at``); ``duplicate_ticket`` (one
  ticket twice, the later row holding the newer state).
- file 5: ``blank_ticket_id`` (one row with an empty ticket_id);
  ``mixed_case`` (three rows with odd-case region and raw_status).
- file 6: ``sentinel`` (an ``EXPORT STOPPED …`` row, the rest blank, last in file).

The same list is available as data in :data:`HARD_CASES`.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from hashlib import blake2b
from math import gcd
from pathlib import Path

CONTRACT_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "raw_status",
    "normalized_status",
    "bucket",
    "is_actionable",
    "service_type",
    "cluster",
    "region",
    "location_name",
    "assigned_team",
    "owner",
    "sla_status",
    "mttr",
    "created_at_service",
    "scheduled_at",
    "closed_at",
    "first_seen_at",
    "last_seen_at",
    "source_created_at",
    "source_updated_at",
    "latitude",
    "longitude",
    "is_alarm",
    "is_auto_created",
    "is_auto_closed",
    "week_start",
    "week_end",
    "source_s3_bucket",
    "source_s3_key",
    "source_snapshot_id",
    "department",
    "source_type",
)
_COL = {name: pos for pos, name in enumerate(CONTRACT_COLUMNS)}
# The seven timestamps stand together in the contract, from created_at_service on.
TIME_COLUMNS = CONTRACT_COLUMNS[_COL["created_at_service"] : _COL["source_updated_at"] + 1]

DEFAULT_START = datetime(2026, 6, 15, 6, 0)
# Ticket content trails the file timestamps by about two days (feed contract).
CONTENT_LAG = timedelta(days=2)
SENTINEL_TEXT = "EXPORT STOPPED: wm_task.xlsx could not be read (n8n execution 48213)"
EXTRA_COLUMN = "escalation_level"
MISSING_COLUMN = "scheduled_at"

# Ids come from an affine permutation of the index, so they look scattered yet
# never collide; the top of the space is kept for rows that are not tickets.
_ID_SPACE = 2**21
_ID_STEP = 1_234_567  # odd, hence coprime with the power-of-two space
MAX_TICKETS = _ID_SPACE - 16
_ALARM_INDEX = MAX_TICKETS
_BLANK_ID_INDEX = MAX_TICKETS + 8

_CLUSTERS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "Quarry Road",
        "QOA",
        "Nairobi East",
        ("QUARRY_ROAD_STAGE", "MUKURU_KAYABA", "SOUTH_B_SHOPPING_CENTRE", "HAZINA_ESTATE", "ENTERPRISE_ROAD"),
    ),
    ("Pipeline", "PTMP", "Nairobi East", ("PIPELINE_STAGE", "FEDHA_ESTATE", "TASSIA", "NYAYO_ESTATE", "OUTERING_ROAD")),
    ("Kayole", "", "Nairobi East", ("KAYOLE_JUNCTION", "KAYOLE_SPINE_ROAD", "SOWETO_KAYOLE", "MIHANGO", "MATOPENI")),
    (
        "Embakasi",
        "",
        "Nairobi East",
        ("EMBAKASI_VILLAGE", "JKIA_CARGO", "OLD_AIRPORT_NORTH_RD", "UTAWALA", "MASKANI_ESTATE"),
    ),
    (
        "Westlands",
        "",
        "Nairobi West",
        ("SARIT_CENTRE", "MUTHITHI_ROAD", "PARKLANDS_3RD_AVE", "KANGEMI_MARKET", "MOUNTAIN_VIEW"),
    ),
    ("Kasarani", "", "Nairobi North", ("KASARANI_STADIUM", "MWIKI", "SUNTON", "CLAYWORKS", "HUNTERS")),
    ("Rongai", "", "Nairobi South", ("RONGAI_TOWN", "TUMAINI", "KWARE", "MAASAI_LODGE", "NKOROI")),
    ("Kitengela", "", "Nairobi South", ("KITENGELA_TOWN", "YUKOS", "NEW_VALLEY", "KISAJU", "MILIMANI_KITENGELA")),
    ("Ruaka", "", "Nairobi North", ("RUAKA_TOWN", "NDENDERU", "TWO_RIVERS", "GACHIE", "BANANA_HILL")),
    ("Umoja", "", "Nairobi East", ("UMOJA_II_MARKET", "UMOJA_INNERCORE", "MOI_DRIVE", "KOMAROCK", "KARIOBANGI_SOUTH")),
    ("Donholm", "", "Nairobi East", ("DONHOLM_PHASE_8", "SAVANNAH", "GREENSPAN_MALL", "JACARANDA", "HARAMBEE_ESTATE")),
    ("Thika Road", "", "Nairobi North", ("ROYSAMBU", "ZIMMERMAN", "GITHURAI_44", "KAHAWA_WENDANI", "TRM_MALL")),
)
_SITE_PATTERNS = (
    "NW_{}_FDT{}",
    "ADR_MNT_{}",
    "SDUS_{}",
    "NW_{}",
    "{}_FDT{}",
    "ADR_MNT_{}_FDT{}",
)
_OWNERS = (
    "j.mwangi",
    "a.otieno",
    "p.kamau",
    "m.wanjiru",
    "d.ochieng",
    "s.njoroge",
    "k.kiprop",
    "b.achieng",
    "e.mutua",
    "g.wambui",
    "f.odhiambo",
    "l.chebet",
    "n.kariuki",
    "c.muthoni",
    "t.omondi",
    "r.nyambura",
)
_RAW_STATUS = {
    "open": ("Open", "New", "OPEN"),
    "assigned": ("Assigned", "ASSIGNED", "Dispatched"),
    "in_progress": ("In Progress", "Work In Progress", "in progress"),
    "on_hold": ("On Hold", "Pending Customer"),
    "resolved": ("Resolved", "RESOLVED"),
    "closed": ("Closed", "closed"),
    "cancelled": ("Cancelled", "Canceled"),
}
_PATHS = (
    ("open", "assigned", "in_progress", "resolved", "closed"),
    ("open", "assigned", "in_progress", "on_hold", "in_progress", "resolved", "closed"),
    ("open", "assigned", "in_progress", "closed"),
    ("open", "assigned", "cancelled"),
)
# After a final state a ticket can only move by being reopened.
_REOPEN_TAIL = ("assigned", "in_progress", "resolved", "closed")
CLOSED_STATUSES = frozenset({"resolved", "closed", "cancelled"})
FINAL_STATUSES = frozenset({"closed", "cancelled"})


@dataclass(frozen=True)
class HardCase:
    """One awkward input the stream can carry, and the file it is planned for."""

    name: str
    file_index: int
    rows: int  # rows affected or added; 0 for whole-file cases
    description: str


HARD_CASES: tuple[HardCase, ...] = (
    HardCase("bom", 0, 0, "the file starts with a UTF-8 byte-order mark"),
    HardCase("quoted_fields", 0, 3, "a quoted comma, quotes and a line break"),
    HardCase("alarm_rows", 0, 2, "rows with is_alarm true and TRUE"),
    HardCase("crlf", 1, 0, "CRLF line endings"),
    HardCase("boolean_variants", 1, 3, "booleans as TRUE/FALSE, 1/0 and blank"),
    HardCase("reordered_columns", 2, 0, "columns in a different order"),
    HardCase("time_formats", 2, 3, "times with T, fractional seconds, no seconds"),
    HardCase("extra_column", 3, 0, f"an unknown column {EXTRA_COLUMN!r}"),
    HardCase("debris", 3, 3, "#VALUE!, 0000-00-00 00:00:00 and N/A"),
    HardCase("missing_column", 4, 0, f"the {MISSING_COLUMN!r} column is absent"),
    HardCase("duplicate_ticket", 4, 1, "a ticket twice, the later row newer"),
    HardCase("blank_ticket_id", 5, 1, "a row with an empty ticket_id"),
    HardCase("mixed_case", 5, 3, "odd-case region and raw_status"),
    HardCase("sentinel", 6, 1, "an EXPORT STOPPED row, last in the file"),
)


def hard_case_files(deltas: int) -> dict[str, int]:
    """Map each hard case to the file it lands in for a stream with ``deltas``."""
    return {case.name: min(case.file_index, deltas) for case in HARD_CASES}


def file_name(at: datetime) -> str:
    """The change file name for an EAT wall-clock time."""
    return at.strftime("%Y-%m-%dT%H-%M-%S") + ".csv"


def ticket_id(seed: int, index: int) -> str:
    """The ticket id of ticket ``index``; unique for indexes below MAX_TICKETS."""
    offset = _id_offset(seed)
    return f"WOT{700_000 + (index * _ID_STEP + offset) % _ID_SPACE:07d}"


def write_sample_stream(
    out_dir: Path | str,
    *,
    seed: int = 7,
    baseline_rows: int = 300,
    deltas: int = 6,
    delta_rows: int = 40,
    start: datetime = DEFAULT_START,
    interval_minutes: int = 20,
    hard_cases: bool = False,
) -> list[Path]:
    """Write a baseline and ``deltas`` change files; return their paths in order."""
    if baseline_rows + deltas * delta_rows > MAX_TICKETS:
        raise ValueError(f"at most {MAX_TICKETS} tickets fit in the id space")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = hard_case_files(deltas) if hard_cases else {}
    step = timedelta(minutes=interval_minutes)
    content0 = start - CONTENT_LAG
    # Only tickets a delta has touched are remembered, with each version's clock.
    history: dict[int, list[datetime]] = {}
    paths = []
    total = baseline_rows
    for k in range(deltas + 1):
        cases = {name for name, at in plan.items() if at == k}
        content = content0 + k * step
        if k == 0:
            rows: Iterable[list[str]] = (_ticket_row(seed, i, (content0,), False) for i in range(baseline_rows))
        else:
            picked, total = _pick_delta(seed, k, delta_rows, baseline_rows, total, history)
            gap = step / 2 if "duplicate_ticket" in cases else None
            rows = _delta_rows(seed, picked, baseline_rows, history, content0, content, gap)
        paths.append(out / file_name(start + k * step))
        _write(
            paths[-1],
            _with_hard_cases(rows, cases, seed, content),
            columns=_columns(cases),
            bom="bom" in cases,
            crlf="crlf" in cases,
        )
    return paths


def write_baseline_csv(path: Path | str, rows: int, *, seed: int = 7, start: datetime = DEFAULT_START) -> int:
    """Stream a plain baseline of tickets ``0..rows-1``; return the rows written."""
    if rows > MAX_TICKETS:
        raise ValueError(f"at most {MAX_TICKETS} tickets fit in the id space")
    content = (start - CONTENT_LAG,)
    _write(Path(path), (_ticket_row(seed, i, content, False) for i in range(rows)))
    return rows


def write_delta_csv(
    path: Path | str,
    rows: int,
    *,
    baseline_rows: int,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    at: datetime | None = None,
) -> int:
    """Stream the next state of ``rows`` distinct tickets of a baseline.

    ``seed`` and ``start`` must match the baseline's; ``at`` is the delta's file
    time (default twenty minutes after ``start``).  Mostly open tickets move
    on; now and then a final one comes back reopened.  Returns the rows written.
    """
    if rows > baseline_rows:
        raise ValueError("a delta of existing tickets cannot exceed the baseline")
    at = at or start + timedelta(minutes=20)
    times = (start - CONTENT_LAG, at - CONTENT_LAG)
    indexes = delta_indexes(rows, baseline_rows=baseline_rows, seed=seed)
    _write(Path(path), (_ticket_row(seed, i, times, False) for i in indexes))
    return rows


def delta_indexes(rows: int, *, baseline_rows: int, seed: int = 7) -> Iterator[int]:
    """The ticket indexes :func:`write_delta_csv` writes, in file order.

    A walk with a stride coprime to the baseline size visits each ticket once
    without remembering which were taken.  Final tickets are skipped except one
    in fifty, which comes back reopened; once open tickets run out, any will do.
    """
    stride = _coprime_stride(baseline_rows)
    first = _digest(seed, -2) % baseline_rows
    walk = ((first + j * stride) % baseline_rows for j in range(baseline_rows))
    final: list[int] = []
    for index in walk:
        if rows == 0:
            return
        if ticket_status(seed, index, 0) in FINAL_STATUSES and rows % 50:
            if len(final) < rows:
                final.append(index)
            continue
        rows -= 1
        yield index
    yield from final[:rows]


def ticket_status(seed: int, index: int, version: int, new: bool = False) -> str:
    """The normalized status of a ticket at a version (0 = when first written)."""
    bits = _Bits(_digest(seed, index))
    _identity(bits)
    path = _PATHS[bits.below(len(_PATHS))]
    first = 0 if new else _first_stage(bits, path)
    return _stage(path, first + version)[0]


class _Bits:
    """Small random draws from one wide hash: far cheaper than seeding a PRNG."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def below(self, n: int) -> int:
        self.value, r = divmod(self.value, n)
        return r

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent


@lru_cache(maxsize=64)
def _id_offset(seed: int) -> int:
    return _digest(seed, -1) % _ID_SPACE


@lru_cache(maxsize=1024)
def _snapshot_id(seed: int, ordinal: int) -> str:
    day = date.fromordinal(ordinal)
    return f"snap-{day:%Y%m%d}-{_digest(seed, -3, ordinal) % 10**6:06d}"


def _digest(seed: int, index: int, version: int = 0) -> int:
    key = b"%d:%d:%d" % (seed, index, version)
    return int.from_bytes(blake2b(key, digest_size=32).digest(), "little")


def _identity(bits: _Bits) -> tuple[str, str, str, str, str]:
    """Where a ticket is and who has it: cluster, region, site, team, owner."""
    cluster, code, region, places = _CLUSTERS[bits.below(len(_CLUSTERS))]
    if code and bits.chance(20):
        cluster = code
    pattern = _SITE_PATTERNS[bits.below(len(_SITE_PATTERNS))]
    site = pattern.format(places[bits.below(len(places))], 1 + bits.below(6))
    team = f"{region.split()[-1]} Team {1 + bits.below(4)}"
    return cluster, region, site, team, _OWNERS[bits.below(len(_OWNERS))]


def _stage(path: Sequence[str], stage: int) -> tuple[str, bool]:
    """The status at a stage, and whether it is the first step of a reopen."""
    if stage < len(path):
        return path[stage], False
    tail = (stage - len(path)) % len(_REOPEN_TAIL)
    return _REOPEN_TAIL[tail], tail == 0


def _first_stage(bits: _Bits, path: Sequence[str]) -> int:
    # About 40% of a baseline is already final, the rest spread over open states.
    if bits.chance(40):
        return len(path) - 1
    return bits.below(len(path) - 1)


def _ticket_row(seed: int, index: int, times: Sequence[datetime], new: bool) -> list[str]:
    """Ticket ``index`` at version ``len(times) - 1``, in contract column order.

    ``times[v]`` is the content clock of version v; for a baseline ticket
    ``times[0]`` is the baseline's clock, for a new ticket its creation.
    """
    bits = _Bits(_digest(seed, index))
    cluster, region, site, team, owner = _identity(bits)
    path = _PATHS[bits.below(len(_PATHS))]
    first = 0 if new else _first_stage(bits, path)
    if new:
        created = times[0] - timedelta(seconds=60 + bits.below(840))
    else:
        created = times[0] - timedelta(seconds=3600 + bits.below(13 * 86400))
    blank_cluster = bits.chance(3)
    blank_service_clock = bits.chance(30)
    scheduled = bits.chance(50)
    schedule_after = timedelta(minutes=30 * (2 + bits.below(96)))
    first_seen_after = timedelta(seconds=bits.below(1200))
    auto_created = bits.chance(8)
    auto_closed = bits.chance(5)
    work_share = 55 + bits.below(46)  # mttr leaves out time on hold
    sla_hours = 36 + bits.below(25)  # the source's own breach rule, not 48 h
    reach_share = 5 + bits.below(90)
    reach_closed = 1800 + bits.below(72 * 3600)

    # Version 0 of a baseline ticket was reached some time before the baseline;
    # later versions shortly before their file's clock, never out of order.
    clocks = [created]
    if not new and first > 0:
        if _stage(path, first)[0] in CLOSED_STATUSES:
            reach = created + timedelta(seconds=reach_closed)
        else:
            span = (times[0] - created).total_seconds()
            reach = created + timedelta(seconds=int(span * reach_share / 100))
        clocks[0] = min(reach, times[0] - timedelta(minutes=1))
    for v in range(1, len(times)):
        jitter = timedelta(seconds=_digest(seed, index, v) % 600)
        clocks.append(max(times[v] - jitter, clocks[-1] + timedelta(minutes=1)))

    version = len(times) - 1
    status, reopened = _stage(path, first + version)
    updated = clocks[-1]
    variant = _digest(seed, index, version) if version else bits.value
    raw = "Reopened" if reopened else _pick(_RAW_STATUS[status], variant)
    closed_at = mttr = ""
    is_closed = status in CLOSED_STATUSES
    if is_closed:
        since = version
        while since > 0 and _stage(path, first + since - 1)[0] in CLOSED_STATUSES:
            since -= 1
        hours = (clocks[since] - created).total_seconds() / 3600
        closed_at = _fmt(clocks[since])
        mttr = f"{max(0.25, round(hours * work_share / 100 * 4) / 4):.2f}"
        breached = hours > sla_hours
    else:
        breached = variant % 33 == 0
    created_text, updated_text = _fmt(created), _fmt(updated)
    day = updated.date()
    week_start = day - timedelta(days=day.weekday())
    return [
        ticket_id(seed, index),
        raw,
        status,
        "closed" if is_closed else "pending",
        _bool(not is_closed),
        "inc",
        "" if blank_cluster else cluster,
        region,
        site,
        team,
        "" if status == "open" else owner,
        "Breached" if breached else "Compliant",
        mttr,
        "" if blank_service_clock else created_text,
        _fmt(created + schedule_after) if scheduled else "",
        closed_at,
        _fmt(min(created + first_seen_after, clocks[0])),
        updated_text,
        created_text,
        updated_text,
        "",
        "",
        "false",
        _bool(auto_created),
        _bool(auto_closed and is_closed),
        week_start.isoformat(),
        (week_start + timedelta(days=6)).isoformat(),
        "wm-exports",
        f"exports/{day.isoformat()}/wm_task.xlsx",
        _snapshot_id(seed, day.toordinal()),
        "Field Operations",
        "wm_task_xlsx",
    ]


def _fmt(at: datetime) -> str:
    return at.isoformat(" ")


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _pick(options: Sequence[str], variant: int) -> str:
    return options[variant % len(options)]


def _coprime_stride(n: int) -> int:
    stride = max(1, int(n * 0.618))
    while gcd(stride, n) != 1:
        stride += 1
    return stride


def _pick_delta(
    seed: int,
    k: int,
    rows: int,
    baseline_rows: int,
    total: int,
    history: dict[int, list[datetime]],
) -> tuple[list[int], int]:
    """Choose the tickets that change in delta ``k``; return them and the new total.

    Mostly open tickets move on; every third delta reopens one final ticket; about
    a sixth of the rows are new tickets.
    """
    rng = random.Random(_digest(seed, -4, k))
    new = min(rows, max(1, rows // 6)) if rows else 0
    reopen = 1 if k % 3 == 0 and rows > new else 0
    picked: list[int] = []
    seen: set[int] = set()
    patience = 50 * rows  # past this, take any ticket rather than loop forever
    for attempt in range(100 * rows):
        if len(picked) == rows - new or not total:
            break
        index = rng.randrange(total)
        if index in seen:
            continue
        is_new = index >= baseline_rows
        version = len(history[index]) - 1 if index in history else 0
        final = ticket_status(seed, index, version, is_new) in FINAL_STATUSES
        if final != (len(picked) < reopen) and attempt < patience:
            continue
        seen.add(index)
        picked.append(index)
    picked.extend(range(total, total + new))
    return picked, total + new


def _delta_rows(
    seed: int,
    picked: Sequence[int],
    baseline_rows: int,
    history: dict[int, list[datetime]],
    content0: datetime,
    content: datetime,
    duplicate_gap: timedelta | None = None,
) -> Iterator[list[str]]:
    """Rows for the picked tickets; with a gap, the first ticket also moves on
    once more and that newer state is written last."""
    newer: list[str] | None = None
    for position, index in enumerate(picked):
        new = index >= baseline_rows
        times = history.setdefault(index, [] if new else [content0])
        if duplicate_gap is not None and position == 0:
            # The earlier row must also read as the older state by its clocks.
            times.append(content - duplicate_gap)
            yield _ticket_row(seed, index, times, new)
            times.append(content)
            newer = _ticket_row(seed, index, times, new)
            continue
        times.append(content)
        yield _ticket_row(seed, index, times, new)
    if newer is not None:
        yield newer


def _columns(cases: set[str]) -> tuple[str, ...]:
    columns = list(CONTRACT_COLUMNS)
    if "reordered_columns" in cases:
        columns.sort()  # puts ticket_id far from the front
    if "missing_column" in cases:
        columns.remove(MISSING_COLUMN)
    if "extra_column" in cases:
        columns.insert(columns.index("owner") + 1, EXTRA_COLUMN)
    return tuple(columns)


def _write(
    path: Path,
    rows: Iterable[list[str]],
    *,
    columns: Sequence[str] = CONTRACT_COLUMNS,
    bom: bool = False,
    crlf: bool = False,
) -> None:
    encoding = "utf-8-sig" if bom else "utf-8"
    with open(path, "w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
        writer.writerow(columns)
        if tuple(columns) == CONTRACT_COLUMNS:
            writer.writerows(rows)
            return
        picks = [_COL.get(name) for name in columns]
        writer.writerows([row[p] if p is not None else _extra_value(row) for p in picks] for row in rows)


def _extra_value(row: list[str]) -> str:
    if row[_COL["sla_status"]] == "Breached":
        return "L2"
    return "L1" if row[_COL["bucket"]] == "pending" else ""


def _set(row: list[str], **values: str) -> None:
    for name, value in values.items():
        row[_COL[name]] = value


def _swap_bools(row: list[str], true: str, false: str, alarm: str) -> None:
    for name in ("is_actionable", "is_auto_created", "is_auto_closed"):
        row[_COL[name]] = true if row[_COL[name]] == "true" else false
    row[_COL["is_alarm"]] = alarm


def _retime(row: list[str], change: Callable[[str], str]) -> None:
    for name in TIME_COLUMNS:
        if row[_COL[name]]:
            row[_COL[name]] = change(row[_COL[name]])


def _recase(row: list[str], region: Callable[[str], str], raw: Callable[[str], str]) -> None:
    row[_COL["region"]] = region(row[_COL["region"]])
    row[_COL["raw_status"]] = raw(row[_COL["raw_status"]])


_Edit = Callable[[list[str]], None]
# Each edit spoils one row; the cases of one file take successive rows.
_ROW_EDITS: dict[str, tuple[_Edit, ...]] = {
    "quoted_fields": (
        lambda r: _set(r, location_name=r[_COL["location_name"]] + ", GATE B"),
        lambda r: _set(r, assigned_team=r[_COL["assigned_team"]] + ' "Night Shift"'),
        lambda r: _set(r, location_name=r[_COL["location_name"]] + "\nBLOCK C"),
    ),
    "boolean_variants": (
        lambda r: _swap_bools(r, "TRUE", "FALSE", "FALSE"),
        lambda r: _swap_bools(r, "1", "0", "0"),
        lambda r: _set(r, is_auto_created="", is_auto_closed="", is_alarm=""),
    ),
    "time_formats": (
        lambda r: _retime(r, lambda t: t.replace(" ", "T")),
        lambda r: _retime(r, lambda t: t + ".250"),
        lambda r: _retime(r, lambda t: t[:16]),
    ),
    "debris": (
        lambda r: _set(r, scheduled_at="0000-00-00 00:00:00", mttr="#VALUE!"),
        lambda r: _set(r, created_at_service="N/A", owner="N/A"),
        lambda r: _set(r, closed_at="#VALUE!", sla_status="N/A"),
    ),
    "mixed_case": (
        lambda r: _recase(r, str.upper, str.swapcase),
        lambda r: _recase(r, str.lower, str.lower),
        lambda r: _recase(r, str.swapcase, str.upper),
    ),
}


def _with_hard_cases(rows: Iterable[list[str]], cases: set[str], seed: int, content: datetime) -> Iterator[list[str]]:
    """Plant the row-level cases; extra rows go after the second and third rows."""
    edits = [edit for name, group in _ROW_EDITS.items() if name in cases for edit in group]
    held: list[str] | None = None  # one row of look-ahead, to edit the last row
    position = 0
    for row in rows:
        if held is not None:
            yield held
            yield from _extra_rows(position, cases, seed, content)
        if position < len(edits):
            edits[position](row)
        held = row
        position += 1
    if held is not None:
        for edit in edits[position:]:
            edit(held)  # a short file: the leftover edits pile onto its last row
        yield held
    for later in range(position, max(position, 3) + 1):
        yield from _extra_rows(later, cases, seed, content)
    if "sentinel" in cases:
        sentinel = [""] * len(CONTRACT_COLUMNS)
        sentinel[_COL["ticket_id"]] = SENTINEL_TEXT
        yield sentinel


def _extra_rows(after: int, cases: set[str], seed: int, content: datetime) -> Iterator[list[str]]:
    if after == 2 and "alarm_rows" in cases:
        for offset, flag in enumerate(("true", "TRUE")):
            alarm = _ticket_row(seed, _ALARM_INDEX + offset, (content,), True)
            alarm[_COL["is_alarm"]] = flag
            yield alarm
    if after == 3 and "blank_ticket_id" in cases:
        blank = _ticket_row(seed, _BLANK_ID_INDEX, (content,), True)
        blank[_COL["ticket_id"]] = ""
        yield blank
