"""Tests for reading and cleaning one change file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fleettickets import clean
from fleettickets.clean import (
    CleanRow,
    DroppedRow,
    FileCounts,
    RejectedRow,
    clean_record,
    parse_bool,
    read_change_file,
)
from fleettickets.errors import BadChangeFile
from fleettickets_dev.sample_stream import (
    EXTRA_COLUMN,
    MISSING_COLUMN,
    SENTINEL_TEXT,
    write_sample_stream,
)

HEADER = b"ticket_id,raw_status,region,is_alarm,week_start,department,owner\n"


def read(data: bytes, source: str = "changes/x.csv") -> list[object]:
    return list(read_change_file(io.BytesIO(data), source))


def test_a_row_is_cleaned_column_by_column() -> None:
    rows = read(HEADER + b" WOT1 ,In Progress,Nairobi East,false,2026-06-08,Ops,\n")
    assert rows == [
        CleanRow(
            line=2,
            ticket_id="WOT1",
            record={
                "ticket_id": "WOT1",
                "raw_status": "IN PROGRESS",
                "region": "nairobi east",
                "is_alarm": "false",
                "owner": None,
            },
        )
    ]


def test_unknown_columns_are_kept_and_whitespace_reads_as_blank() -> None:
    rows = read(b"ticket_id,escalation_level,owner,mttr\nA,L2,  ,#VALUE!\n")
    assert rows == [CleanRow(2, "A", {"ticket_id": "A", "escalation_level": "L2", "owner": None, "mttr": "#VALUE!"})]


@pytest.mark.parametrize("flag", ["true", "TRUE", "1", "yes", " True "])
def test_alarm_rows_are_dropped(flag: str) -> None:
    rows = read(HEADER + f"A,Open,x,{flag},,,\nB,Open,x,false,,,\n".encode())
    assert rows[0] == DroppedRow(2, "A", "alarm")
    assert isinstance(rows[1], CleanRow) and rows[1].ticket_id == "B"


@pytest.mark.parametrize("flag", ["false", "FALSE", "0", "", "N/A"])
def test_rows_that_are_not_alarms_are_kept(flag: str) -> None:
    (row,) = read(HEADER + f"A,Open,x,{flag},,,\n".encode())
    assert isinstance(row, CleanRow)


def test_a_file_without_is_alarm_keeps_every_row() -> None:
    assert [type(r) for r in read(b"ticket_id\nA\nB\n")] == [CleanRow, CleanRow]


def test_sentinel_rows_are_dropped_whatever_their_shape() -> None:
    rows = read(
        HEADER + b"  export stopped: workbook missing,,,,,,\n" + b"EXPORT STOPPED at 14:20\n" + b"A,Open,x,false,,,\n"
    )
    assert rows[:2] == [
        DroppedRow(2, "export stopped: workbook missing", "sentinel"),
        DroppedRow(3, "EXPORT STOPPED at 14:20", "sentinel"),
    ]
    assert isinstance(rows[2], CleanRow)


def test_blank_ticket_id_is_rejected_and_reading_goes_on() -> None:
    rows = read(HEADER + b"A,Open,x,false,,,\n  ,Open,x,false,,,\nC,Open,x,,,,\n")
    assert rows[1] == RejectedRow(3, "blank ticket_id")
    assert [r.ticket_id for r in rows if isinstance(r, CleanRow)] == ["A", "C"]


def test_a_row_with_the_wrong_field_count_is_rejected() -> None:
    rows = read(HEADER + b"A,Open,x\nB,Open,x,false,,,,extra\nC,Open,x,false,,,\n")
    assert rows[:2] == [
        RejectedRow(2, "row has 3 fields, header has 7"),
        RejectedRow(3, "row has 8 fields, header has 7"),
    ]
    assert isinstance(rows[2], CleanRow)


def test_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") + b"A,Open,x,false,,,\r\n"
    (row,) = read(data)
    assert isinstance(row, CleanRow)
    assert row.record["ticket_id"] == "A"
    assert row.record["owner"] is None


def test_quoted_fields_and_line_numbers_after_multiline_records() -> None:
    data = (
        b"ticket_id,location_name,owner\r\n"
        b'A,"NW_KAYOLE, GATE B","say ""hi"""\r\n'
        b'B,"ADR_MNT_DONHOLM\r\nBLOCK C\nWING 2",x\r\n'
        b"\r\n"
        b"C,plain,y\r\n"
        b",blank,z\r\n"
    )
    rows = read(data)
    assert rows == [
        CleanRow(2, "A", {"ticket_id": "A", "location_name": "NW_KAYOLE, GATE B", "owner": 'say "hi"'}),
        CleanRow(3, "B", {"ticket_id": "B", "location_name": "ADR_MNT_DONHOLM\r\nBLOCK C\nWING 2", "owner": "x"}),
        CleanRow(7, "C", {"ticket_id": "C", "location_name": "plain", "owner": "y"}),
        RejectedRow(8, "blank ticket_id"),
    ]


def test_reordered_columns() -> None:
    (row,) = read(b"owner,Region,region,ticket_id\nj.mwangi,X,Nairobi WEST,A\n")
    assert isinstance(row, CleanRow)
    assert row.record == {
        "owner": "j.mwangi",
        "Region": "X",
        "region": "nairobi west",
        "ticket_id": "A",
    }


def test_chunk_boundaries_do_not_change_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = ('\ufeffticket_id,location_name\r\nA,"one\r\ntwo"\r\nB,Ruaka é\r\n\r\nC,"x,y"\r\n').encode()
    expected = read(data)
    for size in (1, 2, 3, 5, 7):
        monkeypatch.setattr(clean, "_CHUNK_BYTES", size)
        assert read(data) == expected
    assert [r.line for r in expected] == [2, 4, 6]  # type: ignore[attr-defined]


def test_a_last_line_without_newline_is_read() -> None:
    (row,) = read(b"ticket_id,owner\nA,x")
    assert row == CleanRow(2, "A", {"ticket_id": "A", "owner": "x"})


def test_duplicate_ticket_ids_are_yielded_in_order() -> None:
    rows = read(b"ticket_id,raw_status\nA,open\nB,open\nA,closed\n")
    assert [(r.line, r.ticket_id) for r in rows] == [  # type: ignore[attr-defined]
        (2, "A"),
        (3, "B"),
        (4, "A"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "changes/x.csv: the file is empty: there is no header row"),
        (
            b"\xef\xbb\xbf\r\n\n",
            "changes/x.csv: the file is empty: there is no header row",
        ),
        (
            b"id,owner\nA,x\n",
            "changes/x.csv, line 1: header has no ticket_id column (found: id, owner)",
        ),
        (
            b"\n\nticket_id,owner,region,owner\n",
            "changes/x.csv, line 3: duplicate column names in header: owner",
        ),
        (
            b"ticket_id,,owner\n",
            "changes/x.csv, line 1: header column 2 has no name",
        ),
    ],
)
def test_unreadable_headers_fail_the_whole_file(data: bytes, message: str) -> None:
    with pytest.raises(BadChangeFile) as caught:
        read(data)
    assert str(caught.value) == message
    assert caught.value.source == "changes/x.csv"


def test_invalid_utf8_names_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'ticket_id,owner\nA,x\nB,"two\nlines \xe9"\nC,y\n'
    for size in (clean._CHUNK_BYTES, 4):
        monkeypatch.setattr(clean, "_CHUNK_BYTES", size)
        with pytest.raises(BadChangeFile) as caught:
            read(data)
        assert caught.value.line == 4
        assert str(caught.value) == (
            "changes/x.csv, line 4: bytes that are not UTF-8 (invalid continuation "
            "byte at byte 7 of the line); re-export the file as UTF-8"
        )


def test_the_stream_is_left_open() -> None:
    stream = io.BytesIO(b"ticket_id\nA\n")
    list(read_change_file(stream, "f.csv"))
    assert not stream.closed


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        (" True ", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("", None),
        (None, None),
        ("N/A", None),
        ("#VALUE!", None),
    ],
)
def test_parse_bool(text: str | None, value: bool | None) -> None:
    assert parse_bool(text) is value


def test_clean_record_applies_the_same_rules() -> None:
    assert clean_record(
        {
            "ticket_id": " A ",
            "region": "Nairobi EAST",
            "raw_status": "closed",
            "week_end": "2026-06-14",
            "source_type": "x",
            "notes": " ",
            "mttr": None,
        }
    ) == {"ticket_id": "A", "region": "nairobi east", "raw_status": "CLOSED", "notes": None, "mttr": None}


def test_file_counts_tally_and_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clean, "MAX_KEPT_REJECTIONS", 2)
    data = HEADER + b"".join(
        [
            b"A,Open,x,false,,,\n",
            b"B,Open,x,true,,,\n",
            b",Open,x,false,,,\n",
            b",Open,x,false,,,\n",
            b"short\n",
            b"EXPORT STOPPED,,,,,,\n",
        ]
    )
    counts = FileCounts()
    kept = list(counts.tally(read_change_file(io.BytesIO(data), "f.csv")))
    assert [r.ticket_id for r in kept] == ["A"]
    assert counts == FileCounts(
        rows_read=6,
        clean=1,
        dropped_alarms=1,
        dropped_sentinels=1,
        rejected=3,
        rejections=[(4, "blank ticket_id"), (5, "blank ticket_id")],
    )


@pytest.fixture(scope="module")
def hard_stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_stream(tmp_path_factory.mktemp("hard"), hard_cases=True)


def read_path(path: Path) -> tuple[list[object], FileCounts]:
    counts = FileCounts()
    with open(path, "rb") as stream:
        rows = list(read_change_file(stream, path.name))
    for row in rows:
        counts.add(row)  # type: ignore[arg-type]
    return rows, counts


def test_the_hard_case_stream_reads_cleanly(hard_stream: list[Path]) -> None:
    results = [read_path(p) for p in hard_stream]
    summary = [(c.clean, c.dropped_alarms, c.dropped_sentinels, c.rejected) for _, c in results]
    assert summary == [
        (300, 2, 0, 0),
        (40, 0, 0, 0),
        (40, 0, 0, 0),
        (40, 0, 0, 0),
        (41, 0, 0, 0),
        (40, 0, 0, 1),
        (40, 0, 1, 0),
    ]
    baseline = results[0][0]
    # The line break inside a quoted field pushes every later record down a line.
    lines = [r.line for r in baseline[:6]]  # type: ignore[attr-defined]
    assert lines == [2, 3, 4, 5, 6, 8]
    first = baseline[0]
    assert isinstance(first, CleanRow)
    assert set(first.record).isdisjoint(clean.DROPPED_COLUMNS)
    assert first.record["region"] == "nairobi east"

    extra = results[3][0][0]
    assert isinstance(extra, CleanRow) and EXTRA_COLUMN in extra.record
    missing = results[4][0][0]
    assert isinstance(missing, CleanRow) and MISSING_COLUMN not in missing.record
    assert results[5][1].rejections == [(5, "blank ticket_id")]
    assert results[6][0][-1] == DroppedRow(42, SENTINEL_TEXT, "sentinel")

    reordered = results[2][0][0]
    assert isinstance(reordered, CleanRow) and reordered.ticket_id.startswith("WOT")
    mixed = results[5][0][0]
    assert isinstance(mixed, CleanRow)
    region, status = mixed.record["region"], mixed.record["raw_status"]
    assert region is not None and region == region.lower()
    assert status is not None and status == status.upper()


def test_the_duplicate_in_the_hard_stream_comes_out_twice(
    hard_stream: list[Path],
) -> None:
    rows, _ = read_path(hard_stream[4])
    ids = [r.ticket_id for r in rows]  # type: ignore[attr-defined]
    assert ids[0] == ids[-1] and ids.count(ids[0]) == 2
    assert rows[-1].line == 42  # type: ignore[attr-defined]


def test_a_nul_character_rejects_only_its_row() -> None:
    data = b"ticket_id,cluster\nWOT1,Kay\x00ole\nWOT2,Umoja\n"
    rows = list(read_change_file(io.BytesIO(data), "x.csv"))
    assert rows[0] == RejectedRow(2, "contains a NUL character, which cannot be stored")
    assert rows[1] == CleanRow(3, "WOT2", {"ticket_id": "WOT2", "cluster": "Umoja"})
