"""Hostile but plausible input to `ingest`: nothing lost, nothing applied twice, no file blocked by one value."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import psycopg
import pytest

from fleettickets.clean import MAX_COLUMNS, MAX_TICKET_ID_CHARS, RejectedRow, read_change_file
from fleettickets.errors import BadChangeFile, UsageError
from fleettickets.ingest import _open_local, run_ingest
from fleettickets.settings import Settings
from fleettickets.source import ChangeFile, parse_file_ts
from tests.stream_tools import db_state, run_cli

NAME = "2026-06-17T07-00-00.csv"
HEADER = [
    "ticket_id",
    "normalized_status",
    "is_actionable",
    "cluster",
    "location_name",
    "owner",
    "sla_status",
    "region",
    "created_at_service",
]


def row(ticket: str, **values: str) -> list[str]:
    base = {
        "normalized_status": "open",
        "is_actionable": "true",
        "cluster": "Kayole",
        "location_name": "NW_KAYOLE_FDT3",
        "owner": "Amina",
        "sla_status": "Within",
        "region": "Nairobi East",
        "created_at_service": "2026-06-17 06:00:00",
    }
    base.update(values)
    return [ticket, *(base[name] for name in HEADER[1:])]


def csv_bytes(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def env(db_url: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": db_url}


def written(db_url: str) -> dict[str, int]:
    """Rows in every table an applied file writes."""
    with psycopg.connect(db_url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM tickets.{table}").fetchone()[0]
            for table in ("inc", "inc_versions", "ingest_files", "import_meta")
        }


NOTHING = {"inc": 0, "inc_versions": 0, "ingest_files": 0, "import_meta": 0}


def test_a_quote_that_never_closes_refuses_the_whole_file(db_url: str, tmp_path: Path) -> None:
    lines = csv_bytes([row(f"WOT{i:03d}") for i in range(1, 52)]).decode().splitlines(keepends=True)
    # Line 11 (ticket WOT010): its cluster opens a quote the exporter never closes.
    lines[10] = lines[10].replace(",Kayole,", ',"Kayole,', 1)
    path = tmp_path / NAME
    path.write_text("".join(lines))

    result = run_cli(["ingest", "--apply", "--inc-csv", str(path)], env(db_url), tmp_path)

    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: {path}, line 11: a quote opened here does not close where it should")
    assert written(db_url) == NOTHING


def test_a_quote_that_swallows_lines_and_closes_later_is_refused_too(db_url: str, tmp_path: Path) -> None:
    rows = [row(f"WOT{i:03d}") for i in range(1, 52)]
    rows[30] = row("WOT031", owner="Ann, B")  # quoted by the writer: it closes the stray quote
    lines = csv_bytes(rows).decode().splitlines(keepends=True)
    lines[10] = lines[10].replace(",Kayole,", ',"Kayole,', 1)
    path = tmp_path / NAME
    path.write_text("".join(lines))

    with pytest.raises(Exception, match=r"line 11: a quote opened here does not close"):
        run_ingest(Settings(database_url=db_url), apply=True, local_files=[path])
    assert written(db_url) == NOTHING


def test_a_quoted_line_break_with_the_right_width_still_loads() -> None:
    data = csv_bytes([row("WOT1", location_name="Kayole\nJunction"), row("WOT2")])
    rows = list(read_change_file(io.BytesIO(data), NAME))
    assert [(r.line, r.ticket_id) for r in rows] == [(2, "WOT1"), (4, "WOT2")]  # type: ignore[union-attr]


def test_long_values_never_fail_a_file(db_url: str, tmp_path: Path) -> None:
    long_id = "W" * 5000
    path = tmp_path / NAME
    path.write_bytes(
        csv_bytes(
            [
                row("WOT1", cluster="K" * 4000),
                row("WOT2", location_name="L" * 10000, owner="\U0001f600" * 3000),
                row(long_id),
                row("WOT4", region="İ" * 2000, normalized_status="İ" * 2000),
            ]
        )
    )

    report = run_ingest(Settings(database_url=db_url), apply=True, local_files=[path])

    (result,) = report.files
    assert (result.inserted, result.rejected) == (3, 1)
    assert result.rejections == [(4, f"ticket_id is 5,000 characters long; at most {MAX_TICKET_ID_CHARS} are allowed")]
    state = db_state(db_url)
    assert state["WOT1"]["cluster"] == "K" * 4000
    assert state["WOT2"]["location_name"] == "L" * 10000 and state["WOT2"]["owner"] == "\U0001f600" * 3000
    with psycopg.connect(db_url) as conn:
        typed = dict(
            conn.execute(
                "SELECT ticket_id, octet_length(cluster) + octet_length(location_name) + octet_length(owner) "
                "FROM tickets.inc"
            ).fetchall()
        )
    assert typed["WOT1"] == 256 + len("NW_KAYOLE_FDT3") + len("Amina")
    assert typed["WOT2"] == len("Kayole") + 256 + 256


@pytest.mark.parametrize("name", ["SLA %", "%s", "%(file_key)s", "%%", "{raw}", "50% done %d"])
def test_a_percent_in_a_column_name_is_just_a_name(db_url: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / NAME
    path.write_bytes(csv_bytes([["WOT1", "97"]], header=["ticket_id", name]))
    run_ingest(Settings(database_url=db_url), apply=True, local_files=[path])
    assert db_state(db_url)["WOT1"] == {"ticket_id": "WOT1", name: "97"}


def test_two_local_files_with_one_name_are_refused_before_anything_runs(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / NAME, tmp_path / "b" / NAME
    first.write_bytes(csv_bytes([row("WOT1")]))
    second.write_bytes(csv_bytes([row("WOT2")]))

    for paths in ([first, second], [first, first]):
        args = ["ingest", "--apply"] + [arg for p in paths for arg in ("--inc-csv", str(p))]
        result = run_cli(args, env(db_url), tmp_path)
        assert result.returncode == 2, result.stderr
        assert "each --inc-csv file needs a name of its own" in result.stderr
    assert written(db_url) == NOTHING
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tickets.ingest_runs").fetchone() == (0,)


def test_a_local_file_rewritten_after_planning_is_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / NAME
    path.write_bytes(csv_bytes([row("WOT1")]))
    planned = ChangeFile(
        key=f"changes/{NAME}",
        file_ts=parse_file_ts(NAME),
        etag="0" * 32,  # type: ignore[arg-type]
        size=path.stat().st_size,
        local_path=path,
    )
    stream = _open_local(planned)
    with pytest.raises(BadChangeFile, match="the file changed while it was being read"):
        list(read_change_file(stream, str(path)))
    stream.close()


def test_undocumented_limits_are_now_documented_and_generous(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / NAME
    path.write_bytes(csv_bytes([row("WOT1", owner="o" * 300_000)]))
    run_ingest(Settings(database_url=db_url), apply=True, local_files=[path])
    assert len(db_state(db_url)["WOT1"]["owner"]) == 300_000

    wide = tmp_path / "2026-06-17T07-20-00.csv"
    header = ["ticket_id", *(f"c{i}" for i in range(1699))]
    wide.write_bytes(csv_bytes([["WOT2", *("v" for _ in range(1699))]], header=header))
    result = run_cli(["ingest", "--apply", "--inc-csv", str(wide)], env(db_url), tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"Error: {wide}, line 1: header has 1,700 columns; at most {MAX_COLUMNS:,} are supported")
    )
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for limit in ("16 MiB", f"{MAX_COLUMNS:,} columns", f"{MAX_TICKET_ID_CHARS} characters"):
        assert limit in readme


def test_anything_but_a_regular_file_is_refused(db_url: str, tmp_path: Path) -> None:
    fifo = tmp_path / NAME
    os.mkfifo(fifo)
    result = run_cli(["ingest", "--apply", "--inc-csv", str(fifo)], env(db_url), tmp_path, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {fifo} is not a regular file; --inc-csv takes regular files only"
    with pytest.raises(UsageError):
        run_ingest(Settings(database_url=db_url), apply=True, local_files=[fifo])


def test_errors_about_a_local_file_say_what_to_do_with_it(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / NAME
    path.write_bytes(b"id,cluster\nWOT1,Kayole\n")
    result = run_cli(["ingest", "--apply", "--inc-csv", str(path)], env(db_url), tmp_path)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: {path}, line 1: header has no ticket_id column")
    assert "leave it out of --inc-csv" in error
    assert "changes/" not in error and "object" not in error


def test_ingest_json_prints_its_document_when_the_run_fails(db_url: str, tmp_path: Path) -> None:
    good, bad = tmp_path / NAME, tmp_path / "2026-06-17T07-20-00.csv"
    good.write_bytes(csv_bytes([row("WOT1")]))
    bad.write_bytes(b'ticket_id,x\nWOT2,"open\n')
    result = run_cli(
        ["ingest", "--apply", "--json", "--inc-csv", str(good), "--inc-csv", str(bad)], env(db_url), tmp_path
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and "line 2: a quote opened here" in document["failed"]
    assert [f["file_key"] for f in document["files"]] == [f"automations/inc/changes/{NAME}"]

    nowhere = run_cli(["ingest", "--json"], {"PATH": os.environ.get("PATH", "")}, tmp_path)
    assert nowhere.returncode == 2
    assert "are not set" in json.loads(nowhere.stdout)["failed"]


def test_a_header_cell_with_nul_is_a_clear_refusal() -> None:
    with pytest.raises(BadChangeFile, match="line 1: header column 2 contains a NUL character"):
        list(read_change_file(io.BytesIO(b"ticket_id,a\x00b\nWOT1,x\n"), NAME))


def test_a_nul_in_a_row_is_one_rejected_row() -> None:
    rows = list(read_change_file(io.BytesIO(b"ticket_id,a\nWOT1,x\x00y\nWOT2,z\n"), NAME))
    assert rows[0] == RejectedRow(2, "contains a NUL character, which cannot be stored")
