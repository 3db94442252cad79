"""Calling a reporting entry point: one JSON value back, its refusals in the words of the command line.

The read functions (dashboard, dispatch, trends, team closures) refuse bad
arguments with SQLSTATE 22023, a message naming their SQL parameter and a
hint. An operator typed options, not parameters, so the message is given back
with each parameter replaced by its option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg

from fleettickets.errors import FleetTicketsError


def call(
    conn: psycopg.Connection,
    query: Any,
    arguments: Mapping[str, Any],
    *,
    function: str,
    option_names: Mapping[str, str],
    refusal: type[FleetTicketsError],
) -> Any:
    """The single value `query` returns; a refusal raises `refusal`, a missing function says to migrate."""
    try:
        row = conn.execute(query, arguments).fetchone()
    except psycopg.errors.InvalidParameterValue as exc:
        raise refusal(for_operator(exc, option_names)) from None
    except (psycopg.errors.UndefinedFunction, psycopg.errors.InvalidSchemaName):
        raise FleetTicketsError(
            f"{function} does not exist in this database: run `fleettickets migrate` first"
        ) from None
    assert row is not None
    return row[0]


def for_operator(exc: psycopg.Error, option_names: Mapping[str, str]) -> str:
    """The function's message and hint, each SQL parameter named by its option."""
    text = exc.diag.message_primary or str(exc).strip()
    if exc.diag.message_hint:
        text = f"{text}. {exc.diag.message_hint}"
    pattern = r"\b(" + "|".join(map(re.escape, option_names)) + r")\b"
    return re.sub(pattern, lambda m: option_names[m.group(1)], text)
