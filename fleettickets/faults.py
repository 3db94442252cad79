"""Named crash points in the run, where a test may end it abruptly; no-ops unless armed.

Arming (FLEETTICKETS_CRASH_AT) and what happens then live with the test support
in fleettickets_dev/faults.py, which the deployed image does not carry.
"""

from __future__ import annotations

import os

CRASH_AT_ENV = "FLEETTICKETS_CRASH_AT"
_armed = os.environ.get(CRASH_AT_ENV, "")


def crash_point(name: str) -> None:
    if _armed:
        from fleettickets_dev.faults import reached

        reached(name, _armed)
