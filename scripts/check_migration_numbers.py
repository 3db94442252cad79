"""Migration numbers against the main branch (see scripts/check-migration-numbers).

The runner refuses a pending migration numbered below one a database has
already applied, so a migration must be numbered above every migration on the
main branch when it merges; and a migration that has landed is never edited or
deleted, because databases record its checksum. Standard library and git only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

MIGRATION_NAME = re.compile(r"^(\d{2,4})_[a-z0-9_]+\.sql$")
FOLDER = "migrations"


class NoBase(Exception):
    """Nothing to compare with: not a git checkout, or the base branch is absent."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise NoBase("git is not installed") from None


def _number(filename: str) -> int:
    match = MIGRATION_NAME.match(filename)
    assert match
    return int(match.group(1))


def _migrations_at(repo: Path, commit: str) -> dict[str, str]:
    """Migration file names and their blob ids at a commit."""
    listing = _git(repo, "ls-tree", commit, f"{FOLDER}/")
    if listing.returncode != 0:
        raise NoBase(f"cannot list {FOLDER}/ at {commit}: {listing.stderr.strip()}")
    files = {}
    for line in listing.stdout.splitlines():
        meta, path = line.split("\t", 1)
        name = path.removeprefix(f"{FOLDER}/")
        if meta.split()[1] == "blob" and MIGRATION_NAME.match(name):
            files[name] = meta.split()[2]
    return files


def _working_tree(repo: Path) -> dict[str, str]:
    """Migration file names in the working tree and the blob ids their content would have."""
    names = sorted(p.name for p in (repo / FOLDER).glob("*.sql") if MIGRATION_NAME.match(p.name))
    if not names:
        return {}
    ids = _git(repo, "hash-object", "--", *(f"{FOLDER}/{name}" for name in names))
    return dict(zip(names, ids.stdout.split(), strict=True))


def default_base(repo: Path) -> str:
    for candidate in ("origin/main", "main"):
        if _git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").returncode == 0:
            return candidate
    raise NoBase("no origin/main or main branch to compare with")


def problems(repo: Path, base: str | None = None) -> tuple[str, list[str]]:
    """The base compared with, and every way the working tree's migrations break the rules against it."""
    if _git(repo, "rev-parse", "--is-inside-work-tree").returncode != 0:
        raise NoBase(f"{repo} is not a git checkout")
    base = base or default_base(repo)
    if _git(repo, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}").returncode != 0:
        raise NoBase(f"no {base} to compare with")
    on_base = _migrations_at(repo, base)
    fork = _git(repo, "merge-base", "HEAD", base)
    at_fork = _migrations_at(repo, fork.stdout.strip()) if fork.returncode == 0 else {}
    here = _working_tree(repo)
    found = []
    highest = max(on_base, key=_number, default=None)
    for name in sorted(set(here) - set(on_base), key=_number):
        if highest and _number(name) <= _number(highest):
            found.append(
                f"{FOLDER}/{name} is numbered at or below {highest}, the highest on {base}; "
                f"renumber it to {_number(highest) + 1:02d} or above before merging "
                f"(a database that has applied {highest} would refuse it)"
            )
    for name in sorted(set(at_fork) & set(on_base), key=_number):
        if name not in here:
            found.append(
                f"{FOLDER}/{name} is on {base} but was deleted here; applied migrations are never deleted: restore it"
            )
    for name in sorted(set(here) & set(on_base), key=_number):
        # A branch that is only behind keeps the version it forked from; that is not its edit.
        if here[name] != on_base[name] and here[name] != at_fork.get(name):
            found.append(
                f"{FOLDER}/{name} differs from {base}; a migration that has landed is "
                "never edited: revert it and add a new migration"
            )
    return base, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "base", nargs="?", help="the branch to compare with (default: origin/main when it exists, else main)"
    )
    args = parser.parse_args(argv)
    repo = Path.cwd()
    try:
        base, found = problems(repo, args.base)
    except NoBase as why:
        if args.base:
            print(f"check-migration-numbers: {why}", file=sys.stderr)
            return 2
        print(f"migration numbers not checked: {why}")
        return 0
    if found:
        for line in found:
            print(line, file=sys.stderr)
        return 1
    print(f"migration numbers: every migration not on {base} is numbered above it; none that landed was changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
