"""Named crash points, so tests can kill a real run at each step and prove the resume.

Set FLEETTICKETS_CRASH_AT=<point>[:<n>] to end the process abruptly (no
cleanup, no rollback message, like a killed container) the n-th time the run
reaches <point>. Unset, every call is a no-op.
"""

from __future__ import annotations

import os
from collections import Counter

CRASH_EXIT_STATUS = 70
_SPEC = os.environ.get("FLEETTICKETS_CRASH_AT", "")
# Read once: hot loops test this flag instead of calling crash_point per row.
ARMED = bool(_SPEC)
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    if not ARMED:
        return
    point, _, nth = _SPEC.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os._exit(CRASH_EXIT_STATUS)
