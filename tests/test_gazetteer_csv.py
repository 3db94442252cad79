"""Gazetteer review: export to CSV, correct and verify in a spreadsheet, import back all or nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import pytest

from fleettickets.errors import GazetteerImportError
from fleettickets.geocoding.gazetteer_file import COLUMNS, export_csv, import_csv
from fleettickets.geocoding.runs import geocode_locations
from fleettickets.settings import Settings
from tests.geo_tools import KAYOLE, geo_env, placed, rows, seed_tickets, settings_for
from tests.geocode_server import FakeGeocodeServer
from tests.stream_tools import run_cli


@pytest.fixture
def db(db_url: str) -> str:
    """Seeded tickets; Kayole and Quarry Road geocoded, Gikomba rejected, Kayole Junction ok."""
    seed_tickets(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tickets.geo_clusters (cluster_key, cluster, latitude, longitude, status, "
            "provider, query, fetched_at) VALUES "
            "('kayole', 'Kayole', -1.276, 36.914, 'ok', 'locationiq', 'Kayole, Nairobi East, Kenya', now()),"
            "('quarry road', 'Quarry Road', -1.2745, 36.842, 'ok', 'locationiq', 'Quarry Road, Nairobi East, Kenya', now())"
        )
        conn.execute(
            "INSERT INTO tickets.geo_locations (location_key, location_name, cluster_key, latitude, "
            "longitude, status, distance_km, provider, query, fetched_at) VALUES "
            "('adr_mnt_gikomba_mkt', 'ADR_MNT_GIKOMBA_MKT', 'quarry road', -0.0917, 34.768, "
            " 'rejected', 301.2, 'locationiq', 'Gikomba Market, Quarry Road, Nairobi East, Kenya', now()),"
            "('nw_kayole_junction_fdt3', 'NW_KAYOLE_JUNCTION_FDT3', 'kayole', -1.2761, 36.9139, "
            " 'ok', 0.02, 'locationiq', 'Kayole Junction, Kayole, Nairobi East, Kenya', now())"
        )
        conn.execute("SELECT tickets.refresh_geometry()")
    return db_url


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, records: list[dict[str, str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> None:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # as a spreadsheet saves it
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(records)


def by_key(records: list[dict[str, str]], key: str) -> dict[str, str]:
    return next(r for r in records if r["key"] == key)


def test_export_lists_both_gazetteers_for_review(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    assert export_csv(Settings(database_url=db), out) == 4
    records = read(out)
    assert [(r["kind"], r["key"]) for r in records] == [
        ("cluster", "kayole"),
        ("cluster", "quarry road"),
        ("location", "adr_mnt_gikomba_mkt"),
        ("location", "nw_kayole_junction_fdt3"),
    ]
    gikomba = by_key(records, "adr_mnt_gikomba_mkt")
    assert {k: gikomba[k] for k in ("status", "verified", "distance_km", "open_tickets", "cluster_key")} == {
        "status": "rejected",
        "verified": "false",
        "distance_km": "301.2",
        "open_tickets": "1",
        "cluster_key": "quarry road",
    }
    assert by_key(records, "quarry road")["open_tickets"] == "1"  # the QOA ticket


def test_corrected_and_verified_rows_come_back_and_stay(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    export_csv(Settings(database_url=db), out)
    records = read(out)
    by_key(records, "adr_mnt_gikomba_mkt").update(latitude="-1.2831", longitude="36.8372", verified="TRUE")
    by_key(records, "nw_kayole_junction_fdt3")["verified"] = "true"
    records.append(
        {
            "kind": "location",
            "key": "SDUS_PIPELINE_STG",
            "name": "SDUS_PIPELINE_STG",
            "cluster_key": "pipeline",
            "latitude": "-1.3177",
            "longitude": "36.8958",
            "verified": "true",
        }
    )
    write(out, records)
    result = run_cli(["gazetteer", "import", str(out)], {"PATH": "/usr/bin:/bin", "DATABASE_URL": db}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 5 rows: 2 updated, 1 added, 2 tickets re-placed" in result.stdout
    saved = rows(db, "geo_locations", "status, latitude, verified, provider")
    assert saved == {
        "adr_mnt_gikomba_mkt": ("ok", -1.2831, True, "manual"),
        "nw_kayole_junction_fdt3": ("ok", -1.2761, True, "locationiq"),
        "sdus_pipeline_stg": ("ok", -1.3177, True, "manual"),
    }
    where = placed(db)
    assert where["WOT3"] == ("location", -1.2831, 36.8372)
    assert where["WOT6"] == ("location", -1.3177, 36.8958)
    # Geocoding never asks for, nor overwrites, what an operator verified.
    with FakeGeocodeServer("locationiq", key="pk.test") as server:
        geocode_locations(settings_for(db, server, geocoder_api_key="pk.test"), apply=True, retry_failed=True)
        assert server.requests == []  # the other Kayole Junction code reused the answer
    after = rows(db, "geo_locations", "status, latitude, verified, provider")
    assert {key: after[key] for key in saved} == saved


def test_an_unchanged_file_changes_nothing(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    export_csv(Settings(database_url=db), out)
    before = rows(db, "geo_locations", "updated_at")
    report = import_csv(Settings(database_url=db), out)
    assert (report.rows, report.changed, report.inserted) == (4, [], [])
    assert rows(db, "geo_locations", "updated_at") == before


def test_clearing_a_point_takes_it_off_the_map(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    export_csv(Settings(database_url=db), out)
    records = read(out)
    by_key(records, "nw_kayole_junction_fdt3").update(latitude="", longitude="")
    write(out, records)
    import_csv(Settings(database_url=db), out)
    assert rows(db, "geo_locations", "status, latitude")["nw_kayole_junction_fdt3"] == ("rejected", None)
    assert placed(db)["WOT1"] == ("cluster", *KAYOLE)


def test_bad_files_are_reported_and_nothing_is_applied(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    export_csv(Settings(database_url=db), out)
    records = read(out)
    by_key(records, "kayole").update(latitude="-1.30", longitude="36.90")  # valid on its own
    by_key(records, "quarry road").update(latitude="north", longitude="36.84")
    by_key(records, "adr_mnt_gikomba_mkt").update(latitude="-1.28", longitude="")
    by_key(records, "nw_kayole_junction_fdt3").update(latitude="-91", verified="perhaps")
    write(out, records)
    before = (rows(db, "geo_clusters", "latitude"), rows(db, "geo_locations", "latitude"))
    with pytest.raises(GazetteerImportError) as caught:
        import_csv(Settings(database_url=db), out)
    message = str(caught.value)
    assert "3 problem(s); nothing was imported" in message
    assert "line 3: coordinates 'north', '36.84' are not numbers" in message
    assert "line 4: latitude and longitude must both be filled or both be blank" in message
    assert "line 5: verified must be true or false, not 'perhaps'" in message
    assert (rows(db, "geo_clusters", "latitude"), rows(db, "geo_locations", "latitude")) == before


def test_unknown_columns_are_refused_through_the_cli(db: str, tmp_path: Path) -> None:
    out = tmp_path / "gazetteer.csv"
    write(
        out,
        [
            {
                "kind": "cluster",
                "key": "kayole",
                "latitude": "-1.3",
                "longitude": "36.9",
                "verified": "true",
                "notes": "checked",
            }
        ],
        ["kind", "key", "latitude", "longitude", "verified", "notes"],
    )
    result = run_cli(["gazetteer", "import", str(out)], {"PATH": "/usr/bin:/bin", "DATABASE_URL": db}, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {out}: 1 problem(s); nothing was imported.")
    assert "unknown columns 'notes'" in result.stderr
    assert rows(db, "geo_clusters", "latitude")["kayole"] == (-1.276,)


def test_export_through_the_cli(db: str, tmp_path: Path) -> None:
    out = tmp_path / "review.csv"
    with FakeGeocodeServer("locationiq") as server:
        result = run_cli(["gazetteer", "export", "--out", str(out)], geo_env(db, server), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exported 4 rows to {out}"
    assert list(read(out)[0]) == list(COLUMNS)


@pytest.mark.parametrize(
    "body, problem",
    [
        (
            "cluster,kayole,-1.27,36.91,true\ncluster,big," + "x" * 140_000 + ",36.9,true\n",
            "line 3: a cell is 140,000 characters long; gazetteer cells hold at most 10,000",
        ),
        (
            'cluster,kayole,-1.27,36.91,true\n"unterminated,k,x,1,true\ncluster,likoni,-4.08,39.66,true\n',
            "line 3: a quote opened in this record is never closed",
        ),
        ('cluster,"kay"ole,-1.27,36.91,true\n', "line 2: text follows a closing quote"),
        ("cluster,kayole\u2028east,-1.27,36.91,maybe\n", "line 2: verified must be true or false"),
        ("cluster,kay\x00ole,-1.27,36.91,true\n", "line 2: contains a NUL character"),
        (
            'cluster,"kayole\neast",-1.27,36.91,true\ncluster,likoni,x,39.66,true\n',
            "line 4: coordinates 'x', '39.66' are not numbers",
        ),
    ],
)
def test_every_problem_names_its_real_line_and_nothing_is_imported(
    db: str, tmp_path: Path, body: str, problem: str
) -> None:
    path = tmp_path / "reviewed.csv"
    path.write_text("kind,key,latitude,longitude,verified\n" + body, encoding="utf-8", newline="")
    before = rows(db, "geo_clusters", "latitude, longitude, verified")
    with pytest.raises(GazetteerImportError) as raised:
        import_csv(Settings(database_url=db), path)
    assert problem in str(raised.value)
    assert "nothing was imported" in str(raised.value)
    assert rows(db, "geo_clusters", "latitude, longitude, verified") == before
