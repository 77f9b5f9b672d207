"""A private cross-check: does an activity meet another party's protected places, with no server seeing both?

Each side turns its places into H3 cells at one common resolution: the owner its protected
places buffered by the kind's buffer, the asker its activity's volumes as they are. Then
they run private set intersection (openmined.psi, ECDH-based, in its size-only mode):

- the asker sends its cells blinded under its own key (:meth:`Asker.request`);
- the owner, with a key made for this one session, answers with its own cells blinded
  under that key (the setup message) and the asker's cells blinded once more, shuffled
  (the response) (:meth:`Owner.answer`);
- the asker learns how many of its cells are among the owner's (:meth:`Asker.meeting`),
  not which; the owner learns how many cells the asker sent, nothing else.

Both sides pad their sets with random dummies up to a size bucket (powers of the square
root of two), so what each learns of the other's set size is the bucket, not the count.

The cell cover is conservative: every cell that holds any point of a (buffered) place is
in the cover, so an activity that touches a buffered place shares at least one cell with
it. The price is that two shapes up to about one cell's width apart may meet too: the
check can only err towards "meets". docs/psi.md explains the choices and the limits.

Everything here is pure except the PSI calls themselves; the HTTP exchange between two
nodes is in :mod:`deconfliction.api.psi`.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import h3
import numpy as np
import private_set_intersection.python as openmined
import shapely
from google.protobuf.message import DecodeError
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.budget import Budget
from deconfliction.clock import Clock
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import zone_applies
from deconfliction.errors import Busy, DeconflictionError, InvalidInput, InvalidState
from deconfliction.geo import SAFETY_FACTOR, LatLon, LocalPlane, beyond_chords, degrees_envelope, parse_geojson, parse_position
from deconfliction.geo import buffered as geo_buffered
from deconfliction.model import ActivityKind, CheckKind, ZoneKind, check_non_negative, check_positive

# ---------------------------------------------------------------------------- settings of the cover

DEFAULT_RESOLUTION = 9
"""H3 resolution 9: cells of about 0.1 km², 201 m average edge (h3 4's figure; older tables give 174 m).

Coarse enough that a fires buffer of 1.5 km around a site is about 70 cells (a theatre's
protected places stay in the ten thousands, a second of ECDH work per session), fine
enough that the cover adds at most about a cell's width (~400 m) to any distance."""
RESOLUTIONS = range(6, 12)
"""Resolutions a cover may use: 6 (cells of 36 km², too coarse to say anything) to 11 (2,000 m², too many cells)."""
MAX_LATITUDE = 85.0
"""Places and activities beyond this latitude are refused: the metric plane's error grows without bound at the poles."""
QUAD_SEGS = 16
"""Segments per quarter circle when a shape is buffered on the plane (the arc is then widened to lie outside the circle)."""
MAX_CELLS = 1_000_000
"""Most cells one cover may hold: a guard against a typing error (a radius in millimetres), not a policy."""
MAX_RADIUS_M = 200_000.0
MAX_WIDTH_M = 50_000.0


def margin_m(resolution: int) -> float:
    """Added to every reach: the sub-millimetre difference between a cell's straight and great-circle edges, and rounding."""
    return 1.0 + 0.001 * float(h3.average_hexagon_edge_length(resolution, "m"))


def check_resolution(value: object, field: str = "resolution") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in RESOLUTIONS:
        raise InvalidInput(
            f"{value!r} is not an H3 resolution this check uses: {RESOLUTIONS.start} to {RESOLUTIONS.stop - 1}", field=field
        )
    return value


def check_kind(value: object, field: str = "kind") -> CheckKind:
    """A check kind, or an activity kind read as the check it is held to (patrol and movement: ground)."""
    if isinstance(value, str) and value in tuple(ActivityKind):
        return ActivityKind(value).check_kind
    if isinstance(value, str) and value in tuple(CheckKind):
        return CheckKind(value)
    allowed = ", ".join(dict.fromkeys([*CheckKind, *ActivityKind]))
    raise InvalidInput(f"{value!r} is not one of {allowed}", field=field)


# ---------------------------------------------------------------------------- places and their cells


@dataclass(frozen=True, slots=True)
class Place:
    """A shape and a distance around it: a point with a radius, an area, or a route with half its width.

    ``kinds`` are the check kinds that must keep clear of it (a no-fire area: fires and
    air); None means every kind. An asker's volumes are places too (their kinds unused).
    """

    geometry: BaseGeometry  # Point, LineString, Polygon or MultiPolygon, lon/lat
    radius_m: float = 0.0
    kinds: frozenset[CheckKind] | None = None

    def applies(self, kind: CheckKind) -> bool:
        return self.kinds is None or kind in self.kinds


def cover(
    places: Iterable[Place], resolution: int = DEFAULT_RESOLUTION, buffer_m: float = 0.0, *, field: str = "places"
) -> frozenset[str]:
    """Every H3 cell at ``resolution`` that holds a point within ``radius_m + buffer_m`` of some place.

    Conservative by construction: distances are widened by the metric plane's error
    bound and a margin, so the cover may hold a few cells too many, never one too few.
    Errors name the place (``places.3``).
    """
    check_resolution(resolution)
    cells: set[str] = set()
    for i, place in enumerate(places):
        try:
            reach = place.radius_m + buffer_m
            if isinstance(place.geometry, Point):
                cells |= _disk(place.geometry.y, place.geometry.x, reach, resolution)
            else:
                cells |= _shape(place.geometry, reach, resolution)
        except DeconflictionError as exc:
            raise exc.at(f"{field}.{i}") from None
        if len(cells) > MAX_CELLS:
            raise InvalidInput(f"the places cover more than {MAX_CELLS} cells at resolution {resolution}", field=field)
    return frozenset(cells)


def _guard(area_m2: float, resolution: int) -> None:
    estimate = area_m2 / float(h3.average_hexagon_area(resolution, "m^2"))
    if estimate > MAX_CELLS:
        raise InvalidInput(
            f"this covers about {estimate:,.0f} cells at resolution {resolution}, more than the {MAX_CELLS:,} allowed: "
            "is the radius or the area right?",
            field="geometry",
        )


def _disk(lat: float, lon: float, reach_m: float, resolution: int) -> set[str]:
    """Cells within ``reach_m`` of a point: a breadth-first walk out from its cell (grid_disk of 1 around each cell found).

    The cells that meet a disk are connected, so the walk stops at the first ring of
    neighbours none of which comes within reach.
    """
    if abs(lat) > MAX_LATITUDE:
        raise InvalidInput(f"latitude {lat:g} is beyond the {MAX_LATITUDE:g}° this check covers", field="geometry")
    edge = float(h3.average_hexagon_edge_length(resolution, "m"))
    _guard(math.pi * (reach_m + 2 * edge) ** 2, resolution)
    plane = LocalPlane(LatLon(lat, lon))
    # Cells vary in size about twofold over the globe: 4 average edges bound the farthest vertex looked at.
    limit = reach_m * max(SAFETY_FACTOR, 1 + plane.error_bound(reach_m + 4 * edge)) + margin_m(resolution)
    start = h3.latlng_to_cell(lat, lon, resolution)
    found = {start}
    seen = {start}
    frontier = [start]
    while frontier:
        candidates = sorted({n for c in frontier for n in h3.grid_disk(c, 1)} - seen)
        seen.update(candidates)
        distances = _distances_from_origin(plane, candidates)
        frontier = [c for c, d in zip(candidates, distances.tolist(), strict=True) if d <= limit]
        found.update(frontier)
    return found


def _distances_from_origin(plane: LocalPlane, cells: Sequence[str]) -> np.ndarray:
    """Plane distance from the plane's origin to each cell's outline (0 inside it), in one vectorised pass."""
    if not cells:
        return np.zeros(0)
    boundaries = [h3.cell_to_boundary(c) for c in cells]
    counts = [len(b) for b in boundaries]
    latlng = np.array([v for b in boundaries for v in b], dtype=float)
    x, y = plane.xy(latlng[:, 1], latlng[:, 0])
    rings = shapely.linearrings(np.column_stack((x, y)), indices=np.repeat(np.arange(len(cells)), counts))
    distances: np.ndarray = shapely.distance(Point(0.0, 0.0), shapely.polygons(rings))
    return distances


def _shape(geom: BaseGeometry, reach_m: float, resolution: int) -> set[str]:
    """Cells meeting an area or a line widened by ``reach_m``: the shape buffered on a plane, then h3's 'overlap' polyfill."""
    if geom.is_empty:
        raise InvalidInput("the shape is empty", field="geometry")
    west, south, east, north = geom.bounds
    if max(abs(south), abs(north)) > MAX_LATITUDE:
        raise InvalidInput(f"the shape reaches beyond the {MAX_LATITUDE:g}° of latitude this check covers", field="geometry")
    centre = geom.centroid
    plane = LocalPlane(LatLon(centre.y, centre.x))
    xy = plane.project(geom)
    minx, miny, maxx, maxy = xy.bounds
    extent = math.hypot(maxx - minx, maxy - miny) / 2 + reach_m + 1.0
    grown = reach_m * max(SAFETY_FACTOR, 1 + plane.error_bound(extent))
    grown = beyond_chords(grown, QUAD_SEGS) + margin_m(resolution)
    envelope = degrees_envelope((west, south, east, north), grown)
    if envelope[0] < -180.0 or envelope[2] > 180.0:
        raise InvalidInput("the shape reaches across the antimeridian (180°), which this check does not handle", field="geometry")
    if max(abs(envelope[1]), abs(envelope[3])) > MAX_LATITUDE:
        raise InvalidInput(f"the shape reaches beyond the {MAX_LATITUDE:g}° of latitude this check covers", field="geometry")
    buffered = geo_buffered(xy, grown, QUAD_SEGS)  # segment by segment: see geo.buffered
    _guard(buffered.area, resolution)
    outline = plane.unproject(buffered)
    return set(h3.polygon_to_cells_experimental(h3.geo_to_h3shape(outline), resolution, contain="overlap"))


def place_cells(
    places: Iterable[Place], kind: CheckKind, buffer_m: float, resolution: int = DEFAULT_RESOLUTION
) -> frozenset[str]:
    """The owner's side: the cells of its places that ``kind`` must keep clear of, each buffered by ``buffer_m``."""
    return cover((p for p in places if p.applies(kind)), resolution, buffer_m)


def activity_cells(volumes: Iterable[Place], resolution: int = DEFAULT_RESOLUTION) -> frozenset[str]:
    """The asker's side: the cells of its activity's volumes, not buffered (the owner's places are)."""
    return cover(volumes, resolution, 0.0, field="volumes")


def picture_places(picture: Picture, party: str, now: datetime) -> list[Place]:
    """A party's protected places in a picture: every asset with a position, and its zones that something must keep clear of.

    Whatever their disclosure (hidden ones too: nothing leaves as a position). Stale
    units count at their last position, zones whose window has not ended count, and
    altitude bands are ignored: each can only add a meeting, never hide one. The caller
    holds the picture still while this runs.
    """
    places: list[Place] = []
    for (owner, _), report in list(picture.reports.items()):
        if owner == party:
            places.append(Place(Point(report.point.lon, report.point.lat), report.uncertainty_m))
    for _, zone in list(picture.zones):
        if zone.party != party or (zone.window is not None and zone.window.end < now):
            continue
        kinds = frozenset(k for k in CheckKind if zone_applies(zone, k))
        if kinds:
            places.append(Place(zone.geometry, zone.width_m / 2 if zone.kind is ZoneKind.ROUTE else 0.0, kinds))
    return places


# ---------------------------------------------------------------------------- reading places from files

ZONE_KINDS_THAT_PROTECT: Mapping[str, frozenset[CheckKind] | None] = {
    ZoneKind.PROTECTED_AREA.value: None,
    ZoneKind.ROUTE.value: None,
    ZoneKind.NO_FIRE_AREA.value: frozenset({CheckKind.FIRES, CheckKind.AIR}),
}


def read_places(doc: object, field: str = "") -> list[Place]:
    """Places from JSON: a GeoJSON FeatureCollection, Feature or geometry, or an activity's ``{volumes: [...]}``.

    - A Point feature takes ``properties.radius_m`` (or ``uncertainty_m``), default 0.
    - A LineString is a route and needs ``properties.width_m`` (its full width).
    - Polygons and MultiPolygons are areas.
    - Features in ``deconflict import``'s format are read as that command would: an ``aor``
      or a ``territory`` is no place; a ``zone`` is one only if its ``kind`` must be kept
      clear of (a ``no_fire_area`` for fires and air only).
    - A volume is ``{position, radius_m?}`` (any notation) or ``{area, width_m?}``, as in
      ``POST /v1/activities``; its window and altitude band are ignored here.
    """
    prefix = f"{field}." if field else ""
    if not isinstance(doc, Mapping):
        raise InvalidInput("a GeoJSON object or an activity with volumes is required", field=field or None)
    if "volumes" in doc:
        volumes = doc["volumes"]
        if not isinstance(volumes, list) or not volumes:
            raise InvalidInput("volumes is a non-empty list", field=f"{prefix}volumes")
        return [_volume(v, f"{prefix}volumes.{i}") for i, v in enumerate(volumes)]
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InvalidInput("features must be a list", field=f"{prefix}features")
        places = [_feature(f, f"{prefix}features.{i}") for i, f in enumerate(features)]
        return [p for p in places if p is not None]
    if kind == "Feature":
        place = _feature(doc, field)
        return [] if place is None else [place]
    return [_geometry(doc, {}, field, field)]


def _feature(feature: object, field: str) -> Place | None:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise InvalidInput("each entry must be a GeoJSON Feature", field=field)
    props = feature.get("properties") or {}
    if not isinstance(props, Mapping):
        raise InvalidInput("properties must be an object", field=f"{field}.properties")
    obj = props.get("object")
    kinds: frozenset[CheckKind] | None = None
    if obj in ("aor", "territory"):
        return None
    if obj == "zone":
        zone_kind = props.get("kind")
        if zone_kind not in tuple(ZoneKind):
            raise InvalidInput(f"{zone_kind!r} is not a zone kind", field=f"{field}.properties.kind")
        if zone_kind not in ZONE_KINDS_THAT_PROTECT:
            return None  # an operating area is information, not something to keep clear of
        kinds = ZONE_KINDS_THAT_PROTECT[str(zone_kind)]
    elif obj not in (None, "asset"):
        raise InvalidInput(f"{obj!r} is not asset, zone, aor or territory", field=f"{field}.properties.object")
    place = _geometry(
        feature.get("geometry"),
        props,
        f"{field}.geometry" if field else "geometry",
        f"{field}.properties" if field else "properties",
    )
    return Place(place.geometry, place.radius_m, kinds)


def _geometry(geometry: object, props: Mapping[str, Any], field: str, props_field: str) -> Place:
    """A place from a GeoJSON geometry (at ``field``) and the properties (at ``props_field``) that give its radius or width."""
    geom = parse_geojson(geometry, field or "geometry", ("Point", "LineString", "Polygon", "MultiPolygon"))
    at = f"{props_field}." if props_field else ""
    if geom.geom_type == "Point":
        name = "radius_m" if "radius_m" in props else "uncertainty_m"
        return Place(geom, check_non_negative(props.get(name, 0.0), f"{at}{name}", maximum=MAX_RADIUS_M))
    if geom.geom_type == "LineString":
        if props.get("width_m") is None:
            raise InvalidInput("a route needs width_m, its full width in metres (a Feature's property)", field=f"{at}width_m")
        return Place(geom, check_positive(props["width_m"], f"{at}width_m", maximum=MAX_WIDTH_M) / 2)
    return Place(geom)


def _volume(volume: object, field: str) -> Place:
    if not isinstance(volume, Mapping):
        raise InvalidInput("a volume is an object: {position, radius_m?} or {area, width_m?}", field=field)
    if (volume.get("position") is None) == (volume.get("area") is None):
        raise InvalidInput("give either a position (with an optional radius_m) or an area", field=f"{field}.position")
    if volume.get("position") is not None:
        parsed = parse_position(volume["position"], f"{field}.position")
        radius = check_non_negative(volume.get("radius_m", 0.0), f"{field}.radius_m", maximum=MAX_RADIUS_M)
        return Place(Point(parsed.point.lon, parsed.point.lat), radius + parsed.precision_m)
    return _geometry(volume["area"], volume, f"{field}.area", field)


def read_cells(doc: Mapping[str, Any], field: str = "") -> tuple[int, dict[CheckKind, frozenset[str]]]:
    """A precomputed cover: ``{"resolution": 9, "cells": [...]}`` (every kind) or ``{"cells": {"fires": [...], ...}}``.

    An owner may compute its cells where its places are kept and put only the cells on
    the node that answers: then that node never holds a position at all.
    """
    prefix = f"{field}." if field else ""
    resolution = check_resolution(doc.get("resolution"), f"{prefix}resolution")
    raw = doc.get("cells")
    lists: dict[CheckKind, object]
    if isinstance(raw, list):
        lists = dict.fromkeys(CheckKind, raw)
    elif isinstance(raw, Mapping):
        lists = {check_kind(k, f"{prefix}cells.{k}"): v for k, v in raw.items()}
    else:
        raise InvalidInput("cells is a list of H3 cells, or an object of such lists by kind", field=f"{prefix}cells")
    out: dict[CheckKind, frozenset[str]] = {}
    for kind, cells in lists.items():
        where = f"{prefix}cells" if isinstance(raw, list) else f"{prefix}cells.{kind.value}"
        if not isinstance(cells, list):
            raise InvalidInput("a list of H3 cells is required", field=where)
        for i, cell in enumerate(cells):
            if not isinstance(cell, str) or not h3.is_valid_cell(cell) or h3.get_resolution(cell) != resolution:
                raise InvalidInput(f"{cell!r} is not an H3 cell of resolution {resolution}", field=f"{where}.{i}")
        out[kind] = frozenset(cells)
    return resolution, out


# ---------------------------------------------------------------------------- private set intersection

DEFAULT_FPR = 1e-9
"""False-positive rate of the owner's compressed set (a Golomb-compressed set): one asker in a billion sees a meeting
that is not there, never the reverse. 10,000 cells take 52 kB at this rate, against 350 kB uncompressed."""
PAD_MINIMUM = 64
ELEMENT_BYTES = 33
"""An encrypted element is a compressed P-256 point."""


def padded_size(n: int) -> int:
    """The size a set of ``n`` is padded to: the first of 64, 91, 128, 182, 256, ... (powers of √2, rounded up) ≥ n."""
    if n <= PAD_MINIMUM:
        return PAD_MINIMUM
    k = math.ceil(2 * math.log2(n))
    size = math.ceil(2 ** (k / 2))
    return size if size >= n else math.ceil(2 ** ((k + 1) / 2))


def _dummies(count: int) -> list[str]:
    """Random items that match no H3 cell and no other dummy (128 random bits each)."""
    return [f"pad:{secrets.token_hex(16)}" for _ in range(count)]


def parse_request(data: bytes, max_cells: int | None = None) -> Any:
    """An asker's request, checked before any expensive work: well formed, size-only, not empty, not too large."""
    request = openmined.Request()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidInput(f"the request is not a serialised PSI request: {exc}", field="request") from exc
    if request.reveal_intersection:
        raise InvalidInput("the request asks which cells meet; this owner answers only how many", field="request")
    n = len(request.encrypted_elements)
    if n == 0:
        raise InvalidInput("the request holds no cells", field="request")
    if max_cells is not None and n > max_cells:
        raise InvalidInput(f"the request holds {n} cells, more than the {max_cells} this owner answers", field="request")
    if any(len(e) != ELEMENT_BYTES for e in request.encrypted_elements):
        raise InvalidInput(f"every element of the request is a {ELEMENT_BYTES}-byte curve point", field="request")
    return request


@dataclass(frozen=True, slots=True)
class Reply:
    """What the owner sends back: its setup message and its response, both serialised protobuf."""

    setup: bytes
    response: bytes
    asker_cells: int  # what the owner learnt: the size of the asker's (padded) set
    owner_cells: int  # the size of the owner's (padded) set, which the setup gives away to the asker


@dataclass(frozen=True, slots=True)
class Meeting:
    """What the asker learns: whether, and with how many of its cells, its activity meets the owner's places."""

    meets: bool
    cells_met: int
    asker_cells: int  # the activity's cells, before padding
    sent_cells: int  # what was sent, with padding: all the owner learns


class Owner:
    """The owner's side of one session: a key made for this session, used for one request, then dropped.

    ``Owner(cells).answer(request)`` gives the setup message and the response. A second
    request is refused: a key is never used for two askers, or twice for one (with a
    reused key, answers from several sessions could be matched against each other).
    """

    def __init__(self, cells: Collection[str], *, fpr: float = DEFAULT_FPR, pad: bool = True) -> None:
        if not 0.0 < fpr < 1.0:
            raise InvalidInput(f"{fpr!r} is not a false-positive rate between 0 and 1", field="fpr")
        items = list(cells)
        if pad:
            items += _dummies(padded_size(len(items)) - len(items))
        self._items = items
        self._fpr = fpr
        self._server: Any = openmined.server.CreateWithNewKey(False)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The owner's set size as the asker will see it (padded)."""
        return len(self._items)

    def answer(self, request: bytes, *, max_asker_cells: int | None = None) -> Reply:
        with self._lock:
            server, self._server = self._server, None  # the key goes with this answer, whatever happens
        if server is None:
            raise InvalidState("this session has answered already; every request needs a new session and key", field="request")
        parsed = parse_request(request, max_asker_cells)
        n = len(parsed.encrypted_elements)
        try:
            response = server.ProcessRequest(parsed)  # first: a bad point is refused before the costly part
        except RuntimeError as exc:
            raise InvalidInput(f"the request holds something that is not a curve point: {exc}", field="request") from exc
        setup = server.CreateSetupMessage(self._fpr, n, self._items, openmined.DataStructure.GCS)
        return Reply(setup.SerializeToString(), response.SerializeToString(), n, len(self._items))


class Asker:
    """The asker's side of one session: ``request()`` to send, then ``meeting(setup, response)`` with the owner's reply."""

    def __init__(self, cells: Collection[str], *, pad: bool = True) -> None:
        if not cells:
            raise InvalidInput("the activity covers no cells", field="volumes")
        items = list(cells)
        self.asker_cells = len(items)
        if pad:
            items += _dummies(padded_size(len(items)) - len(items))
        self.sent_cells = len(items)
        self._client: Any = openmined.client.CreateWithNewKey(False)
        self._request = cast(bytes, self._client.CreateRequest(items).SerializeToString())

    def request(self) -> bytes:
        return self._request

    def meeting(self, setup: bytes, response: bytes) -> Meeting:
        parsed_setup, parsed_response = openmined.ServerSetup(), openmined.Response()
        for message, data, field in ((parsed_setup, setup, "setup"), (parsed_response, response, "response")):
            try:
                message.ParseFromString(data)
            except DecodeError as exc:
                raise InvalidInput(f"the owner's {field} is not a serialised PSI message: {exc}", field=field) from exc
        if len(parsed_response.encrypted_elements) != self.sent_cells:
            raise InvalidInput(
                f"the owner's response holds {len(parsed_response.encrypted_elements)} elements for the {self.sent_cells} sent",
                field="response",
            )
        try:
            met = int(self._client.GetIntersectionSize(parsed_setup, parsed_response))
        except RuntimeError as exc:
            raise InvalidInput(f"the owner's reply cannot be read: {exc}", field="setup") from exc
        return Meeting(met > 0, met, self.asker_cells, self.sent_cells)


# ---------------------------------------------------------------------------- the owner's desk: limits


@dataclass(frozen=True, slots=True)
class Limits:
    """How much an owner answers: sessions per asker (a token bucket), request size, sessions at once."""

    rate_per_hour: float = 12.0
    burst: int = 10
    max_asker_cells: int = 4096
    max_concurrent: int = 2

    def __post_init__(self) -> None:
        check_positive(self.rate_per_hour, "rate_per_hour")
        for name in ("burst", "max_asker_cells", "max_concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{value!r} is not a whole number of at least 1", field=name)


class OwnerDesk:
    """The owner's side for many askers: limits, then a fresh :class:`Owner` (a fresh key) for every request.

    ``cells_for(kind)`` gives the owner's cells for a kind (buffered by its buffer) at
    the desk's resolution. Malformed and oversized requests are refused before they
    count against the asker; every well-formed one counts, whatever it finds.
    """

    def __init__(
        self,
        cells_for: Callable[[CheckKind], Collection[str]],
        *,
        limits: Limits | None = None,
        clock: Clock | None = None,
        fpr: float = DEFAULT_FPR,
        pad: bool = True,
    ) -> None:
        self.cells_for = cells_for
        self.limits = limits or Limits()
        self.budget = Budget(self.limits.rate_per_hour / 3600.0, self.limits.burst, "private cross-checks", clock)
        self.fpr = fpr
        self.pad = pad
        self._running = threading.BoundedSemaphore(self.limits.max_concurrent)

    def answer(self, asker: str, kind: CheckKind, request: bytes) -> Reply:
        parse_request(request, self.limits.max_asker_cells)
        if not self._running.acquire(blocking=False):
            raise Busy(f"the owner is answering {self.limits.max_concurrent} private cross-checks already; try again shortly")
        try:
            self.budget.take(asker)
            return Owner(self.cells_for(kind), fpr=self.fpr, pad=self.pad).answer(request)
        finally:
            self._running.release()


# ---------------------------------------------------------------------------- both sides in one process


@dataclass(frozen=True, slots=True)
class Exchange:
    """One whole exchange in process: what the asker learnt, the bytes each way and the time each step took."""

    meeting: Meeting
    request_bytes: int
    setup_bytes: int
    response_bytes: int
    request_s: float
    answer_s: float
    meeting_s: float

    @property
    def total_s(self) -> float:
        return self.request_s + self.answer_s + self.meeting_s


def exchange(
    owner_cells: Collection[str], asker_cells: Collection[str], *, fpr: float = DEFAULT_FPR, pad: bool = True
) -> Exchange:
    """Run both sides of one session in this process (tests and benchmarks)."""
    t0 = time.perf_counter()
    asker = Asker(asker_cells, pad=pad)
    request = asker.request()
    t1 = time.perf_counter()
    reply = Owner(owner_cells, fpr=fpr, pad=pad).answer(request)
    t2 = time.perf_counter()
    meeting = asker.meeting(reply.setup, reply.response)
    t3 = time.perf_counter()
    return Exchange(meeting, len(request), len(reply.setup), len(reply.response), t1 - t0, t2 - t1, t3 - t2)
