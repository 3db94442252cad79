"""The pinned clock every test runs under, in-process and in the CLI processes it starts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import pytest

from fleettickets import clock
from fleettickets.clock import EAT

# Ten minutes after the default sample stream's last file (06:00-08:00 EAT on
# 2026-06-15): inside export hours, so a healthy stream is healthy.
TEST_NOW = datetime(2026, 6, 15, 8, 10, tzinfo=EAT)


@pytest.fixture(scope="session", autouse=True)
def pinned_clock_session() -> Iterator[datetime]:
    """Pinned before any fixture runs, module-scoped ones included."""
    os.environ.pop(clock.NOW_ENV, None)
    clock.pin(TEST_NOW)
    yield TEST_NOW
    clock.pin(None)


@pytest.fixture(autouse=True)
def pinned_clock(pinned_clock_session: datetime) -> Iterator[datetime]:
    """TEST_NOW for every test; a test that needs another instant calls clock.pin itself."""
    yield pinned_clock_session
    clock.pin(pinned_clock_session)
