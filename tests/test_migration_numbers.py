"""Migration numbering: the check against the main branch, and the operator's ways out of a refusal."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from fleettickets.errors import MigrationError
from fleettickets.migrate import apply_migrations

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check_migration_numbers.py"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env={**os.environ, **GIT_ENV}, check=True
    )
    return result.stdout.strip()


def write(repo: Path, name: str, text: str = "") -> None:
    (repo / "migrations").mkdir(parents=True, exist_ok=True)
    (repo / "migrations" / name).write_text(text or f"-- {name}\nSELECT 1;\n")


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), *args], cwd=repo, capture_output=True, text=True, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """main holds 01 and 02; the work happens on branch `feature`, forked there."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "01_base.sql")
    write(repo, "02_more.sql")
    (repo / "migrations" / "README.md").write_text("not a migration\n")
    commit(repo, "01 and 02")
    git(repo, "checkout", "-q", "-b", "feature")
    return repo


def land_on_main(repo: Path, *names: str) -> None:
    git(repo, "checkout", "-q", "main")
    for name in names:
        write(repo, name)
    commit(repo, "landed on main")
    git(repo, "checkout", "-q", "feature")


def test_a_new_migration_above_main_passes(repo: Path) -> None:
    write(repo, "03_feature.sql")  # not even committed yet: the working tree counts
    result = check(repo)
    assert result.returncode == 0, result.stderr
    assert "every migration not on main is numbered above it" in result.stdout


def test_a_new_migration_numbered_below_one_that_landed_meanwhile_fails(repo: Path) -> None:
    write(repo, "03_feature.sql")
    commit(repo, "feature")
    land_on_main(repo, "03_other.sql", "04_other.sql")
    result = check(repo)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "migrations/03_feature.sql is numbered at or below 04_other.sql, the highest on main; "
        "renumber it to 05 or above before merging (a database that has applied 04_other.sql would refuse it)"
    )
    git(repo, "mv", "migrations/03_feature.sql", "migrations/05_feature.sql")
    assert check(repo).returncode == 0


def test_the_same_number_as_the_highest_on_main_fails(repo: Path) -> None:
    write(repo, "03_feature.sql")
    commit(repo, "feature")
    land_on_main(repo, "03_other.sql")
    result = check(repo)
    assert result.returncode == 1
    assert "03_feature.sql is numbered at or below 03_other.sql" in result.stderr


def test_editing_or_deleting_a_migration_that_landed_fails(repo: Path) -> None:
    write(repo, "01_base.sql", "-- base, edited\nSELECT 2;\n")
    (repo / "migrations" / "02_more.sql").unlink()
    result = check(repo)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "migrations/02_more.sql is on main but was deleted here; applied migrations are never deleted: restore it",
        (
            "migrations/01_base.sql differs from main; a migration that has landed is never edited: "
            "revert it and add a new migration"
        ),
    ]


def test_a_branch_that_is_only_behind_main_passes(repo: Path) -> None:
    git(repo, "checkout", "-q", "main")
    write(repo, "02_more.sql", "-- changed on main after the fork\nSELECT 3;\n")
    commit(repo, "main changes 02")
    git(repo, "checkout", "-q", "feature")
    land_on_main(repo, "03_other.sql")
    assert check(repo).returncode == 0


def test_origin_main_is_the_default_base_when_it_exists(repo: Path) -> None:
    write(repo, "03_feature.sql")
    commit(repo, "feature")
    land_on_main(repo, "04_other.sql")
    git(repo, "update-ref", "refs/remotes/origin/main", "main~1")  # the remote has not seen 04 yet
    result = check(repo)
    assert result.returncode == 0 and "not on origin/main" in result.stdout
    assert check(repo, "main").returncode == 1


def test_without_git_history_or_base_it_says_so_and_passes(tmp_path: Path, repo: Path) -> None:
    tarball = tmp_path / "unpacked"
    write(tarball, "01_base.sql")
    result = check(tarball)
    assert result.returncode == 0
    assert result.stdout.startswith("migration numbers not checked: ") and "not a git checkout" in result.stdout
    git(repo, "branch", "-q", "-m", "main", "trunk")
    result = check(repo)
    assert (result.returncode, result.stdout.strip()) == (
        0,
        "migration numbers not checked: no origin/main or main branch to compare with",
    )
    result = check(repo, "release")  # a base asked for by name must exist
    assert result.returncode == 2 and "no release to compare with" in result.stderr


def test_this_checkout_keeps_the_rules() -> None:
    result = subprocess.run([sys.executable, str(CHECK)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --- what an operator does when a database refuses a lower pending migration ----------

ONE = "-- one\nCREATE TABLE tickets.one (x int);\n"
TWO = "-- two\nCREATE OR REPLACE FUNCTION tickets.two() RETURNS int LANGUAGE sql AS 'SELECT 2';\n"
THREE = "-- three\nCREATE TABLE tickets.three (x int);\n"


def _function_two(conn: psycopg.Connection) -> object:
    return conn.execute("SELECT to_regprocedure('tickets.two()') IS NOT NULL").fetchone()


def test_a_lower_file_that_ran_nowhere_is_renumbered(empty_db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "01_one.sql").write_text(ONE)
    (folder / "03_three.sql").write_text(THREE)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        apply_migrations(conn, folder)
        (folder / "02_two.sql").write_text(TWO)
        with pytest.raises(
            MigrationError,
            match="02_two.sql is numbered below an applied migration; renumber it after the newest applied one",
        ):
            apply_migrations(conn, folder)
        (folder / "02_two.sql").rename(folder / "04_two.sql")
        assert apply_migrations(conn, folder) == ["04_two.sql"]
        assert _function_two(conn) == (True,)


def test_a_lower_file_that_ran_somewhere_is_restated_and_recorded(
    pg_server: str, empty_db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "01_one.sql").write_text(ONE)
    (folder / "02_two.sql").write_text(TWO)
    (folder / "03_three.sql").write_text(THREE)
    early = "ft_numbers_early"  # migrated while 02 was already there: it ran 02
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(early)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(early)))
    early_url = psycopg.conninfo.make_conninfo(pg_server, dbname=early)
    try:
        with psycopg.connect(early_url, autocommit=True) as conn:
            assert len(apply_migrations(conn, folder)) == 3
        with psycopg.connect(empty_db_url, autocommit=True) as late:
            # Migrated before 02 arrived: 02 is pending below 03 and refused for good.
            (folder / "02_two.sql").rename(tmp_path / "02_two.sql")
            apply_migrations(late, folder)
            (tmp_path / "02_two.sql").rename(folder / "02_two.sql")
            with pytest.raises(MigrationError, match="02_two.sql is numbered below"):
                apply_migrations(late, folder)
            # The way out: a higher migration restates 02, and 02 is recorded where it never ran.
            (folder / "04_two_restated.sql").write_text(TWO.replace("-- two", "-- two, restated"))
            checksum = hashlib.sha256((folder / "02_two.sql").read_bytes()).hexdigest()
            late.execute(
                "INSERT INTO tickets.schema_migrations (filename, checksum, description) "
                "VALUES ('02_two.sql', %s, 'recorded without running: restated by a later migration')",
                (checksum,),
            )
            assert apply_migrations(late, folder) == ["04_two_restated.sql"]
            assert _function_two(late) == (True,)
        with psycopg.connect(early_url, autocommit=True) as conn:
            assert apply_migrations(conn, folder) == ["04_two_restated.sql"]  # harmless where 02 ran
            assert _function_two(conn) == (True,)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(early)))
