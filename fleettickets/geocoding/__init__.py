"""Geocoding: place names from the feed, provider clients, the gazetteer tables and the runs that fill them.

Nothing is imported here, so `import fleettickets.geocoding.placenames` loads no
HTTP or database library.
"""
