"""What ``GET /v1/grid`` answers: MGRS grid lines for a box, as GeoJSON, for a browser with no MGRS library.

An MGRS grid is the UTM grid of one zone, its 100 km squares lettered. The console draws the
lines at 1 km, 10 km or 100 km where they are readable; computing them needs a transverse
Mercator projection, which the service already has (``pyproj``, as ``geo`` uses it) and a
browser offline has not. Like ``/v1/cells`` this is pure arithmetic on the box it is given: it
reads nothing from the picture, so it can tell nobody anything they did not send.

The zone is the standard 6° strip of the box's centre (the Norway and Svalbard exceptions of
MGRS are not followed); the lines are clipped to the part of the box inside that strip.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import mgrs
import shapely
from pyproj import Transformer

from deconfliction.errors import InvalidInput
from deconfliction.service import parse_box

SPACINGS_M = (1000, 10000, 100000)
"""The grid spacings offered: 1 km, 10 km, 100 km."""
MAX_LINES = 80
"""At most this many lines along each axis in one answer (a box too large for its spacing is refused)."""
SAMPLES = 16
"""Each line is drawn through this many segments: a UTM line is not quite straight in lon/lat."""

_MGRS = mgrs.MGRS()


@functools.cache
def _projections(zone: int, south: bool) -> tuple[Transformer, Transformer]:
    epsg = (32700 if south else 32600) + zone
    return (
        Transformer.from_crs(4326, epsg, always_xy=True),
        Transformer.from_crs(epsg, 4326, always_xy=True),
    )


def _square(lon: float, lat: float) -> str:
    """The 100 km square's two letters at a point ("XD")."""
    ref = str(_MGRS.toMGRS(lat, lon, MGRSPrecision=0))
    return ref[-2:]


def grid_geojson(area: str, spacing_m: int) -> dict[str, Any]:
    """The grid lines of ``spacing_m`` inside ``area`` (west,south,east,north) as a GeoJSON FeatureCollection.

    Each feature is a LineString with ``axis`` (easting or northing), ``value_m`` (the UTM
    coordinate), ``label`` (the 100 km square and the digits MGRS writes for that line at this
    spacing, e.g. ``"XD 84"`` for easting 684 000 m at 1 km) and ``label_at`` ([lon, lat]: the
    line's west or south end, where a map labels it).
    """
    if spacing_m not in SPACINGS_M:
        raise InvalidInput(f"spacing_m is one of {', '.join(map(str, SPACINGS_M))}", field="spacing_m")
    w, s, e, n = parse_box(area, "area")
    if s < -80 or n > 84:
        raise InvalidInput("the MGRS grid is UTM between 80° S and 84° N", field="area")
    centre_lon, centre_lat = (w + e) / 2, (s + n) / 2
    zone = min(60, int((centre_lon + 180) // 6) + 1)
    south = centre_lat < 0
    strip_w, strip_e = zone * 6 - 186, zone * 6 - 180
    clip = shapely.box(max(w, strip_w), s, min(e, strip_e), n)
    to_utm, to_lonlat = _projections(zone, south)
    # The box's extent in the zone's metres: its outline, densely, projected.
    cw, cs, ce, cn = clip.bounds
    edge = [i / SAMPLES for i in range(SAMPLES + 1)]
    lons = [cw + (ce - cw) * f for f in edge] * 2 + [cw] * len(edge) + [ce] * len(edge)
    lats = [cs] * len(edge) + [cn] * len(edge) + [cs + (cn - cs) * f for f in edge] * 2
    xs, ys = to_utm.transform(lons, lats)
    e0, e1 = math.floor(min(xs) / spacing_m), math.ceil(max(xs) / spacing_m)
    n0, n1 = math.floor(min(ys) / spacing_m), math.ceil(max(ys) / spacing_m)
    if max(e1 - e0, n1 - n0) > MAX_LINES:
        raise InvalidInput(
            f"the box needs more than {MAX_LINES} lines a side at {spacing_m} m: zoom in or take a wider spacing",
            field="spacing_m",
        )
    digits = 5 - round(math.log10(spacing_m))  # 1 km: 2 digits, 10 km: 1, 100 km: none
    features: list[dict[str, Any]] = []
    for axis, first, last in (("easting", e0, e1), ("northing", n0, n1)):
        for k in range(first, last + 1):
            value = k * spacing_m
            if axis == "easting":
                px = [float(value)] * (SAMPLES + 1)
                py = [min(ys) + (max(ys) - min(ys)) * f for f in edge]
            else:
                px = [min(xs) + (max(xs) - min(xs)) * f for f in edge]
                py = [float(value)] * (SAMPLES + 1)
            plon, plat = to_lonlat.transform(px, py)
            line = shapely.LineString(list(zip(plon, plat, strict=True))).intersection(clip)
            if line.is_empty or line.geom_type != "LineString":
                continue
            coords = [[round(x, 6), round(y, 6)] for x, y in line.coords]
            if len(coords) < 2:
                continue
            start = min(coords, key=lambda c: c[1] if axis == "easting" else c[0])
            within = int(value % 100000) // spacing_m
            number = f"{within:0{digits}d}" if digits else ""
            label = f"{_square(start[0] + 1e-7, start[1] + 1e-7)} {number}".strip()
            features.append({
                "type": "Feature",
                "properties": {"axis": axis, "value_m": value, "label": label, "label_at": start},
                "geometry": {"type": "LineString", "coordinates": coords},
            })  # fmt: skip
    return {
        "type": "FeatureCollection",
        "properties": {"zone": str(_MGRS.toMGRS(centre_lat, centre_lon, MGRSPrecision=0))[:-2], "spacing_m": spacing_m},
        "features": features,
    }
