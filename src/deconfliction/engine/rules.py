"""The check rules: conflict, unknown or clear. Explained in prose in docs/rules.md.

A check measures everything in metres on a :class:`~deconfliction.geo.LocalPlane` at the
checked geometry's reference point, with every buffer widened by ``SAFETY_FACTOR`` so that
the plane's small error can only add conflicts. The order of the rules matters:

1. conflict: something protected is within the buffer during the window;
2. unknown: some part of the buffered area is not vouched for by a fresh picture;
3. clear: neither.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.engine.index import K, PointIndex, V
from deconfliction.engine.picture import Picture
from deconfliction.errors import InvalidInput
from deconfliction.geo import (
    PLANE_LATITUDE_LIMIT,
    PLANE_ORIGIN,
    SAFETY_FACTOR,
    LatLon,
    LocalPlane,
    degrees_envelope,
    farthest_m,
    wrapped_box,
)
from deconfliction.geo import buffered as geo_buffered
from deconfliction.model import (
    Aor,
    AssetKind,
    Border,
    CheckKind,
    CheckQuery,
    CheckResult,
    Finding,
    Gap,
    Status,
    Zone,
    ZoneKind,
)

UNCOVERED_AREA_M2 = 1.0
"""Uncovered slivers smaller than this are rounding noise at shared AOR/territory edges."""

BORDER_SEARCH_M = 50_000.0
"""Border distance is measured on the boundary within this distance first (fast), then on all of it."""

CLIP_VERTICES = 256
"""Zones with more vertices than this are cut to the check's search box before they are measured."""

NEAREST_FIRST = attrgetter("distance_m", "party", "id")
"""The order of an answer's conflicts."""


def zone_applies(zone: Zone, kind: CheckKind) -> bool:
    """Which zones a check of this kind must keep its buffer from."""
    if zone.kind in (ZoneKind.PROTECTED_AREA, ZoneKind.ROUTE):
        return True
    if zone.kind is ZoneKind.NO_FIRE_AREA:
        return kind in (CheckKind.FIRES, CheckKind.AIR)
    return False  # an operating area is information, not something to keep clear of


def reference_point(geom: BaseGeometry) -> LatLon:
    """The point a check's border read-back is given for: the position, or the area's centroid."""
    p = geom if isinstance(geom, Point) else geom.centroid
    return LatLon(p.y, p.x)


def _clipped_xy(area: SearchArea, geom: BaseGeometry) -> BaseGeometry:
    """The part of a lon/lat shape that matters inside the search area's envelope, in plane metres (large shapes
    stay cheap).

    The plane maps lon/lat affinely, so a shape of few vertices that does not wrap around the
    plane's antimeridian is projected whole: cutting it first costs three times more and
    changes nothing inside the envelope. Others are cut to the envelope's box first (its two
    boxes, across the antimeridian), with an intersection rather than ``clip_by_rect``: the
    latter may return invalid polygons, which the coverage arithmetic below cannot take.
    """
    plane = area.plane
    minx, _, maxx, _ = bounds = geom.bounds
    if _inside(bounds, area.envelope) or (
        shapely.get_num_coordinates(geom) <= CLIP_VERTICES and plane.lon0 - 180.0 <= minx and maxx <= plane.lon0 + 180.0
    ):
        return plane.project(geom)
    return plane.project(geom.intersection(area.box))


@dataclass(frozen=True, slots=True)
class SearchArea:
    """Where a query reaches: its geometry in plane metres and how far around it to look."""

    reference: LatLon
    plane: LocalPlane
    q_xy: BaseGeometry  # the query's geometry on the plane
    radius: float  # how far q_xy reaches from the plane's origin (0 for a point), metres
    buffer_m: float  # the buffer the check keeps, metres
    base: float  # the query's radius plus the buffer, metres
    reach: float  # base widened by the plane's error bound, metres: reach_for(0)
    envelope: tuple[float, float, float, float]  # lon/lat box that holds the whole buffered area (may pass ±180°)
    # The envelope as a shape, its two boxes across the antimeridian (geo.wrapped_box): the shape indexes'
    # search and the coverage's tests, made once for all of them.
    box: BaseGeometry

    def reach_for(self, beyond: np.ndarray) -> np.ndarray:
        """The reach to shapes that extend ``beyond`` metres past what is measured of them (an asset's
        uncertainty around its point, half a route's width around its line), for each.

        The plane errs on the whole distance, so the part that ``beyond`` covers is widened by its
        error bound too (the 0.5 % floor, ``SAFETY_FACTOR``, is the buffer's alone): widening the buffer
        alone missed, 100 km from the pole, an asset 0.4 m inside it with 794 m of uncertainty
        (tests/engine/test_index.py).
        """
        # One bound for all, the farthest-reaching shape's: the bound only grows with the extent, so it
        # holds for each, at a third of the cost of one bound per shape (7 µs a check).
        widest = self.base + (float(beyond.max()) if beyond.size else 0.0)
        bound = self.plane.error_bound(self.radius + widest * 1.01)
        if math.isinf(bound):  # one shape reaches past the plane's limit: it is always found, the others as usual
            bounds = self.plane.error_bound(self.radius + (self.base + beyond) * 1.01)
            widened: np.ndarray = self.base * np.maximum(SAFETY_FACTOR, 1 + bounds) + beyond * (1 + bounds)
            return widened
        reach: np.ndarray = beyond * (1 + bound) + self.base * max(SAFETY_FACTOR, 1 + bound)
        return reach


def search_area(query: CheckQuery, buffer_m: float) -> SearchArea:
    """The plane, the widened reach and the lon/lat envelope of ``query`` with ``buffer_m``."""
    ref = reference_point(query.geometry)
    plane = LocalPlane(ref)
    if isinstance(query.geometry, Point):  # the plane's origin itself: nothing to project
        q_xy, radius, bounds = PLANE_ORIGIN, 0.0, (ref.lon, ref.lat, ref.lon, ref.lat)
    else:
        q_xy = plane.project(query.geometry)
        radius, bounds = farthest_m(q_xy), query.geometry.bounds
    extent = radius + (query.radius_m + buffer_m) * 1.01
    if not plane.holds(extent):
        raise InvalidInput(
            f"this check's buffered area reaches past {PLANE_LATITUDE_LIMIT:g}° of latitude (within "
            f"{(90.0 - PLANE_LATITUDE_LIMIT) * 111:.0f} km of the pole), where the service's local plane does not "
            "hold: it cannot be answered there",
            field="position" if isinstance(query.geometry, Point) else "area",
        )
    base = query.radius_m + buffer_m
    reach = base * max(SAFETY_FACTOR, 1 + plane.error_bound(extent))
    envelope = degrees_envelope(bounds, reach + 1.0)
    return SearchArea(ref, plane, q_xy, radius, buffer_m, base, reach, envelope, wrapped_box(envelope))


def check(picture: Picture, query: CheckQuery, now: datetime, buffer_m: float) -> CheckResult:
    """Answer one check on the picture as it is at ``now``.

    >>> check(picture, CheckQuery("isaf", CheckKind.FIRES, Point(71.013, 34.552), window), now, 1500)
    """
    return check_in(picture, query, now, search_area(query, buffer_m))


def check_in(picture: Picture, query: CheckQuery, now: datetime, area: SearchArea) -> CheckResult:
    """:func:`check` on the query's search area, made already: the probe watch's sightings measure from the same
    (making it twice cost a server's check 5 µs)."""
    conflicts: list[Finding] = []
    gaps: list[Gap] = []
    _assets(picture, query, now, area, conflicts, gaps)
    _zones(picture, query, area, conflicts)
    _coverage(picture, query, now, area, gaps)

    status = Status.CONFLICT if conflicts else Status.UNKNOWN if gaps else Status.CLEAR
    conflicts.sort(key=NEAREST_FIRST)
    return CheckResult(
        status=status,
        conflicts=tuple(conflicts),
        gaps=tuple(gaps),
        border=border(picture, area.reference),
        reference=area.reference,
        buffer_m=area.buffer_m,
        picture_version=picture.version,
        envelope=area.envelope,
    )


def stakeholders(picture: Picture, area: SearchArea) -> set[str]:
    """Parties whose AOR or territory a query's buffered ``area`` touches, fresh or not."""
    found: set[str] = set()
    shapes = [(a.party, a.geometry) for a in picture.aors.within(area.box)]
    shapes += [(t.party, t.geometry) for t in picture.territories.within(area.box)]
    for party, geometry in shapes:
        if party not in found and geometry.intersects(area.box) and _reached(area, geometry):
            found.add(party)
    return found


def _reached(area: SearchArea, geometry: BaseGeometry) -> bool:
    """Whether a lon/lat shape comes within the query's reach: whether it meets the buffered area.

    Measured rather than intersected with a buffer polygon, whose chords fall 0.1 % inside the
    circle, and without making one (15 µs). Nothing of the shape inside the envelope measures
    NaN: within no reach.
    """
    return bool(shapely.distance(area.q_xy, _clipped_xy(area, geometry)) <= area.reach)


def _assets(
    picture: Picture,
    query: CheckQuery,
    now: datetime,
    area: SearchArea,
    conflicts: list[Finding],
    gaps: list[Gap],
) -> None:
    """An asset conflicts when its distance minus its uncertainty is inside the buffer.

    A unit whose report went stale cannot be vouched for either way: its last known
    position inside the buffer makes a gap, not a conflict and not a clear.
    """
    index = picture.positions
    slots, distances, _ = measure(area, index, index.near(query.geometry, area.plane, area.reach))
    apart = np.maximum(distances - query.radius_m, 0.0).tolist()
    for (asset, report), distance_m in zip(index.values(slots), apart, strict=True):
        # By position, and the kind's value as str() gives it: keywords and the enum's .value cost a check at a
        # million assets (about 20 findings) 8 µs more (Python 3.11).
        finding = Finding(asset.party, str(asset.kind), asset.id, asset.name, asset.disclosure, distance_m, report.point)
        if asset.kind is AssetKind.UNIT and report.is_stale(now):
            gaps.append(Gap(party=asset.party, reason="stale_asset", since=report.stale_at, asset=finding))
        else:
            conflicts.append(finding)


def measure(
    area: SearchArea, index: PointIndex[K, V], slots: np.ndarray, further_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the candidate ``slots``, those whose point lies within the reach for its uncertainty (and ``further_m``
    beyond it) of the query; with their distances and those reaches (without ``further_m``), metres. The check's
    own test, and the probe watch's farther out."""
    if not len(slots):
        return slots, np.empty(0), np.empty(0)
    xs, ys = area.plane.xy(index.lon[slots], index.lat[slots])
    distances = np.hypot(xs, ys)  # from the origin: the checked point itself, or the area's reference
    reaches = area.reach_for(index.uncertainty_m[slots])
    limits = reaches + further_m if further_m else reaches
    if area.q_xy is not PLANE_ORIGIN:
        # An area lies within its radius of the origin, so what is farther than the reach beyond that
        # cannot be within it: GEOS measures only the others (a third of them for a 1 km square).
        near = distances <= area.radius + limits
        slots, xs, ys, reaches, limits = slots[near], xs[near], ys[near], reaches[near], limits[near]
        distances = shapely.distance(area.q_xy, shapely.points(xs, ys))
    within = distances <= limits
    return slots[within], distances[within], reaches[within]


def _zones(picture: Picture, query: CheckQuery, area: SearchArea, conflicts: list[Finding]) -> None:
    """A zone conflicts when the kind must keep clear of it and it is within the buffer, in time and height.

    Candidates are measured together in one vectorised call; shapes of many vertices are
    cut to the search box first.
    """
    candidates = [
        zone
        for zone in picture.zones.within(area.box)
        if zone_applies(zone, query.kind)
        and (zone.window is None or zone.window.overlaps(query.window))
        and (zone.altitude is None or query.altitude is None or zone.altitude.overlaps(query.altitude))
    ]
    if not candidates:
        return
    half_widths = np.fromiter((zone.width_m / 2 for zone in candidates), dtype=float, count=len(candidates))
    parts = np.fromiter((zone.geometry for zone in candidates), dtype=object, count=len(candidates))
    # Only shapes of many vertices are cut to the box first, to keep their projection cheap:
    # the plane maps straight lon/lat edges to straight edges, so cutting changes no distance.
    large = shapely.get_num_coordinates(parts) > CLIP_VERTICES
    if large.any():
        # One search box for all, wide enough for the widest route among them.
        env = degrees_envelope(query.geometry.bounds, area.reach + float(half_widths.max()) + 1.0)
        parts[large] = shapely.intersection(parts[large], wrapped_box(env))
    distances = shapely.distance(area.q_xy, area.plane.project_all(parts))
    # NaN (nothing of the zone inside its search box) is within no reach.
    apart = distances - half_widths - query.radius_m
    # Squares and polygons (most zones) reach no farther than they are measured: the area's own reach, without
    # widening each (3 µs a check at a million assets).
    reach = area.reach_for(half_widths) if half_widths.any() else area.reach
    for i in np.flatnonzero(distances <= reach).tolist():
        zone = candidates[i]
        conflicts.append(
            Finding(
                party=zone.party,
                object=zone.kind.value,
                id=zone.id,
                name=zone.name,
                disclosure=zone.disclosure,
                distance_m=max(0.0, float(apart[i])),
            )
        )


def _inside(bounds: tuple[float, float, float, float], envelope: tuple[float, float, float, float]) -> bool:
    return bounds[0] >= envelope[0] and bounds[1] >= envelope[1] and bounds[2] <= envelope[2] and bounds[3] <= envelope[3]


def _coverage(picture: Picture, query: CheckQuery, now: datetime, area: SearchArea, gaps: list[Gap]) -> None:
    """Who vouches for the buffered area: lapsed AORs, and other parties' territory outside any of their AORs.

    The search area's envelope holds the whole buffered area, so an AOR that contains the
    envelope covers the area, and a shape that misses the envelope misses the area: the
    common cases need no polygon arithmetic. Nor does a territory whose part in the envelope
    its party's AORs hold together (a buffer across an AOR's edge, or across the border):
    see :func:`_held_in_envelope`.
    """
    buffered: BaseGeometry | None = None
    partial: dict[str, list[Aor]] = defaultdict(list)
    whole: set[str] = set()
    for aor in picture.aors.within(area.box):
        lapsed = aor.lapsed_since(now)
        if aor.geometry.contains(area.box):
            whole.add(aor.party)
        else:
            partial[aor.party].append(aor)
            if lapsed is None or not _reached(area, aor.geometry):
                continue
        if lapsed is not None:
            since = None if aor.confirmed_at is None else lapsed
            gaps.append(Gap(party=aor.party, reason="aor_lapsed", since=since, aor=aor.id))
    for territory in picture.territories.within(area.box):
        if territory.party == query.asker or territory.party in whole or not territory.geometry.intersects(area.box):
            continue
        aors = [aor.geometry for aor in partial[territory.party]]
        if aors and _held_in_envelope(picture, territory.party, area):
            continue
        buffered = buffered or geo_buffered(area.q_xy, area.reach)
        part = _clipped_xy(area, territory.geometry).intersection(buffered)
        if part.is_empty:
            continue
        if aors:
            part = part.difference(shapely.union_all([_clipped_xy(area, a) for a in aors]))
        if part.area > UNCOVERED_AREA_M2:
            gaps.append(Gap(party=territory.party, reason="no_aor", since=None))


def _held_in_envelope(picture: Picture, party: str, area: SearchArea) -> bool:
    """Whether ``party``'s AORs together hold all of its territory that lies in the search envelope: then no
    part of the buffered area (which the envelope holds) is outside them.

    Asked in lon/lat, without the plane: whether the part of the territory outside every AOR
    (:meth:`Picture.outside_aors`, made once) meets the envelope, one test on a prepared shape
    rather than a union, an intersection and a cover on every check near an AOR's edge (80 to
    200 µs at a million assets). A sure answer only: an envelope that wraps around the
    antimeridian, or a sliver between shapes that do not quite meet, says no, and the plane's
    arithmetic decides.
    """
    west, _, east, _ = area.envelope
    if west < -180.0 or east > 180.0:
        return False
    outside = picture.outside_aors(party)
    return outside is not None and not outside.intersects(area.box)


def border(picture: Picture, point: LatLon) -> Border:
    """Whose territory ``point`` is in, and its distance to that territory's boundary.

    Outside every territory, the distance is to the nearest territory's boundary; with no
    territories loaded, both are None. :func:`borders` answers the same for many points at
    once; this is its path for one (every check's), without arrays of one to lay out
    (tests/engine/test_rules.py holds the two equal).
    """
    territories = [t for _, t in picture.territories]
    if not territories:
        return Border(None, None)
    inside = next((t for t in territories if shapely.intersects_xy(t.geometry, point.lon, point.lat)), None)
    measured = territories if inside is None else [inside]
    distance = min(picture.outlines[t.party].distance_m(point, BORDER_SEARCH_M) for t in measured)
    return Border(None if inside is None else inside.party, round(distance, 1))


def borders(picture: Picture, lat: np.ndarray, lon: np.ndarray) -> list[Border]:
    """:func:`border` for many points at once (a batch of reports); a batch of one takes :func:`border`'s path,
    in a third of the time (the one report a request carries, which the service reads back through here)."""
    if len(lat) == 1:
        return [border(picture, LatLon(float(lat[0]), float(lon[0])))]
    territories = [t for _, t in picture.territories]
    if not territories:
        return [Border(None, None)] * len(lat)
    inside = np.full(len(lat), -1)
    for i, t in enumerate(territories):
        hit = shapely.intersects_xy(t.geometry, lon, lat)
        inside[(inside < 0) & hit] = i
    distance = np.full(len(lat), np.inf)
    for i, t in enumerate(territories):
        chosen = np.nonzero((inside == i) | (inside < 0))[0]
        if len(chosen):
            found = picture.outlines[t.party].distances_m(lat[chosen], lon[chosen], BORDER_SEARCH_M)
            distance[chosen] = np.minimum(distance[chosen], found)
    return [
        Border(territories[i].party if i >= 0 else None, round(float(d), 1))
        for i, d in zip(inside.tolist(), distance, strict=True)
    ]
