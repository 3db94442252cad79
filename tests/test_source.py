"""The bucket listing is untrusted: pagination bugs stop the run instead of looping or missing keys."""

from __future__ import annotations

from typing import Any

import pytest

from fleettickets.errors import ListingError
from fleettickets.source import list_change_files, parse_file_ts

PREFIX = "automations/inc/changes/"


class ScriptedListing:
    """A narrow stand-in for list_objects_v2 that replays the pages a buggy store sent."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]


def page(*names: str, token: str | None = None) -> dict[str, Any]:
    contents = [{"Key": PREFIX + n, "ETag": '"e"', "Size": 1} for n in names]
    return {
        "Contents": contents,
        "IsTruncated": token is not None,
        **({"NextContinuationToken": token} if token else {}),
    }


def test_pages_are_followed_and_files_ordered_by_their_timestamp() -> None:
    client = ScriptedListing(
        [
            page("2026-06-15T06-00-00.csv", "2026-06-15T06-20-00.csv", token="a"),
            page("2026-06-15T06-40-00.csv", "notes.txt"),
        ]
    )
    listing = list_change_files(client, "b", PREFIX)
    assert [f.name for f in listing.files] == [
        "2026-06-15T06-00-00.csv",
        "2026-06-15T06-20-00.csv",
        "2026-06-15T06-40-00.csv",
    ]
    assert listing.skipped == [(PREFIX + "notes.txt", "name is not <YYYY-MM-DDTHH-MM-SS>.csv")]
    assert client.calls[1]["ContinuationToken"] == "a"


def test_repeated_continuation_token_stops() -> None:
    client = ScriptedListing(
        [
            page("2026-06-15T06-00-00.csv", token="t"),
            page("2026-06-15T06-20-00.csv", token="t"),
            page("2026-06-15T06-40-00.csv", token="t"),
        ]
    )
    with pytest.raises(ListingError, match="repeated a continuation token"):
        list_change_files(client, "b", PREFIX)


def test_page_that_does_not_advance_stops() -> None:
    client = ScriptedListing(
        [
            page("2026-06-15T06-00-00.csv", "2026-06-15T06-20-00.csv", token="a"),
            page("2026-06-15T06-20-00.csv", token="b"),
        ]
    )
    with pytest.raises(ListingError, match="went backwards or repeated"):
        list_change_files(client, "b", PREFIX)


def test_truncated_page_without_token_stops() -> None:
    broken = page("2026-06-15T06-00-00.csv")
    broken["IsTruncated"] = True
    with pytest.raises(ListingError, match="truncated but gives no continuation token"):
        list_change_files(ScriptedListing([broken]), "b", PREFIX)


@pytest.mark.parametrize(
    "name, ok",
    [
        ("2026-06-15T17-00-00.csv", True),
        ("2026-02-29T06-00-00.csv", False),
        ("2026-06-15T17-00-00.CSV", False),
        ("2026-06-15 17-00-00.csv", False),
        ("2026-06-15T17-00.csv", False),
        ("latest.json", False),
    ],
)
def test_change_file_names(name: str, ok: bool) -> None:
    assert (parse_file_ts(name) is not None) is ok
