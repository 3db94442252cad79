"""The documented dashboard contract matches real fn_inc_dashboard output.

Real payloads and the example in docs/dashboard-api-contract.md must validate
against schemas/dashboard-payload.schema.json, and every field of a real
payload must be named on that page.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.test_dashboard_fn import dash_url, dashboard  # noqa: F401 (dash_url is a fixture)

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "dashboard-payload.schema.json").read_text())
DOC = (ROOT / "docs" / "dashboard-api-contract.md").read_text()


def validate(payload: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(payload)


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every key, `[]` for list items; a list of scalars is a leaf."""
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths |= field_paths(child, path) or {path}
        return paths
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return set().union(*(field_paths(item, f"{prefix}[]") for item in value))
    return set()


def test_the_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"p_window": "last_30_days"},
        {"p_window": "yesterday", "p_cluster": "pipeline"},
        {"p_status": "in_progress", "p_max_features": 1},
        {"p_max_features": None},
        {"p_window": "custom", "p_from": date(2001, 1, 1), "p_to": date(2001, 1, 1)},
    ],
)
def test_real_payloads_match_the_schema(dash_url: str, args: dict) -> None:  # noqa: F811
    validate(dashboard(dash_url, **args))


def test_an_empty_database_payload_matches_the_schema(db_url: str) -> None:
    validate(dashboard(db_url))


def test_the_documented_example_matches_the_schema() -> None:
    example = DOC[DOC.index("\n## Example\n") : DOC.index("\n## Field by field\n")]
    blocks = re.findall(r"```json\n(.*?)\n```", example, flags=re.S)
    assert len(blocks) == 1
    validate(json.loads(blocks[0]))


def test_every_field_of_a_real_payload_is_documented(dash_url: str) -> None:  # noqa: F811
    payload = dashboard(dash_url, p_window="last_7_days")
    documented = set(re.findall(r"`([a-z_0-9.\[\]]+)`", DOC))
    missing = sorted(field_paths(payload) - documented)
    assert missing == []


def test_the_schema_rejects_drift(dash_url: str) -> None:  # noqa: F811
    payload = dashboard(dash_url)
    payload["metrics"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(payload)
    payload = dashboard(dash_url)
    del payload["open"]["features"][0]["properties"]["sla_state"]
    with pytest.raises(jsonschema.ValidationError):
        validate(payload)
