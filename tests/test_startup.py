"""Start-up: `--version` and `--help` load none of the heavy libraries the commands use."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("psycopg", "boto3", "botocore", "httpx")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[-1].split()[1:]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert loaded_after("import fleettickets.cli") == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["ingest", "--help"], ["doctor", "--help"]])
def test_version_and_help_load_no_heavy_library(args: list[str]) -> None:
    code = f"from fleettickets.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == []


def test_a_database_error_is_recognised_without_importing_psycopg_up_front() -> None:
    import psycopg

    from fleettickets.cli import _is_database_error

    assert _is_database_error(psycopg.errors.DiskFull("could not extend file"))
    assert not _is_database_error(ValueError("not from the database"))
