"""Fuzzed accounting: every record of a generated hostile file is loaded, dropped or rejected exactly once, or the file is refused and nothing is written.

Each example writes a baseline file and a generated file and ingests both
through the real path (clean -> COPY -> merge into PostGIS, ledger, watermark).
The expected result comes from tests/feed_model.py, not from fleettickets.
CI runs a bounded number of examples; FLEETTICKETS_FUZZ_EXAMPLES=5000 runs a
long search. Every failure hypothesis found is kept below as an @example.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleettickets.errors import FleetTicketsError
from fleettickets.ingest import run_ingest
from fleettickets.settings import Settings
from tests.feed_model import Refused, read_file
from tests.fix_clock import TEST_NOW

EXAMPLES = int(os.environ.get("FLEETTICKETS_FUZZ_EXAMPLES", "0")) or 40
# Named two hours before the tests' pinned clock: every ingest ends with a
# history capture from the oldest version through today, so files of long ago
# would make each example pay for months of daily rows. Nothing asserted
# depends on the time.
_RECENT = TEST_NOW - timedelta(hours=2)
BASELINE_NAME = f"{_RECENT:%Y-%m-%dT%H-%M-%S}.csv"
FILE_NAME = f"{_RECENT + timedelta(minutes=20):%Y-%m-%dT%H-%M-%S}.csv"
BASELINE = b"ticket_id,region,raw_status,cluster\nT1,Nairobi,Open,Kayole\nT2,Coast,Open,Likoni\nT3,Rift,Closed,Nakuru\n"
TICKETS = ["T1", "T2", "T4", " T5 ", "t5", "WOT0715527"]
KNOWN_COLUMNS = [
    "region",
    "raw_status",
    "is_alarm",
    "cluster",
    "location_name",
    "owner",
    "department",
    "normalized_status",
]
TABLES = ("inc", "inc_versions", "closure_events", "inc_daily_snapshot", "ingest_files", "ingest_runs", "import_meta")

# Text a hostile exporter can put in a cell or a name: CSV syntax, '%', quotes, every line
# break, U+2028, a BOM, NUL, scripts and emoji.
HOSTILE = st.sampled_from(
    [
        ",",
        '"',
        '""',
        "\n",
        "\r",
        "\r\n",
        "%",
        "%s",
        "%(file_key)s",
        "\u2028",
        "\ufeff",
        "\x00",
        " ",
        "é",
        "ß",
        "İ",
        "\U0001f600",
        "{raw}",
        "'",
        ";",
        "\t",
    ]
)
PLAIN = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00\r\n"), max_size=8)
VALUE = st.one_of(
    PLAIN,
    st.lists(st.one_of(PLAIN, HOSTILE), max_size=4).map("".join),
    st.sampled_from(["true", "TRUE", " yes ", "1", "false", "", "   ", "\u2028", "EXPORT STOPPED: no workbook"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "\U0001f600", "İ"]), st.sampled_from([300, 3000, 20000])),
)
NAME = st.one_of(
    st.sampled_from(KNOWN_COLUMNS),
    st.sampled_from(
        [
            "SLA %",
            "%s",
            "%(file_key)s",
            'say "hi"',
            "with,comma",
            " padded ",
            "Ünïcode",
            "line\nbreak",
            "n" * 3000,
            "%%",
            "$1",
        ]
    ),
    PLAIN.map(lambda s: s if s.strip() else f"c{s}"),
)


def serialize(value: str, quote_always: bool) -> str:
    if quote_always or any(c in value for c in ',"\r\n') or value.startswith('"'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def change_files(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A change file's bytes, and the corruptions drawn into it (for statistics)."""
    names = draw(st.lists(NAME, max_size=6, unique_by=str.strip))
    if draw(st.integers(0, 19)):  # almost always a ticket_id column, anywhere
        names.insert(draw(st.integers(0, len(names))), draw(st.sampled_from(["ticket_id", " ticket_id "])))
    if names and draw(st.integers(0, 9)) == 0:
        names.append(draw(st.sampled_from(names)))  # a duplicate name
    width = len(names)
    rows: list[list[str]] = []
    for _ in range(draw(st.integers(0, 10))):
        values = [draw(VALUE) for _ in names]
        if "ticket_id" in [n.strip() for n in names]:
            at = [n.strip() for n in names].index("ticket_id")
            values[at] = draw(
                st.one_of(
                    st.sampled_from(TICKETS),
                    st.just(""),
                    st.just("   "),
                    st.just("W" * 101),
                    st.just("EXPORT STOPPED"),
                    VALUE,
                )
            )
        shape = draw(st.integers(0, 29))
        if shape == 0:
            values.append(draw(VALUE))  # one field too many
        elif shape == 1 and values:
            values.pop()  # one field too few
        elif shape == 2:
            values = [draw(st.sampled_from(["EXPORT STOPPED at 06:20", "export stopped"]))]
        rows.append(values)

    corruptions: list[str] = []
    lines: list[list[str]] = []
    for values in [names, *rows]:
        lines.append([serialize(v, draw(st.integers(0, 7)) == 0) for v in values])
    if len(lines) > 1 and draw(st.integers(0, 3)) == 0:
        r = draw(st.integers(0, len(lines) - 1))
        if lines[r]:
            f = draw(st.integers(0, len(lines[r]) - 1))
            kind = draw(st.sampled_from(["open_quote", "drop_closing_quote", "single_inner_quote", "stray_quote"]))
            cell = lines[r][f]
            if kind == "open_quote":
                lines[r][f] = '"' + cell
            elif kind == "drop_closing_quote" and cell.endswith('"') and len(cell) > 1:
                lines[r][f] = cell[:-1]
            elif kind == "single_inner_quote" and '""' in cell:
                lines[r][f] = cell.replace('""', '"', 1)
            elif kind == "stray_quote":
                lines[r][f] = cell[:1] + '"' + cell[1:]
            corruptions.append(kind)
    text = "".join(",".join(cells) + draw(st.sampled_from(["\n", "\r\n", "\r"])) for cells in lines)
    if draw(st.booleans()):
        text = text[:-1] if text.endswith("\n") and not text.endswith("\r\n") else text  # no final line break
    if draw(st.integers(0, 4)) == 0:
        text = "\ufeff" + text
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.sampled_from(["\n", "\n\n", "\r\n\r\n"]))
    del width
    return text.encode("utf-8"), corruptions


@pytest.fixture(scope="module")
def accounting_db(module_db_url: str) -> str:
    return module_db_url


def reset(url: str) -> None:
    """Empty every table ingestion writes, but for one ticket and its version.

    DELETE, not TRUNCATE: a handful of rows, and TRUNCATE gives each table and
    index a new file. The kept ticket means no load finds an empty table,
    which would drop and rebuild its indexes (load.py) at each example.
    """
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for table in TABLES:
            keep = " WHERE ticket_id <> 'KEPT'" if table in ("inc", "inc_versions") else ""
            conn.execute(f"DELETE FROM tickets.{table}{keep}")
        conn.execute("UPDATE tickets.history_state SET captured_version_id = 0, captured_now = NULL")
        conn.execute(
            "INSERT INTO tickets.inc (ticket_id, raw) VALUES ('KEPT', '{\"ticket_id\": \"KEPT\"}') "
            "ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO tickets.inc_versions (ticket_id, valid_from, source_key, raw) "
            "VALUES ('KEPT', %s, 'kept', '{\"ticket_id\": \"KEPT\"}') ON CONFLICT DO NOTHING",
            (_RECENT - timedelta(days=1),),
        )


def snapshot(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        return {
            "inc": dict(conn.execute("SELECT ticket_id, raw FROM tickets.inc").fetchall()),
            "versions": conn.execute("SELECT count(*) FROM tickets.inc_versions").fetchone()[0],
            "ledger": conn.execute(
                "SELECT file_key, rows_read, rows_inserted + rows_updated + rows_unchanged + rows_stale, "
                "duplicates_in_file, alarms_dropped, sentinels_dropped, rows_rejected, rejections "
                "FROM tickets.ingest_files ORDER BY file_ts"
            ).fetchall(),
            "watermark": conn.execute("SELECT metadata ->> 'source_max_key' FROM tickets.import_meta").fetchall(),
            "widest_typed": conn.execute(
                "SELECT coalesce(max(greatest(octet_length(cluster), octet_length(owner), octet_length(region), "
                "octet_length(location_name), octet_length(raw_status), octet_length(normalized_status))), 0) "
                "FROM tickets.inc"
            ).fetchone()[0],
        }


@pytest.fixture(scope="module")
def baseline_state(accounting_db: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("baseline")
    (folder / BASELINE_NAME).write_bytes(BASELINE)
    reset(accounting_db)
    run_ingest(Settings(database_url=accounting_db), apply=True, local_files=[folder / BASELINE_NAME])
    return snapshot(accounting_db)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / BASELINE_NAME).write_bytes(BASELINE)
    yield folder


@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(generated=change_files())
# Regression corpus: every failing example found on the way.
@example(generated=(b'ticket_id,a,b\nA,"x,y\nB,1,2\nC,3,4\n', ["open_quote"]))
@example(generated=(b'ticket_id,note\nT1,"a\nT2,b",c\nT4,d\n', ["open_quote"]))
@example(generated=(b"ticket_id,SLA %,%s,%(file_key)s\nT1,1,2,3\n", []))
@example(generated=(b"ticket_id,cluster\n" + b"W" * 101 + b",x\nT1," + b"K" * 4000 + b"\n", []))
@example(generated=("ticket_id,is_alarm\r\nT1,true\rT2,\u2028\r\nEXPORT STOPPED\n".encode(), []))
@example(generated=(b'\xef\xbb\xbfticket_id,a\nT1,x\x00y\nT2,"q""r"\n', []))
@example(generated=(b'ticket_id,raw_status\nT1,"0\r"\nT2,"a\rb"\n', []))  # a lone CR in a value
def test_every_record_is_accounted_for_once_or_the_file_is_refused(
    accounting_db: str, baseline_state: dict[str, Any], workdir: Path, generated: tuple[bytes, list[str]]
) -> None:
    data, corruptions = generated
    for kind in corruptions:
        event(f"corruption: {kind}")
    (workdir / FILE_NAME).write_bytes(data)
    reset(accounting_db)
    try:
        model = read_file(data)
    except Refused as refusal:
        model = None
        event(f"model: refused ({refusal.reason})")
        expected_line = refusal.line
    settings = Settings(database_url=accounting_db)

    try:
        run_ingest(settings, apply=True, local_files=[workdir / BASELINE_NAME, workdir / FILE_NAME])
        error = None
    except FleetTicketsError as exc:
        error = str(exc)
    state = snapshot(accounting_db)

    if model is None:
        assert error is not None, "the model refuses the file, the loader took it"
        assert error.startswith(str(workdir / FILE_NAME)), error
        if expected_line is not None:
            assert f", line {expected_line}:" in error, error
        assert state == baseline_state, "a refused file wrote something"
        return
    assert error is None, error
    event(f"records: {min(model.records, 5)}{'+' if model.records >= 5 else ''}")
    expected_inc = {**baseline_state["inc"]}
    for ticket, raw in model.loaded.items():
        expected_inc[ticket] = raw
    assert state["inc"] == expected_inc
    (_, ledger) = state["ledger"]
    file_key, rows_read, distinct, duplicates, alarms, sentinels, rejected, rejections = ledger
    assert file_key.endswith(FILE_NAME)
    assert rows_read == model.records
    assert (distinct + duplicates, alarms, sentinels, rejected) == (
        model.clean,
        model.alarms,
        model.sentinels,
        len(model.rejected),
    )
    assert [line for line, _ in rejections] == model.rejected[:100]
    assert state["watermark"] == [(file_key,)]
    assert state["widest_typed"] <= 256 * 3 // 2
