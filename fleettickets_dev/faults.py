"""Arming the run's named crash points, so tests can kill a real run at each step and prove the resume.

Run a command with FLEETTICKETS_CRASH_AT=<point>[:<n>] and the process ends
abruptly (no cleanup, no rollback message, like a killed container) the n-th
time the run reaches <point>. The points themselves are the `crash_point`
calls in the package (fleettickets/faults.py).
"""

from __future__ import annotations

import os
from collections import Counter

CRASH_EXIT_STATUS = 70
_reached: Counter[str] = Counter()


def reached(name: str, spec: str) -> None:
    """The run is at crash point `name`; end it if `spec` says this is the time."""
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os._exit(CRASH_EXIT_STATUS)
