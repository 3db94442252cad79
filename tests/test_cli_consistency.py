"""One consistent command line: options where an operator types them, choices checked first, JSON everywhere."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import psycopg

from fleettickets.clock import EAT
from fleettickets.settings import Settings
from tests.stream_tools import job_env, run_cli

NOW = datetime(2026, 6, 16, 18, 0, tzinfo=EAT)
NO_SETTINGS = {"PATH": "/usr/bin:/bin"}


def test_verbosity_options_work_after_the_command_too(tmp_path: Path) -> None:
    for args in (["ingest", "-v"], ["ingest", "-q"], ["-v", "ingest"], ["history", "rebuild", "-vv"]):
        result = run_cli(args, NO_SETTINGS, tmp_path)
        assert result.returncode == 2, args
        assert "No such option" not in result.stderr
        assert "is not set" in result.stderr or "are not set" in result.stderr


def test_choices_are_checked_before_any_setting_is_read(tmp_path: Path) -> None:
    for args, option in (
        (["dashboard", "--window", "foo"], "--window"),
        (["map", "--out", "m.html", "--status", "opne"], "--status"),
    ):
        result = run_cli(args, NO_SETTINGS, tmp_path)
        assert result.returncode == 2
        assert f"Invalid value for '{option}'" in result.stderr and "DATABASE_URL" not in result.stderr


def test_dates_are_named_in_words_in_the_help(tmp_path: Path) -> None:
    dashboard = run_cli(["dashboard", "--help"], NO_SETTINGS, tmp_path).stdout
    assert "--from DATE" in dashboard and "%Y" not in dashboard
    assert "TIME" in run_cli(["history", "as-of", "--help"], NO_SETTINGS, tmp_path).stdout


def test_dashboard_json_is_the_database_text_unchanged(db_url: str, tmp_path: Path) -> None:
    env = job_env(db_url, Settings(), now=NOW)
    printed = run_cli(["dashboard", "--json", "--window", "last_7_days"], env, tmp_path)
    assert printed.returncode == 0, printed.stderr
    with psycopg.connect(db_url) as conn:
        text = conn.execute(
            "SELECT reporting.fn_inc_dashboard(p_window => 'last_7_days', p_now => %s)::text", (NOW,)
        ).fetchone()[0]  # type: ignore[index]
    generated = json.loads(text)["generated_at"]
    assert printed.stdout.rstrip("\n") == text.replace(generated, json.loads(printed.stdout)["generated_at"])


def test_migrate_json_and_its_failure_document(empty_db_url: str, tmp_path: Path) -> None:
    env = {**NO_SETTINGS, "DATABASE_URL": empty_db_url}
    preview = json.loads(run_cli(["migrate", "--dry-run", "--json"], env, tmp_path).stdout)
    assert preview["ok"] is True and preview["applied"] is False and preview["migrations"][0] == "01_tickets_schema.sql"
    failed = run_cli(
        ["migrate", "--json"], {**NO_SETTINGS, "DATABASE_URL": "postgresql://a:Pw9xQ7zK@127.0.0.1:1/x"}, tmp_path
    )
    assert failed.returncode == 1
    document = json.loads(failed.stdout)
    assert document["ok"] is False and document["failed"].startswith("cannot connect to the database")
    assert "Pw9xQ7zK" not in failed.stdout + failed.stderr


def test_geocoding_and_gazetteer_print_json(db_url: str, tmp_path: Path) -> None:
    env = {**job_env(db_url, Settings(), now=NOW), "GEOCODER_PROVIDER": "locationiq", "GEOCODER_API_KEY": "pk.k-3141"}
    clusters = json.loads(run_cli(["geocode-clusters", "--json"], env, tmp_path).stdout)
    assert clusters["ok"] is True and clusters["applied"] is False and clusters["kind"] == "cluster"
    exported = json.loads(run_cli(["gazetteer", "export", "--out", "g.csv", "--json"], env, tmp_path).stdout)
    assert exported == {"ok": True, "rows": exported["rows"], "out": "g.csv"}
    imported = run_cli(["gazetteer", "import", "g.csv", "--dry-run", "--json"], env, tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["applied"] is False
    missing = run_cli(
        ["gazetteer", "import", "g.csv", "--json"], {**env, "DATABASE_URL": "postgresql://a@127.0.0.1:1/x"}, tmp_path
    )
    assert json.loads(missing.stdout)["ok"] is False


def test_gazetteer_import_dry_run_writes_nothing(db_url: str, tmp_path: Path) -> None:
    env = job_env(db_url, Settings(), now=NOW)
    (tmp_path / "g.csv").write_text(
        "kind,key,name,cluster_key,region,latitude,longitude,verified\n"
        "cluster,kayole,Kayole,kayole,Nairobi,-1.2756,36.9125,true\n"
    )
    preview = run_cli(["gazetteer", "import", "g.csv", "--dry-run"], env, tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.rstrip().endswith("(dry run: nothing written)")
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM tickets.geo_clusters").fetchone() == (0,)


def test_reading_commands_print_a_json_failure_document(tmp_path: Path) -> None:
    env = {**NO_SETTINGS, "DATABASE_URL": "postgresql://a@127.0.0.1:1/x"}
    for args in (["status", "--json"], ["dashboard", "--json"], ["dispatch", "--near", "-1.29,36.82", "--json"]):
        result = run_cli(args, env, tmp_path)
        assert result.returncode == 1, args
        document = json.loads(result.stdout)
        assert document["ok"] is False and "cannot connect" in document["failed"], args
