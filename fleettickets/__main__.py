"""Allows ``python -m fleettickets``."""

from fleettickets.cli import main

main()
