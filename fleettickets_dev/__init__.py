"""Development and test support for fleettickets: a sample change stream, a throwaway
local PostgreSQL cluster and the arming of the run's crash points.

Used by scripts/, bench/ and tests/; never part of the deployed package.
"""
