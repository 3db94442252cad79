"""The schema catalogue (schema/ and the table of migrations/README.md) matches the migrations."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from scripts.schema_catalogue import (
    COMMAND,
    render_all,
    scan_migrations,
    stale_message,
    stale_paths,
    statements,
    write_all,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated(template_db: str) -> dict[str, str]:
    with psycopg.connect(template_db, autocommit=True) as conn:
        recorded = re.search(r"Read from PostgreSQL (\d+)", (ROOT / "schema/README.md").read_text())
        assert recorded, "schema/README.md names the PostgreSQL version it was read from"
        if conn.info.server_version // 10000 != int(recorded.group(1)):
            pytest.skip(
                f"the catalogue was read from PostgreSQL {recorded.group(1)}; "
                "another major version words definitions differently"
            )
        return render_all(conn, ROOT)


def test_the_checked_in_catalogue_is_current(generated: dict[str, str]) -> None:
    stale = stale_paths(ROOT, generated)
    assert not stale, stale_message(stale)


def test_a_stale_catalogue_names_its_files_and_the_command(generated: dict[str, str], tmp_path: Path) -> None:
    shutil.copytree(ROOT / "schema", tmp_path / "schema")
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    edited = tmp_path / "schema/tickets/functions/capture_history.sql"
    edited.write_text(edited.read_text().replace("BEGIN", "BEGIN -- hand edit", 1))
    (tmp_path / "schema/tickets/tables/dropped_long_ago.sql").write_text("-- gone\n")
    stale = stale_paths(tmp_path, generated)
    assert stale == ["schema/tickets/functions/capture_history.sql", "schema/tickets/tables/dropped_long_ago.sql"]
    message = stale_message(stale)
    assert "capture_history.sql" in message and f"run {COMMAND}" in message
    write_all(tmp_path, generated)
    assert stale_paths(tmp_path, generated) == []
    assert not (tmp_path / "schema/tickets/tables/dropped_long_ago.sql").exists()


def test_every_object_has_a_file_naming_where_its_definition_comes_from(generated: dict[str, str]) -> None:
    objects = {path: text for path, text in generated.items() if path.endswith(".sql")}
    assert "schema/reporting/functions/fn_inc_dashboard.sql" in objects
    assert "schema/tickets/tables/inc.sql" in objects
    assert "schema/tickets/views/inc_open_sla.sql" in objects
    for path, text in objects.items():
        header = text.splitlines()[1]
        assert re.search(
            r"created (or replaced )?in migrations/\d+_\w+\.sql|migrations runner", header, re.IGNORECASE
        ), f"{path}: {header}"
    # Extensions' own functions are not part of the schema.
    assert not any("gbtreekey" in text for text in objects.values())


def test_the_catalogue_holds_live_bodies_grants_and_generated_columns(generated: dict[str, str]) -> None:
    inc = generated["schema/tickets/tables/inc.sql"]
    assert "mttr integer GENERATED ALWAYS AS (tickets.hours_to_minutes((raw ->> 'mttr'::text))) STORED" in inc
    assert "CREATE TRIGGER inc_resolve_geometry_insert BEFORE INSERT ON tickets.inc" in inc
    assert "CREATE INDEX inc_open_geog_idx ON tickets.inc USING gist (geog) WHERE is_actionable;" in inc
    dashboard = generated["schema/reporting/functions/fn_inc_dashboard.sql"]
    assert "SECURITY DEFINER" in dashboard
    assert "GRANT EXECUTE ON FUNCTION reporting.fn_inc_dashboard(" in dashboard
    assert "TO fleettickets_reader;" in dashboard
    internal = generated["schema/reporting/functions/inc_dashboard_payload.sql"]
    assert "GRANT" not in internal  # internal: only its owner may call it


def test_last_definitions_follow_replacements_renames_and_alterations() -> None:
    origins = scan_migrations(ROOT / "migrations")

    def numbers(files: list[str]) -> list[str]:
        return [f.split("_")[0] for f in files]

    resolve = origins[("function", "tickets.resolve_geometry")]
    assert numbers(resolve.created) == ["01", "13", "14", "44"]
    history = origins[("function", "tickets.capture_history")]
    assert numbers(history.created)[:2] == ["10", "19"]
    payload = origins[("function", "reporting.inc_dashboard_payload")]
    assert numbers(payload.created)[:3] == ["09", "12", "17"]
    assert [(old, f.split("_")[0]) for old, f in payload.renamed_from] == [("reporting.fn_inc_dashboard", "24")]
    assert numbers(origins[("function", "reporting.fn_inc_dashboard")].created) == ["24"]
    inc = origins[("table", "tickets.inc")]
    assert numbers(inc.created) == ["01"]
    assert {"03", "07", "17"} <= set(numbers(inc.changed))  # columns added, dropped; an index dropped
    # 30 alters closure_events only inside a function body, when that function runs.
    assert "30" not in numbers(origins[("table", "tickets.closure_events")].changed)
    trigger = origins[("trigger", "tickets.inc_resolve_geometry_insert on tickets.inc")]
    assert numbers(trigger.created) == ["01"]


def test_statements_skip_comments_and_function_bodies_but_keep_do_blocks() -> None:
    sql = """
        -- CREATE TABLE tickets.in_a_comment (x int);
        CREATE FUNCTION tickets.f() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN EXECUTE 'ALTER TABLE tickets.at_run_time ADD COLUMN y int'; END $$;
        DO $$ BEGIN EXECUTE format('ALTER FUNCTION tickets.f() SECURITY DEFINER'); END $$;
        COMMENT ON TABLE tickets.t IS 'a ; inside a string';
    """
    found = list(statements(sql))
    assert len(found) == 3
    assert "in_a_comment" not in found[0] and "at_run_time" not in found[0]
    assert "alter function tickets.f()" in found[1]
    assert found[2] == "comment on table tickets.t is 'a ; inside a string'"
