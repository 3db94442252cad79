"""The command line: help everywhere, version, configuration errors as one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from fleettickets import __version__
from fleettickets.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += all_commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", all_commands(cli))
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"DATABASE_URL": "not a url"})
    assert result.exit_code == 0, result.output
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    assert command.help and len(command.help.strip()) > 20


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleettickets", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd="/",
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"fleettickets, version {__version__}"


def test_missing_setting_is_one_line_and_exit_2() -> None:
    result = run("migrate")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: DATABASE_URL is not set (set it in the environment or in .env; see .env.example)"
    )


def test_connection_failure_never_shows_the_password() -> None:
    result = run("migrate", env={"DATABASE_URL": "postgresql://app:TopSecret99@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "TopSecret99" not in result.stdout + result.stderr
    assert result.stderr.startswith("Error: cannot connect to the database in DATABASE_URL")


def test_migrate_through_the_cli(empty_db_url: str) -> None:
    first = run("migrate", "--dry-run", env={"DATABASE_URL": empty_db_url})
    assert first.returncode == 0
    assert "would apply 01_tickets_schema.sql" in first.stdout
    applied = run("migrate", env={"DATABASE_URL": empty_db_url})
    assert applied.returncode == 0, applied.stderr
    assert "applied 03_inc_columns.sql" in applied.stdout
    again = run("migrate", env={"DATABASE_URL": empty_db_url})
    assert again.stdout.startswith("schema is up to date")


def test_dashboard_prints_the_payload_pretty_or_compact(db_url: str) -> None:
    pretty = run("dashboard", "--window", "last_7_days", env={"DATABASE_URL": db_url})
    assert pretty.returncode == 0, pretty.stderr
    payload = json.loads(pretty.stdout)
    assert payload["window"]["name"] == "last_7_days"
    assert pretty.stdout.startswith('{\n  "generated_at": ')
    compact = run("dashboard", "--json", "--cluster", "Pipeline", env={"DATABASE_URL": db_url})
    assert compact.returncode == 0, compact.stderr
    assert compact.stdout.count("\n") == 1
    assert json.loads(compact.stdout)["filters"]["cluster"] == "Pipeline"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--window", "last_week"],
            "Error: Invalid value for '--window': 'last_week' is not one of 'today', "
            "'yesterday', 'last_7_days', 'last_30_days', 'this_month', 'custom'.",
        ),
        (
            ["--window", "custom", "--from", "2026-06-15", "--to", "2026-06-01"],
            "Error: --from (2026-06-15) is after --to (2026-06-01). Both dates are inclusive; "
            "for a single day pass the same date twice.",
        ),
        (
            ["--status", "opne"],
            "Error: Invalid value for '--status': 'opne' is not one of 'open', 'assigned', "
            "'in_progress', 'on_hold', 'resolved', 'closed', 'cancelled'.",
        ),
    ],
)
def test_dashboard_bad_arguments_are_one_line_and_exit_2(module_db_url: str, args: list[str], message: str) -> None:
    result = run("dashboard", *args, env={"DATABASE_URL": module_db_url})
    assert result.returncode == 2
    assert result.stdout == ""
    # Choices are checked by the command line (after its usage line), the rest by the function.
    assert result.stderr.strip().splitlines()[-1] == message


def test_dashboard_on_an_unmigrated_database_says_what_to_do(empty_db_url: str) -> None:
    result = run("dashboard", env={"DATABASE_URL": empty_db_url})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: reporting.fn_inc_dashboard does not exist in this database: run `fleettickets migrate` first"
    )


@pytest.mark.parametrize("value", ["2147483648", "0", "-5"])
def test_an_out_of_range_max_features_is_a_usage_error(db_url: str, value: str) -> None:
    result = run("dashboard", "--max-features", value, env={"DATABASE_URL": db_url})
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: --max-features must be from 1 to 2,147,483,647 (got {value})"
