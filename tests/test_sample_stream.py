"""Tests for the sample change-stream generator."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest

from fleettickets_dev.sample_stream import (
    CLOSED_STATUSES,
    CONTRACT_COLUMNS,
    EXTRA_COLUMN,
    HARD_CASES,
    MISSING_COLUMN,
    SENTINEL_TEXT,
    delta_indexes,
    hard_case_files,
    ticket_id,
    write_baseline_csv,
    write_delta_csv,
    write_sample_stream,
)

STATUS_STEPS = {
    ("open", "assigned"),
    ("assigned", "in_progress"),
    ("assigned", "cancelled"),
    ("in_progress", "on_hold"),
    ("on_hold", "in_progress"),
    ("in_progress", "resolved"),
    ("in_progress", "closed"),
    ("resolved", "closed"),
    ("closed", "assigned"),  # reopen
    ("cancelled", "assigned"),  # reopen
}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_file_names_are_eat_timestamps_twenty_minutes_apart(tmp_path: Path) -> None:
    paths = write_sample_stream(tmp_path, deltas=3, start=datetime(2026, 6, 15, 19, 40))
    assert [p.name for p in paths] == [
        "2026-06-15T19-40-00.csv",
        "2026-06-15T20-00-00.csv",
        "2026-06-15T20-20-00.csv",
        "2026-06-15T20-40-00.csv",
    ]


@pytest.mark.parametrize("hard_cases", [False, True])
def test_same_seed_same_bytes(tmp_path: Path, hard_cases: bool) -> None:
    first = write_sample_stream(tmp_path / "a", hard_cases=hard_cases)
    second = write_sample_stream(tmp_path / "b", hard_cases=hard_cases)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    other = write_sample_stream(tmp_path / "c", seed=8, hard_cases=hard_cases)
    assert first[0].read_bytes() != other[0].read_bytes()


def test_plain_stream_follows_the_contract(tmp_path: Path) -> None:
    paths = write_sample_stream(tmp_path)
    columns, baseline = read_rows(paths[0])
    assert tuple(columns) == CONTRACT_COLUMNS
    assert len(baseline) == 300
    assert len({r["ticket_id"] for r in baseline}) == 300
    blank_service = sum(r["created_at_service"] == "" for r in baseline)
    assert 0.2 < blank_service / len(baseline) < 0.4
    for row in baseline:
        assert row["ticket_id"].startswith("WOT") and len(row["ticket_id"]) == 10
        assert row["service_type"] == "inc"
        assert row["is_alarm"] == "false"
        assert row["latitude"] == row["longitude"] == ""
        closed = row["normalized_status"] in CLOSED_STATUSES
        assert row["bucket"] == ("closed" if closed else "pending")
        assert row["is_actionable"] == ("false" if closed else "true")
        assert bool(row["closed_at"]) == closed == bool(row["mttr"])
        assert all(row[c] for c in ("week_start", "department", "source_s3_key"))
        datetime.strptime(row["source_updated_at"], "%Y-%m-%d %H:%M:%S")
    codes = {r["cluster"] for r in baseline}
    assert {"QOA", "PTMP", "Quarry Road", "Pipeline", "Kayole"} <= codes


def test_deltas_are_consistent_with_what_came_before(tmp_path: Path) -> None:
    paths = write_sample_stream(tmp_path, deltas=6, delta_rows=40)
    _, baseline = read_rows(paths[0])
    state = {r["ticket_id"]: r for r in baseline}
    new_tickets = reopened = 0
    for path in paths[1:]:
        _, rows = read_rows(path)
        assert len(rows) == 40
        assert len({r["ticket_id"] for r in rows}) == 40
        for row in rows:
            before = state.get(row["ticket_id"])
            if before is None:
                new_tickets += 1
                assert row["normalized_status"] == "open"
            else:
                step = (before["normalized_status"], row["normalized_status"])
                assert step in STATUS_STEPS
                reopened += row["raw_status"] == "Reopened"
                for same in ("location_name", "source_created_at", "assigned_team"):
                    assert row[same] == before[same]
                assert row["source_updated_at"] > before["source_updated_at"]
            state[row["ticket_id"]] = row
    assert new_tickets == 6 * 6
    assert reopened == 2  # deltas 3 and 6


def test_benchmark_delta_holds_the_next_state_of_existing_tickets(
    tmp_path: Path,
) -> None:
    base, delta = tmp_path / "base.csv", tmp_path / "delta.csv"
    assert write_baseline_csv(base, 2000) == 2000
    assert write_delta_csv(delta, 300, baseline_rows=2000) == 300
    _, baseline = read_rows(base)
    _, rows = read_rows(delta)
    state = {r["ticket_id"]: r for r in baseline}
    assert len({r["ticket_id"] for r in rows}) == 300
    for row in rows:
        before = state[row["ticket_id"]]
        assert (before["normalized_status"], row["normalized_status"]) in STATUS_STEPS
    expected = [ticket_id(7, i) for i in delta_indexes(300, baseline_rows=2000)]
    assert [r["ticket_id"] for r in rows] == expected


def test_benchmark_baseline_matches_the_stream_baseline(tmp_path: Path) -> None:
    write_baseline_csv(tmp_path / "base.csv", 300)
    stream = write_sample_stream(tmp_path / "s", deltas=0)
    assert (tmp_path / "base.csv").read_bytes() == stream[0].read_bytes()


def peak_while_writing(path: Path, rows: int) -> int:
    tracemalloc.start()
    try:
        write_baseline_csv(path, rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_baseline_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    small = peak_while_writing(tmp_path / "small.csv", 1_000)
    large = peak_while_writing(tmp_path / "large.csv", 10_000)
    assert large - small < 512 * 1024


def test_hard_case_plan_spreads_over_the_files_and_clamps() -> None:
    assert hard_case_files(6) == {c.name: c.file_index for c in HARD_CASES}
    assert set(hard_case_files(2).values()) == {0, 1, 2}
    assert hard_case_files(0) == {c.name: 0 for c in HARD_CASES}


@pytest.fixture(scope="module")
def hard_stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_sample_stream(tmp_path_factory.mktemp("hard"), hard_cases=True)


def cases_in(index: int) -> set[str]:
    return {c.name for c in HARD_CASES if c.file_index == index}


def test_each_hard_case_lands_in_its_planned_file(hard_stream: list[Path]) -> None:
    raw = [p.read_bytes() for p in hard_stream]
    assert [r.startswith(b"\xef\xbb\xbf") for r in raw] == [True] + [False] * 6
    assert [b"\r\n" in r for r in raw] == [False, True] + [False] * 5
    columns = [read_rows(p)[0] for p in hard_stream]
    assert columns[2] == sorted(CONTRACT_COLUMNS)
    assert columns[3][columns[3].index("owner") + 1] == EXTRA_COLUMN
    assert MISSING_COLUMN not in columns[4] and len(columns[4]) == 31
    for index in (0, 1, 5, 6):
        assert tuple(columns[index]) == CONTRACT_COLUMNS


def test_quoted_fields_and_alarms_in_the_baseline(hard_stream: list[Path]) -> None:
    _, rows = read_rows(hard_stream[0])
    assert len(rows) == 302
    assert rows[0]["location_name"].endswith(", GATE B")
    assert rows[1]["assigned_team"].endswith(' "Night Shift"')
    assert [r["is_alarm"] for r in rows[2:4]] == ["true", "TRUE"]
    assert rows[4]["location_name"].endswith("\nBLOCK C")
    assert '"' in hard_stream[0].read_text(encoding="utf-8-sig").splitlines()[2]


def test_row_level_hard_cases(hard_stream: list[Path]) -> None:
    _, booleans = read_rows(hard_stream[1])
    flags = ("is_actionable", "is_auto_created", "is_auto_closed")
    assert {booleans[0][c] for c in flags} <= {"TRUE", "FALSE"}
    assert {booleans[1][c] for c in flags} <= {"1", "0"}
    assert [r["is_alarm"] for r in booleans[:3]] == ["FALSE", "0", ""]
    assert booleans[2]["is_auto_created"] == ""

    _, times = read_rows(hard_stream[2])
    assert "T" in times[0]["source_updated_at"]
    assert times[1]["source_updated_at"].endswith(".250")
    assert len(times[2]["source_updated_at"]) == 16

    _, debris = read_rows(hard_stream[3])
    assert debris[0]["scheduled_at"] == "0000-00-00 00:00:00"
    assert debris[0]["mttr"] == "#VALUE!"
    assert debris[1]["created_at_service"] == debris[1]["owner"] == "N/A"
    assert debris[2]["closed_at"] == "#VALUE!"

    _, mixed = read_rows(hard_stream[5])
    assert mixed[0]["region"].isupper() and mixed[1]["region"].islower()
    assert mixed[3]["ticket_id"] == ""
    assert sum(r["ticket_id"] == "" for r in mixed) == 1


def test_duplicate_ticket_later_row_is_newer(hard_stream: list[Path]) -> None:
    _, rows = read_rows(hard_stream[4])
    assert len(rows) == 41
    first, last = rows[0], rows[-1]
    assert first["ticket_id"] == last["ticket_id"]
    assert [r["ticket_id"] for r in rows].count(first["ticket_id"]) == 2
    assert last["source_updated_at"] > first["source_updated_at"]
    assert (first["normalized_status"], last["normalized_status"]) in STATUS_STEPS


def test_sentinel_is_the_last_row_of_the_last_file(hard_stream: list[Path]) -> None:
    _, rows = read_rows(hard_stream[6])
    assert rows[-1]["ticket_id"] == SENTINEL_TEXT
    assert all(v == "" for k, v in rows[-1].items() if k != "ticket_id")
    assert all(not r["ticket_id"].startswith("EXPORT") for r in rows[:-1])


def test_all_hard_cases_fit_in_a_single_baseline(tmp_path: Path) -> None:
    (path,) = write_sample_stream(tmp_path, deltas=0, baseline_rows=5, hard_cases=True)
    text = path.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf") and b"\r\n" in text
    columns, rows = read_rows(path)
    assert EXTRA_COLUMN in columns and MISSING_COLUMN not in columns
    assert rows[-1]["ticket_id"] == SENTINEL_TEXT
    assert len(rows) == 5 + 2 + 1 + 1  # tickets, alarms, blank id, sentinel
    assert csv.reader(io.StringIO(text.decode("utf-8-sig")))
