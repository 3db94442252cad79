"""The command line: help everywhere, version, configuration errors as one line and exit 2."""

from __future__ import annotations

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
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})}, cwd="/",
    )  # fmt: skip


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
