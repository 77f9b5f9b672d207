"""Positions and geometry: strict parsing of human notations, read-back, metric distances.

Everything the service keeps is WGS 84 longitude/latitude. Human input may be decimal,
degrees-minutes-seconds, MGRS or UTM; :func:`parse_position` reads exactly one place from
it or raises :class:`~deconfliction.errors.InvalidPosition` naming what is wrong. It never
guesses: a string with two valid readings is refused, not resolved.

Conversions are done by libraries (``mgrs`` for MGRS, ``pyproj`` for UTM and geodesics,
``shapely`` for geometry). The decimal/DMS reader is written here because the lenient
parsers on PyPI (``lat-lon-parser`` and friends) accept strings they cannot read
unambiguously, which is exactly what must not happen here.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import mgrs
import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.errors import InvalidInput, InvalidPosition

WGS84 = Geod(ellps="WGS84")
_MGRS = mgrs.MGRS()

Box = tuple[float, float, float, float]
"""A lon/lat box: west, south, east, north, in degrees."""


class PickledByFields:
    """Base of the frozen, slotted dataclasses a snapshot holds by the million: pickled as a call of the class.

    dataclasses pickle a frozen, slotted instance with a ``__setstate__`` written in Python that
    looks its fields up again for every object; a call of the generated ``__init__`` loads a
    snapshot's reports in half the time (1.5 against 3.1 µs a report with its position).
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        names: tuple[str, ...] = type(self).__slots__  # the dataclass's own: its fields, in order
        return (type(self), tuple(getattr(self, name) for name in names))


@dataclass(frozen=True, slots=True)
class LatLon(PickledByFields):
    """A WGS 84 position in decimal degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class ParsedPosition:
    """A position read from a human string.

    ``precision_m`` is how coarse the notation itself is: an MGRS reference at 100 m
    precision names a 100 m square, so the position is the square's centre and the
    service never records an uncertainty smaller than half its diagonal.
    """

    point: LatLon
    notation: str
    precision_m: float = 0.0


# ---------------------------------------------------------------------------- parsing

_NUMBER = r"\d+(?:\.\d+)?"
_SIGNED_PAIR = re.compile(rf"^\s*([+-]?{_NUMBER})\s*,\s*([+-]?{_NUMBER})\s*$")
_MGRS_RE = re.compile(
    r"^(?P<zone>\d{1,2})\s*(?P<band>[A-Z])\s*(?P<square>[A-Z]{2})\s*"
    r"(?P<e>\d+)?(?:\s+(?P<n>\d+))?$"
)
_UTM_RE = re.compile(
    rf"^(?P<zone>\d{{1,2}})\s*(?P<letter>[A-Z])\s+(?P<e>{_NUMBER})\s*(?:M?E)?\s+"
    rf"(?P<n>{_NUMBER})\s*(?:M?N)?$"
)
_DMS_TOKEN = re.compile(rf"({_NUMBER})\s*(''|°|º|'|′|\"|″)?|([NSEW])")
_BAND_LETTERS = "CDEFGHJKLMNPQRSTUVWX"  # 8° latitude bands from 80°S, no I or O
_COLUMN_LETTERS = set("ABCDEFGHJKLMNPQRSTUVWXYZ")  # 100 km column letters, no I or O
_ROW_LETTERS = set("ABCDEFGHJKLMNPQRSTUV")  # 100 km row letters, no I or O
_DMS_MARKS = (("°", "º"), ("'", "′"), ('"', "″", "''"))


def parse_position(text: object, field: str = "position") -> ParsedPosition:
    """Read one position from a human string, or raise ``InvalidPosition``.

    >>> parse_position("42S XD 84886 24985").point
    LatLon(lat=34.55..., lon=71.01...)

    Accepted: ``lat, lon`` in signed decimal degrees; decimal or DMS with hemisphere
    letters (``34.55N 71.015E``, ``34°33'00"N 71°00'54"E``, ``34 33 00 N 71 00 54 E``);
    MGRS with or without spaces at 1 m to 10 km precision; UTM ``42N 684887 3824986``
    where the letter is a latitude band or, for N and S, a hemisphere.
    """
    if not isinstance(text, str):
        raise InvalidPosition("a position must be a string such as '34.55, 71.015'", field=field)
    s = " ".join(text.strip().upper().split())
    if not s:
        raise InvalidPosition("the position is empty", field=field)
    if re.search(r"\d,\d", s) and not (_SIGNED_PAIR.match(s) and "." in s):
        # "34,55N 71,015E" or "34,71": a comma between digits may be a decimal comma.
        raise InvalidPosition(
            "a comma between digits could be a decimal comma: write decimals with a point and "
            "separate the coordinates with ', ' (34.55, 71.015)",
            field=field,
        )
    if m := _SIGNED_PAIR.match(s):
        return ParsedPosition(_checked(float(m[1]), float(m[2]), field), "decimal")
    if m := _UTM_RE.match(s):
        return _parse_utm(m, field)
    if m := _MGRS_RE.match(s):
        return _parse_mgrs(m, field)
    if re.search(r"[NSEW]", s) and not re.search(r"[A-DF-MO-RT-VX-Z]", s):
        return _parse_hemisphere_form(s, field)
    raise InvalidPosition(
        f"cannot read {text!r} as a position: use 'lat, lon' in decimal degrees, degrees "
        "with hemisphere letters (34°33'00\"N 71°00'54\"E), MGRS (42S XD 84886 24985) or "
        "UTM (42N 684887 3824986)",
        field=field,
    )


def _checked(lat: float, lon: float, field: str) -> LatLon:
    if not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        raise InvalidPosition(f"latitude {lat} is outside -90 to 90", field=field)
    if not math.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise InvalidPosition(f"longitude {lon} is outside -180 to 180", field=field)
    return LatLon(lat, lon)


def _parse_hemisphere_form(s: str, field: str) -> ParsedPosition:
    """Two coordinates, each with a hemisphere letter before or after it."""
    rest = re.sub(r"[\s,;]+", " ", s)
    tokens: list[tuple[str, str | None] | str] = []
    pos = 0
    for m in _DMS_TOKEN.finditer(rest):
        if rest[pos : m.start()].strip():
            raise InvalidPosition(f"unexpected {rest[pos : m.start()].strip()!r} in the position", field=field)
        pos = m.end()
        tokens.append(m[3] if m[3] else (m[1], m[2]))
    if rest[pos:].strip():
        raise InvalidPosition(f"unexpected {rest[pos:].strip()!r} in the position", field=field)
    prefix = isinstance(tokens[0], str)
    groups: list[tuple[str, list[tuple[str, str | None]]]] = []
    numbers: list[tuple[str, str | None]] = []
    letter: str | None = None
    for tok in tokens:
        if isinstance(tok, str):
            if prefix:
                if letter is not None:
                    groups.append((letter, numbers))
                letter, numbers = tok, []
            else:
                groups.append((tok, numbers))
                numbers = []
        else:
            numbers.append(tok)
    if prefix and letter is not None:
        groups.append((letter, numbers))
    elif numbers:
        raise InvalidPosition("every coordinate needs a hemisphere letter (N, S, E or W)", field=field)
    if len(groups) != 2:
        raise InvalidPosition("a position needs exactly one latitude and one longitude", field=field)
    values: dict[str, float] = {}
    for hemi, nums in groups:
        axis = "lat" if hemi in "NS" else "lon"
        if axis in values:
            raise InvalidPosition(f"two {'latitudes' if axis == 'lat' else 'longitudes'} given", field=field)
        value = _dms_value(nums, field)
        values[axis] = -value if hemi in "SW" else value
    return ParsedPosition(_checked(values["lat"], values["lon"], field), "dms")


def _dms_value(nums: list[tuple[str, str | None]], field: str) -> float:
    if not 1 <= len(nums) <= 3:
        raise InvalidPosition("a coordinate is degrees, optional minutes and optional seconds", field=field)
    for i, (raw, mark) in enumerate(nums):
        if mark is not None and mark not in _DMS_MARKS[i]:
            raise InvalidPosition(f"{raw}{mark} is not in the place of {('degrees', 'minutes', 'seconds')[i]}", field=field)
        if "." in raw and i < len(nums) - 1:
            raise InvalidPosition(f"only the last part of a coordinate may have decimals, not {raw}", field=field)
    parts = [float(raw) for raw, _ in nums]
    for name, part in zip(("minutes", "seconds"), parts[1:], strict=False):
        if part >= 60:
            raise InvalidPosition(f"{name} must be under 60, not {part:g}", field=field)
    return parts[0] + sum(p / 60.0**i for i, p in enumerate(parts[1:], start=1))


def _parse_mgrs(m: re.Match[str], field: str) -> ParsedPosition:
    zone, band, square = int(m["zone"]), m["band"], m["square"]
    if not 1 <= zone <= 60:
        raise InvalidPosition(f"MGRS zone {zone} is outside 1 to 60", field=field)
    if band not in _BAND_LETTERS:
        raise InvalidPosition(f"MGRS latitude band {band!r} is not one of {_BAND_LETTERS}", field=field)
    if square[0] not in _COLUMN_LETTERS or square[1] not in _ROW_LETTERS:
        raise InvalidPosition(f"MGRS 100 km square {square!r} has a letter that no square uses", field=field)
    e, n = m["e"] or "", m["n"]
    if n is None:
        if len(e) % 2:
            raise InvalidPosition(f"MGRS digits {e!r} cannot be split into equal easting and northing", field=field)
        e, n = e[: len(e) // 2], e[len(e) // 2 :]
    if len(e) != len(n):
        raise InvalidPosition(f"MGRS easting {e!r} and northing {n!r} have unequal digit counts", field=field)
    if not 1 <= len(e) <= 5:
        raise InvalidPosition("MGRS needs 1 to 5 digits each for easting and northing (10 km to 1 m)", field=field)
    precision_m = 10.0 ** (5 - len(e))
    ref = f"{zone:02d}{band}{square}{e}{n}"
    try:
        with warnings.catch_warnings():
            # mgrs warns (instead of failing) when the band contradicts the northing;
            # the check below turns that case into a precise refusal.
            warnings.simplefilter("ignore", RuntimeWarning)
            _, hemisphere, centre_e, centre_n = _MGRS.MGRSToUTM(ref)
    except Exception as exc:  # mgrs raises its own MGRSError with a terse message
        raise InvalidPosition(f"MGRS {m[0]!r} names no place: {exc}", field=field) from exc
    # The reference names a square; the place is somewhere inside it. mgrs gives the
    # square's centre: take it, and let half the diagonal count as uncertainty rather
    # than pretend to know more.
    south = hemisphere == "S"
    point = _utm_reading(zone, south, centre_e, centre_n)
    # mgrs silently maps impossible references (a band the northing contradicts) to a
    # neighbour. A valid reference names a square of which some part lies in the named
    # zone, band and square (squares may straddle a band or zone edge), so sample it.
    prefix = f"{zone:02d}{band}{square}"
    # The corners are sampled a ten-millionth of the side in: a square cut by a zone edge may have only a sliver
    # in the zone it is named for (atheris found one a millimetre wide; tests/fuzz).
    edge, far = 1e-7, 1 - 1e-7
    samples = ((0.5, 0.5), (edge, edge), (far, edge), (edge, far), (far, far))
    names = []
    for fx, fy in samples:
        p = _utm_reading(zone, south, centre_e + (fx - 0.5) * precision_m, centre_n + (fy - 0.5) * precision_m)
        names.append(_MGRS.toMGRS(p.lat, p.lon, MGRSPrecision=5))
        if names[-1].startswith(prefix):
            break
    else:
        half = precision_m / 2
        corners = [_utm_reading(zone, south, centre_e + dx, centre_n + dy) for dx in (-half, half) for dy in (-half, half)]
        if not _touches_its_zone(ref, zone, band, point, len(e), corners):
            raise InvalidPosition(
                f"MGRS {m[0]!r} is not a valid reference: that easting and northing lie in "
                f"{names[0][:3]} {names[0][3:5]}, not {zone}{band} {square}",
                field=field,
            )
    return ParsedPosition(_checked(point.lat, point.lon, field), "mgrs", precision_m=precision_m * math.sqrt(2) / 2)


@functools.lru_cache(maxsize=128)
def _utm_to_lonlat(zone: int, south: bool) -> Transformer:
    epsg = (32700 if south else 32600) + zone
    return Transformer.from_crs(epsg, 4326, always_xy=True)


def _utm_reading(zone: int, south: bool, easting: float, northing: float) -> LatLon:
    lon, lat = _utm_to_lonlat(zone, south).transform(easting, northing)
    return LatLon(lat, lon)


def _zone_longitudes(zone: int, band: str) -> tuple[float, float] | None:
    """The longitudes [west, east) of a UTM zone within a latitude band, with the Norway and Svalbard exceptions."""
    if band == "X" and zone in (32, 34, 36):
        return None
    if band == "X" and zone in (31, 33, 35, 37):
        return {31: (0.0, 9.0), 33: (9.0, 21.0), 35: (21.0, 33.0), 37: (33.0, 42.0)}[zone]
    if band == "V" and zone in (31, 32):
        return (0.0, 3.0) if zone == 31 else (3.0, 12.0)
    return -180.0 + 6 * (zone - 1), -180.0 + 6 * zone


def _touches_its_zone(ref: str, zone: int, band: str, centre: LatLon, digits: int, corners: list[LatLon]) -> bool:
    """Whether the square ``ref`` names has a part, however thin, in its own zone and band: its ``corners``, placed
    as the parser places the square (PROJ), reach into the zone's longitudes and the band's latitudes; or the
    square's centre moved to the nearest place of that zone and band is still in the square, and named by it.

    Sampling the square misses a square that only touches its zone: "56, 3" lies on the edge of 32V, in a
    square whose centre is in 31V. And mgrs, which names the samples, places a zone's edge a millimetre from
    where PROJ does: it names a place 0.3 mm west of the meridian (by PROJ) in zone 31, so a square whose
    west edge is that sliver inside 30M was refused (atheris found all three; tests/fuzz)."""
    longitudes = _zone_longitudes(zone, band)
    if longitudes is None or band not in _BAND_LETTERS:
        return False
    south = -80.0 + 8 * _BAND_LETTERS.index(band)
    north = 84.0 if band == "X" else south + 8
    lats, lons = [c.lat for c in corners], [c.lon for c in corners]
    if min(lons) < longitudes[1] and max(lons) >= longitudes[0] and min(lats) < north and max(lats) >= south:
        return True
    lat = min(max(centre.lat, south), math.nextafter(north, -math.inf))
    lon = min(max(centre.lon, longitudes[0]), math.nextafter(longitudes[1], -math.inf))
    return bool(_MGRS.toMGRS(lat, lon, MGRSPrecision=digits) == ref)


def _band_of(lat: float) -> str | None:
    if not -80.0 <= lat <= 84.0:
        return None
    return _BAND_LETTERS[min(int((lat + 80.0) // 8), len(_BAND_LETTERS) - 1)]


def _parse_utm(m: re.Match[str], field: str) -> ParsedPosition:
    zone, letter = int(m["zone"]), m["letter"]
    easting, northing = float(m["e"]), float(m["n"])
    if not 1 <= zone <= 60:
        raise InvalidPosition(f"UTM zone {zone} is outside 1 to 60", field=field)
    if letter not in _BAND_LETTERS:
        raise InvalidPosition(f"UTM letter {letter!r} is neither a latitude band nor N or S", field=field)
    if not 100_000 <= easting < 900_000:
        raise InvalidPosition(f"UTM easting {easting:g} is outside 100000 to 900000", field=field)
    if not 0 <= northing <= 10_000_000:
        raise InvalidPosition(f"UTM northing {northing:g} is outside 0 to 10000000", field=field)
    readings: dict[str, LatLon] = {}
    # As a latitude band: C-M are south of the equator, N-X north.
    band_point = _utm_reading(zone, letter < "N", easting, northing)
    if _band_of(band_point.lat) == letter:
        readings[f"latitude band {letter}"] = band_point
    # N and S are also read as hemispheres (the common "42N" form).
    if letter in "NS":
        hemi_point = _utm_reading(zone, letter == "S", easting, northing)
        on_side = 0 <= hemi_point.lat <= 84 if letter == "N" else -80 <= hemi_point.lat < 0
        if on_side and hemi_point not in readings.values():
            readings[f"{'northern' if letter == 'N' else 'southern'} hemisphere"] = hemi_point
    if not readings:
        raise InvalidPosition(
            f"UTM {zone}{letter} {easting:g} {northing:g} lies outside latitude band {letter}",
            field=field,
        )
    if len(readings) > 1:
        places = "; ".join(f"as {k}: {v.lat:.4f}, {v.lon:.4f}" for k, v in readings.items())
        raise InvalidPosition(
            f"UTM letter {letter!r} is ambiguous here ({places}); write the latitude band of "
            "the place, or give the position in MGRS or decimal degrees",
            field=field,
        )
    (point,) = readings.values()
    return ParsedPosition(_checked(point.lat, point.lon, field), "utm")


# ---------------------------------------------------------------------------- read-back


@functools.lru_cache(maxsize=65_536)
def to_mgrs(point: LatLon) -> str | None:
    """MGRS at 1 m precision with the usual spaces, or None where MGRS is undefined.

    Cached: a check's answer and its record each show every finding's position, and an asset
    stays where it is across many checks (3 µs a call, a tenth of that from the cache)."""
    try:
        ref = _MGRS.toMGRS(point.lat, point.lon, MGRSPrecision=5)
        # Within a centimetre south of the equator mgrs rounds the northing up to 10,000 km and writes a
        # reference it cannot read itself (atheris found it; tests/fuzz): no MGRS is better than that one.
        _MGRS.toLatLon(ref)
    except Exception:  # mgrs cannot format the poles' edge cases either; the read-back says so
        return None
    head = 3 if ref[:2].isdigit() else 1  # UPS references have no zone number
    return f"{ref[:head]} {ref[head : head + 2]} {ref[head + 2 : -5]} {ref[-5:]}"


def geodesic_m(a: LatLon, b: LatLon) -> float:
    """Distance in metres on the WGS 84 ellipsoid."""
    return float(WGS84.inv(a.lon, a.lat, b.lon, b.lat)[2])


# ---------------------------------------------------------------------------- metric plane


_A, _F = 6378137.0, 1 / 298.257223563  # WGS 84
_E2 = _F * (2 - _F)


def metres_per_degree(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and of latitude at each latitude (WGS 84 radii of curvature)."""
    phi = np.radians(lat)
    w = np.sqrt(1 - _E2 * np.sin(phi) ** 2)
    meridional = _A * (1 - _E2) / w**3
    prime_vertical = _A / w
    return np.radians(1) * prime_vertical * np.cos(phi), np.radians(1) * meridional


def metres_per_degree_at(lat: float) -> tuple[float, float]:
    """:func:`metres_per_degree` at one latitude, in plain floats.

    Written twice because numpy costs about a microsecond for each operation on one number,
    and a check makes a plane for itself and one for each hidden asset it comes near; the
    math module does the whole of it in a tenth of that (tests/test_geo.py holds the two equal).
    """
    phi = math.radians(lat)
    w = math.sqrt(1 - _E2 * math.sin(phi) ** 2)
    return math.radians(1) * _A / w * math.cos(phi), math.radians(1) * _A * (1 - _E2) / w**3


def segment_distances_m(lat: np.ndarray, lon: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Distance in metres from each point to its segment, on each point's own local plane.

    ``ends`` holds one segment per point as [lon1, lat1, lon2, lat2]. Written out in numpy
    rather than with shapely because shapely would need every segment projected through a
    Python callback per point; this measures thousands of (point, segment) pairs at once.
    """
    kx, ky = metres_per_degree(lat)
    ax, ay = ((ends[:, 0] - lon + 180.0) % 360.0 - 180.0) * kx, (ends[:, 1] - lat) * ky
    bx, by = ((ends[:, 2] - lon + 180.0) % 360.0 - 180.0) * kx, (ends[:, 3] - lat) * ky
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = np.clip(-(ax * dx + ay * dy) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    distances: np.ndarray = np.hypot(ax + t * dx, ay + t * dy)
    return distances


Coordinates = TypeVar("Coordinates", np.ndarray, float)
"""Degrees or metres: an array of them, or a single one."""


PLANE_ORIGIN = Point(0.0, 0.0)
"""The origin of every :class:`LocalPlane`: a checked point's own place on its plane."""


def farthest_m(xy: BaseGeometry) -> float:
    """How far the farthest vertex of a plane geometry lies from the plane's origin, metres."""
    coords = shapely.get_coordinates(xy)
    return float(np.hypot(coords[:, 0], coords[:, 1]).max())


EARTH_RADIUS_M = 6_371_000.0
"""The mean radius: how the plane's error bound turns metres into an angle."""
PLANE_LATITUDE_LIMIT = 89.5
"""The plane's error bound holds up to this latitude. Past it, within 56 km of a pole, the bound is not
checked (tests/engine/test_index.py found a check 58 km from the North Pole, over a 40 km area, missing an
asset 52 m inside its buffer); checks that reach there are refused."""
_PLANE_LIMIT_RAD = math.radians(PLANE_LATITUDE_LIMIT)


class LocalPlane:
    """A tangent plane at one point, in metres, to measure short distances between shapes.

    pyproj builds a proper azimuthal projection in about 0.6 ms, more than a whole check
    may take, so checks use this local equirectangular plane with the ellipsoid's radii of
    curvature at the origin instead. Distances from the origin within 20 km agree with the
    geodesic to better than 0.3 % up to 78° of latitude; between any two points, the error
    grows with their distance from the origin and the latitude, and :meth:`error_bound`
    bounds it (tests/test_geo.py measures both against pyproj.Geod). Checks widen every
    buffer by that bound, so the approximation can only turn a clear into a conflict,
    never the reverse.
    """

    __slots__ = ("kx", "ky", "lat0", "lon0")

    def __init__(self, origin: LatLon) -> None:
        self.lat0, self.lon0 = origin.lat, origin.lon
        self.kx, self.ky = metres_per_degree_at(origin.lat)

    def xy(self, lon: Coordinates, lat: Coordinates) -> tuple[Coordinates, Coordinates]:
        """Plane metres east and north of the origin, for arrays of degrees or single ones."""
        dlon = (lon - self.lon0 + 180.0) % 360.0 - 180.0
        return dlon * self.kx, (lat - self.lat0) * self.ky

    def project(self, geom: BaseGeometry) -> BaseGeometry:
        """The geometry in plane metres."""
        if isinstance(geom, Point):  # half the cost of a transform: a check projects one per hidden asset near it
            return Point(*self.xy(geom.x, geom.y))
        return shapely.transform(geom, self._forward)

    def project_all(self, geoms: Sequence[BaseGeometry] | np.ndarray) -> np.ndarray:
        """Many geometries in plane metres, in one vectorised pass."""
        return shapely.transform(np.asarray(geoms, dtype=object), self._forward)  # type: ignore[no-any-return]

    def unproject(self, geom: BaseGeometry) -> BaseGeometry:
        """A plane geometry back in lon/lat."""
        return shapely.transform(geom, self._inverse)

    def _forward(self, coords: np.ndarray) -> np.ndarray:
        # :meth:`xy` in place on one array: a check projects a few small shapes, where numpy costs by the call, and
        # stacking two arrays into one cost a microsecond of the 7.7 µs a square took (6.6 µs now).
        plane = coords - (self.lon0, self.lat0)
        lon = plane[:, 0]
        lon += 180.0
        lon %= 360.0
        lon -= 180.0
        plane *= (self.kx, self.ky)
        return plane

    def _inverse(self, coords: np.ndarray) -> np.ndarray:
        lon = (coords[:, 0] / self.kx + self.lon0 + 180.0) % 360.0 - 180.0
        return np.column_stack((lon, coords[:, 1] / self.ky + self.lat0))

    def holds(self, extent_m: float) -> bool:
        """Whether :meth:`error_bound` holds for shapes within ``extent_m`` of the origin: not past
        ``PLANE_LATITUDE_LIMIT``, where the meridians close in faster than the bound follows."""
        return math.isfinite(self.error_bound(extent_m))

    @overload
    def error_bound(self, extent_m: float) -> float: ...
    @overload
    def error_bound(self, extent_m: np.ndarray) -> np.ndarray: ...
    def error_bound(self, extent_m: float | np.ndarray) -> float | np.ndarray:
        """Relative error of plane distances between points within ``extent_m`` of the origin
        (one extent, or an array of them).

        The plane keeps the origin's east-west scale, so it errs by about tan(latitude) times
        the latitude offset, plus a second-order term. The factor 1.5 is a margin over the
        worst case found by sampling 20,000 pairs against pyproj.Geod (0.96 of this formula,
        latitudes up to 80°, extents up to 50 km; 0.62 of it in 40,000 pairs between 78° and
        the limit; tests/test_geo.py keeps checking both).
        The bound is of the whole distance: a shape that reaches past the point measured (an
        asset's uncertainty, half a route's width) must be widened with it (``rules.SearchArea``).
        """
        e = extent_m / EARTH_RADIUS_M
        phi = math.radians(abs(self.lat0)) + e
        # 1e-6: the floor of floating point and the ellipsoid's own curvature at tiny extents. Past the
        # limit no bound is known: infinite, so whatever reaches there is found, never missed.
        if isinstance(phi, np.ndarray):
            return np.where(phi > _PLANE_LIMIT_RAD, np.inf, 1.5 * (np.tan(phi) * e + e * e) + 1e-6)
        # The same for one extent in math, not numpy: a check asks once, and numpy's scalars cost 5 µs more.
        return math.inf if phi > _PLANE_LIMIT_RAD else 1.5 * (math.tan(phi) * e + e * e) + 1e-6


def buffered(geom: BaseGeometry, distance: float, quad_segs: int = 16) -> BaseGeometry:
    """``geom.buffer(distance)``, with lines buffered segment by segment.

    GEOS loses part of the buffer of a line whose segments run back over each other
    (collinear, in opposite directions): points of the line itself fall outside it. A route
    that turns back on itself is an ordinary thing to draw, and a buffer that is too small
    would miss a party, so lines are cut into their segments first.
    """
    if geom.geom_type in ("LineString", "MultiLineString"):
        parts = getattr(geom, "geoms", [geom])
        geom = shapely.MultiLineString([[a, b] for part in parts for a, b in zip(part.coords[:-1], part.coords[1:], strict=True)])
    return geom.buffer(distance, quad_segs=quad_segs)


def beyond_chords(distance: float, quad_segs: int) -> float:
    """What to buffer by so that the buffer's arcs, drawn with ``quad_segs`` chords a quarter circle, lie no
    nearer than ``distance``: GEOS puts the chords' ends on the circle, and their middles fall short of it by
    up to 1 - cos(pi / (4 * quad_segs)) of the radius (1.9 % with 4 chords, 0.12 % with 16)."""
    return distance / math.cos(math.pi / (4 * quad_segs))


SAFETY_FACTOR = 1.005
"""Every buffer is widened by at least 0.5 %, and by :meth:`LocalPlane.error_bound` where that is more."""


def degrees_envelope(bounds: tuple[float, float, float, float], margin_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely holds everything within ``margin_m`` of ``bounds``.

    Degrees of latitude are never shorter than 110,574 m; degrees of longitude shrink
    with the cosine of the latitude farthest from the equator inside the box. Near the
    antimeridian the box reaches past 180° (west of -180, or east of 180): :func:`wrapped`
    gives its parts on either side, which is how every search must read it.
    """
    minx, miny, maxx, maxy = bounds
    dlat, dlon = degree_margins_at(max(abs(miny), abs(maxy)), margin_m)
    south, north = miny - dlat, maxy + dlat
    if dlon >= 180.0:
        return (-180.0, max(-90.0, south), 180.0, min(90.0, north))
    return (minx - dlon, south, maxx + dlon, north)


def wrapped(envelope: Box) -> tuple[Box, ...]:
    """``envelope``'s parts within -180° to 180° of longitude: itself, or two where it reaches across the
    antimeridian (a buffer around a point at 179.99° E reaches to 179.98° W: its box runs east to 180.02°).
    A box that only touches ±180° gets the line's other name too, a part of no width: -180° is 180°."""
    west, south, east, north = envelope
    if east - west >= 360.0:
        return ((-180.0, south, 180.0, north),)
    if west <= -180.0:
        return ((west + 360.0, south, 180.0, north), (-180.0, south, east, north))
    if east >= 180.0:
        return ((west, south, 180.0, north), (-180.0, south, east - 360.0, north))
    return (envelope,)


def wrapped_box(envelope: Box) -> BaseGeometry:
    """:func:`wrapped` as one shape to search with: a box, or the two boxes on either side of 180° (not a
    part of no width, where a box only touches ±180°: GEOS's polygon arithmetic takes no such polygon)."""
    parts = [part for part in wrapped(envelope) if part[2] > part[0]] or [envelope]
    return shapely.box(*parts[0]) if len(parts) == 1 else shapely.MultiPolygon([shapely.box(*part) for part in parts])


def in_envelope(lon: np.ndarray, lat: np.ndarray, envelope: Box) -> np.ndarray:
    """Which points lie in ``envelope`` (read as :func:`wrapped`)."""
    parts = [(lon >= west) & (lon <= east) & (lat >= south) & (lat <= north) for west, south, east, north in wrapped(envelope)]
    return parts[0] if len(parts) == 1 else parts[0] | parts[1]


def degree_margins(lat: np.ndarray, margin_m: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Degrees of latitude and of longitude that surely hold ``margin_m`` (one, or one per point) around each latitude.

    Degrees of latitude are never shorter than 110,574 m; degrees of longitude shrink with
    the cosine of the farthest latitude the margin reaches. Near a pole a small circle spans
    many degrees of longitude, so there the margin is all 180 of them.
    """
    dlat = np.broadcast_to(np.asarray(margin_m, dtype=float) / 110_574.0 * 1.01, np.shape(lat)).copy()
    far_lat = np.abs(lat) + dlat
    near_pole = far_lat >= 89.0
    cos = np.cos(np.radians(np.where(near_pole, 0.0, far_lat)))
    dlon = np.where(near_pole, 180.0, np.minimum(180.0, margin_m / (111_320.0 * cos) * 1.01))
    return dlat, dlon


def degree_margins_at(lat: float, margin_m: float) -> tuple[float, float]:
    """:func:`degree_margins` at one latitude, in plain floats (a check asks it four times; see
    :func:`metres_per_degree_at` for why it is written twice)."""
    dlat = margin_m / 110_574.0 * 1.01
    far_lat = abs(lat) + dlat
    if far_lat >= 89.0:
        return dlat, 180.0
    return dlat, min(180.0, margin_m / (111_320.0 * math.cos(math.radians(far_lat))) * 1.01)


# ---------------------------------------------------------------------------- GeoJSON

MAX_VERTICES = 10_000
"""More vertices than a hand-drawn area needs; beyond this a request is refused (413-class abuse)."""

_GEOJSON_TYPES = {"Polygon", "MultiPolygon", "LineString", "Point"}


def parse_geojson(obj: object, field: str, allowed: Sequence[str], max_area_km2: float | None = None) -> BaseGeometry:
    """Validate a GeoJSON geometry and return it as a shapely geometry in lon/lat.

    Refuses unknown types, non-numeric or out-of-range coordinates, unclosed rings,
    rings with too few points, edges meant to cross the antimeridian, self-intersecting shapes
    and (given ``max_area_km2``) areas larger than that on the ellipsoid, each with a message
    that names the field and the fault.
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput("a GeoJSON geometry object is required", field=field)
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in _GEOJSON_TYPES or kind not in allowed:
        raise InvalidInput(f"geometry type {kind!r} is not allowed here; use {' or '.join(allowed)}", field=f"{field}.type")
    coords = obj.get("coordinates")
    count = _check_coordinates(coords, _DEPTH[str(kind)], f"{field}.coordinates")
    if count > MAX_VERTICES:
        raise InvalidInput(f"{count} vertices is more than the {MAX_VERTICES} allowed", field=f"{field}.coordinates")
    assert isinstance(coords, list)
    if kind == "Polygon":
        _check_rings(coords, f"{field}.coordinates")
    elif kind == "MultiPolygon":
        for i, polygon in enumerate(coords):
            _check_rings(polygon, f"{field}.coordinates.{i}")
    elif kind == "LineString" and len(coords) < 2:
        raise InvalidInput("a LineString needs at least 2 positions", field=f"{field}.coordinates")
    geom = shapely.geometry.shape({"type": kind, "coordinates": coords})
    if (edge := _edge_round_the_globe(geom)) is not None:
        raise InvalidInput(
            f"an edge from {edge[0]:g}° to {edge[1]:g}° of longitude spans more than 180°: read as written, it goes "
            "the long way round the globe. A shape across the antimeridian must be split there (RFC 7946, 3.1.9)",
            field=f"{field}.coordinates",
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise InvalidInput(f"the {kind} is not valid: {reason}", field=field)
    if geom.is_empty:
        raise InvalidInput(f"the {kind} is empty", field=field)
    if max_area_km2 is not None and (km2 := area_km2(geom)) > max_area_km2:
        raise InvalidInput(f"the {kind} covers {km2:,.0f} km², more than the {max_area_km2:,.0f} km² allowed", field=field)
    return geom


def area_km2(geom: BaseGeometry) -> float:
    """The area of a lon/lat geometry on the WGS 84 ellipsoid as the service reads it, km² (0 for points and lines).

    The engine reads an edge as a straight line in longitude and latitude, pyproj as a geodesic: an
    edge from 179.5° E to 179.5° W is one degree to pyproj and 359 to the engine. Edges cut to a
    degree at most make the two readings agree to well under a percent.
    """
    return abs(WGS84.geometry_area_perimeter(shapely.segmentize(geom, 1.0))[0]) / 1e6


_DEPTH = {"Point": 0, "LineString": 1, "Polygon": 2, "MultiPolygon": 3}


def _check_coordinates(coords: Any, depth: int, field: str) -> int:
    if depth == 0:
        if not isinstance(coords, list) or len(coords) not in (2, 3):
            raise InvalidInput("a position is [lon, lat] or [lon, lat, alt]", field=field)
        if not all(isinstance(c, int | float) and not isinstance(c, bool) and _finite(c) for c in coords):
            raise InvalidInput(f"{str(coords)[:100]} holds a value that is not a finite number", field=field)
        lon, lat = coords[0], coords[1]
        if not -180 <= lon <= 180:
            raise InvalidInput(f"longitude {lon} is outside -180 to 180 (GeoJSON is lon, lat)", field=field)
        if not -90 <= lat <= 90:
            raise InvalidInput(f"latitude {lat} is outside -90 to 90 (GeoJSON is lon, lat)", field=field)
        return 1
    if not isinstance(coords, list) or not coords:
        raise InvalidInput("coordinates must be a non-empty array", field=field)
    return sum(_check_coordinates(c, depth - 1, f"{field}.{i}") for i, c in enumerate(coords))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float: JSON allows it, geometry does not
        return False


def _edge_round_the_globe(geom: BaseGeometry) -> tuple[float, float] | None:
    """An edge spanning more than 180° of longitude, as its two longitudes (None if there is none): someone
    meant it to cross the antimeridian, and the service reads it the other way, round the whole globe."""
    parts = shapely.get_parts(geom)
    lines = shapely.get_rings(parts) if geom.geom_type in ("Polygon", "MultiPolygon") else parts
    for line in lines:
        lon = shapely.get_coordinates(line)[:, 0]
        jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180.0)
        if len(jumps):
            return float(lon[jumps[0]]), float(lon[jumps[0] + 1])
    return None


def _check_rings(rings: list[Any], field: str) -> None:
    for i, ring in enumerate(rings):
        if len(ring) < 4:
            raise InvalidInput("a ring needs at least 4 positions, the last equal to the first", field=f"{field}.{i}")
        if ring[0][:2] != ring[-1][:2]:
            raise InvalidInput("the ring is not closed: its last position must equal its first", field=f"{field}.{i}")


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """The geometry as a GeoJSON mapping (lon, lat)."""
    return dict(shapely.geometry.mapping(geom))
