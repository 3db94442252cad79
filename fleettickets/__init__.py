"""fleettickets: the INC change stream, loaded into PostGIS for the live map and SLA picture."""

__version__ = "0.1.0"
