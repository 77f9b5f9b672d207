"""What ``GET /v1/cells`` answers: the outlines of H3 cells as GeoJSON, for clients without an H3 library.

A coarse asset is shown as the id of the H3 cell it is in; a browser offline has no H3
library to draw that cell. This route is pure arithmetic on the ids it is given: it reads
nothing from the picture, so it can tell nobody anything they did not send.
"""

from __future__ import annotations

import re
from typing import Any

import h3

from deconfliction.errors import InvalidInput

MAX_CELLS = 200
"""At most this many cells in one request."""

CELL_ID = re.compile(r"[0-9a-f]{15}")


def parse_ids(ids: str) -> list[str]:
    """Comma-separated H3 cell ids (15 lowercase hex digits each), in order, without repeats; refused precisely."""
    given = ids.split(",")
    if len(given) > MAX_CELLS:
        raise InvalidInput(f"{len(given)} cells asked for; at most {MAX_CELLS} in one request", field="ids")
    wanted: list[str] = []
    for i, raw in enumerate(given):
        cell = raw.strip()
        if not cell:
            raise InvalidInput(f"id {i + 1} is empty: give H3 cell ids separated by commas", field="ids")
        if not CELL_ID.fullmatch(cell) or not h3.is_valid_cell(cell):
            raise InvalidInput(f"{cell[:20]!r} (id {i + 1}) is not an H3 cell id: 15 lowercase hex digits", field="ids")
        if cell not in wanted:
            wanted.append(cell)
    return wanted


def cell_feature(cell: str) -> dict[str, Any]:
    """One cell as a GeoJSON Feature: its outline as a closed ring of [lon, lat]."""
    ring = [[round(lon, 7), round(lat, 7)] for lat, lon in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return {
        "type": "Feature",
        "id": cell,
        "properties": {"cell": cell, "resolution": h3.get_resolution(cell)},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def cells_geojson(ids: str) -> dict[str, Any]:
    """The cells named in ``ids`` as a GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": [cell_feature(c) for c in parse_ids(ids)]}
