"""A function exactly as an earlier migration created it, for tests that compare old and new bodies."""

from __future__ import annotations

from fleettickets.migrate import default_migrations_dir


def function_as_created(migration: str, name: str, renamed: str) -> str:
    """The CREATE [OR REPLACE] FUNCTION statement for `name` in `migration`, creating `renamed` instead."""
    text = (default_migrations_dir() / migration).read_text()
    signature = text.index(f"FUNCTION {name}(")
    start = text.rindex("CREATE", 0, signature)
    end = text.index("\n$$;", signature) + len("\n$$;")
    return text[start:end].replace(f"FUNCTION {name}(", f"FUNCTION {renamed}(", 1)
