"""Probing: a party mapping another's hidden assets by asking many small checks.

A check tells its asker something about every asset it may not see, even a hidden one:
a hidden finding names the owner, so the asset is *inside* the check's buffered area;
no finding, and it is *outside*. Enough checks, placed well, pin a hidden post down. The
watch keeps, per asker and asset, the region still consistent with everything the asker
was told (the areas that hit, intersected, less the areas that missed) and reports two
signs to the owner:

- ``narrowing``: the answers together have told more than any one of them (the region
  fits in a circle narrower than ``NARROWER`` times the narrowest single answer's) and
  the region is narrower than ``alarm_m``;
- ``clustering``: ``checks`` distinct checks near the asset (their buffered areas within
  ``near_m`` of it) within ``window_s``.

One answer alone never raises ``narrowing``: a check that lands on a hidden post has been
told, by design, that something is within its buffer.

Each sign is reported once, and again when it doubles (the region half as wide, twice
the checks). Ordinary traffic stays quiet: a check repeated on the same place adds
nothing, and a route's long buffered area narrows little.

The watch attributes every hit to the asset it was about, which the asker cannot do (a
hidden finding names only the owner): it overestimates what the asker knows, so it fires
early rather than late. It watches hidden assets only: a coarse one shows its cell and a
distance band by its owner's choice. Hidden zones are not watched yet.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.disclosure import level_for
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import SearchArea, measure
from deconfliction.geo import PLANE_ORIGIN, LatLon, LocalPlane
from deconfliction.geo import buffered as geo_buffered
from deconfliction.model import CheckQuery, Disclosure

MAX_REMEMBERED = 1_000
"""Most checks remembered per asker and asset (the oldest go first): a party that made a thousand checks
near one hidden asset has long been reported; remembering more would only cost memory."""
NARROWER = 0.75
"""How much narrower than the narrowest single answer the answers together must place an asset to be a sign."""


class Sighting(NamedTuple):
    """What one check told its asker about one hidden asset: it is within ``reach_m`` of ``shape``, or not.

    ``shape`` is the checked geometry on the plane at the asset's ``point``, in metres: an
    area, or a point as its x, y (most checks; a shapely point costs more to make than all the
    rest of a sighting, and most sightings are misses that never need one). The region itself
    (:meth:`told`) is drawn only when the watch needs it. A named tuple rather than a frozen
    dataclass: a check makes one for every hidden asset near it, four times faster.
    """

    asker: str
    owner: str
    asset: str
    object: str
    name: str
    point: LatLon  # where the asset was when the check was answered
    at: datetime
    hit: bool  # inside the region (a finding), or outside it
    shape: BaseGeometry | tuple[float, float]
    reach_m: float
    distance_m: float  # from the checked geometry to the asset
    near: bool  # the buffered area came within near_m of the asset: the check counts towards clustering
    place: tuple[float, float, float]  # the check's place and reach, rounded: equal for a repeated check

    def geometry(self) -> BaseGeometry:
        """``shape`` as a shapely geometry."""
        return Point(self.shape) if isinstance(self.shape, tuple) else self.shape

    def told(self) -> BaseGeometry:
        # The asker may draw the region around its own geometry: on the asset's plane it is the same region.
        return geo_buffered(self.geometry(), self.reach_m)


def sightings(picture: Picture, query: CheckQuery, area: SearchArea, near_m: float, at: datetime) -> list[Sighting]:
    """What ``query`` (searching ``area``, as its check did) tells its asker about each asset hidden from it that its
    answer can place.

    The same test as the check's own (distance less uncertainty within the reach), so a
    sighting is a hit exactly when the answer holds a finding (or a stale gap) for the asset.
    A miss places an asset only where an earlier hit's area could reach, so assets are
    looked for within twice the reach (and at least ``near_m``) beyond the buffered area.
    """
    index = picture.hidden_positions
    beyond = max(2.0 * area.reach, near_m)
    slots, distances, reaches = measure(area, index, index.near(query.geometry, area.plane, area.reach + beyond), beyond)
    if not len(slots):
        return []  # near no hidden asset (most ground checks): the passes below cost about 10 µs for none
    ref = area.reference
    place = (round(ref.lat, 4), round(ref.lon, 4), round(area.reach))
    found: list[Sighting] = []
    placed = index.values(slots)
    for (asset, report), d, reach in zip(placed, distances.tolist(), reaches.tolist(), strict=True):
        if asset.party == query.asker:
            continue
        if level_for(asset.party, asset.disclosure, query.asker, asset.kind.value, picture.grants) is not Disclosure.HIDDEN:
            continue  # a grant opened it: the asker sees it, there is nothing to probe
        point = report.point
        # The query on the asset's own plane: a point check's place alone (most checks), an area whole.
        plane = LocalPlane(point)
        shape = plane.xy(ref.lon, ref.lat) if area.q_xy is PLANE_ORIGIN else plane.project(query.geometry)
        hit = d <= reach
        near = d <= reach + near_m
        who = (query.asker, asset.party, asset.id, asset.kind.value, asset.name)
        found.append(Sighting(*who, point, at, hit, shape, reach, d, near, place))
    return found


@dataclass(frozen=True, slots=True)
class Probe:
    """A sign that ``asker`` is mapping one of ``owner``'s hidden assets: what the owner is told."""

    owner: str
    asker: str
    asset: str
    object: str
    name: str
    signs: tuple[str, ...]  # narrowing, clustering
    checks: int  # distinct checks near the asset within the window
    hits: int  # checks whose answer held the asset (as a hidden finding)
    closest_m: float
    narrowed_to_m: float | None  # the diameter of the region the answers leave; None before any hit
    first_at: datetime
    last_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "party": self.owner,
            "asker": self.asker,
            "id": self.asset,
            "object": self.object,
            "name": self.name,
            "signs": list(self.signs),
            "checks": self.checks,
            "hits": self.hits,
            "closest_m": round(self.closest_m, 1),
            "narrowed_to_m": None if self.narrowed_to_m is None else round(self.narrowed_to_m, 1),
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
        }


@dataclass(slots=True)
class _Trail:
    """One asker's checks around one asset at one position. A node keeps one per asker and hidden asset
    checked near for a whole window (hours), and most hold a single miss, so a trail is kept compact: each
    remembered check is a few numbers, and its containers are made when it first needs them (the
    collector walks every object a node keeps)."""

    point: LatLon
    first_at: datetime
    last_at: datetime
    consistent: BaseGeometry | None = None  # where the asset may be, given the hits and misses; None before a hit
    width: float | None = None  # consistent's width, kept with it: judged on every sighting, changed by few
    hits: int = 0
    single_m: float = float("inf")  # the narrowest one answer placed the asset in
    closest_m: float = float("inf")
    reported_width_m: float = float("inf")
    reported_checks: int = 0
    # Misses before the first hit, as the regions they told, oldest first: a point check's as (x, y, reach),
    # the keys of a dict that drops a repeat (most misses; a shapely point each would cost ten times the
    # memory), any other shape as itself.
    missed_points: dict[tuple[float, float, float], None] | None = None
    missed_shapes: deque[tuple[BaseGeometry, float]] | None = None
    # The near checks in the window, as pairs of when (POSIX seconds) and where (the place's hash cut to 53
    # bits, which a double holds exactly: a collision, one in 2**53, would count two checks as one).
    recent: array[float] | None = None
    # From the first hit on, the point checks' answers the region already holds, as (x, y, reach, hit):
    # the same answer again tells nothing new, and taking it again costs polygon arithmetic for nothing.
    taken: set[tuple[float, float, float, bool]] | None = None

    def take(self, s: Sighting, window_s: float) -> None:
        self.last_at = max(self.last_at, s.at)
        self.closest_m = min(self.closest_m, s.distance_m)
        if s.near:
            self._remember(s.at.timestamp(), float(hash(s.place) >> 11), window_s)
        if s.hit:
            self.hits += 1
        if self.consistent is None and not s.hit:
            self._miss(s)
        elif not self._taken_before(s):
            self._learn(s)

    def _learn(self, s: Sighting) -> None:
        """Narrow the region by an answer not taken before: the first hit, or any answer after it."""
        if not s.hit:
            assert self.consistent is not None  # a miss before the first hit is only kept
            if float(s.geometry().distance(self.consistent)) <= s.reach_m:
                narrower = self.consistent.difference(s.told())
                if not narrower.is_empty:
                    self._place(narrower)
            return
        told = s.told()
        # A point check's region is a disk: its width is its diameter, without GEOS searching the
        # polygon for its enclosing circle (44 µs, the trail's dearest step).
        told_width = 2.0 * s.reach_m if isinstance(s.shape, tuple) else _width(told)
        self.single_m = min(self.single_m, told_width)
        if self.consistent is None:
            region = self._less_misses(told, s)
        else:
            region = self.consistent.intersection(told)
        if region.is_empty:  # answers that contradict each other: the asset changed; start from this one
            region = told
            answer = _answer(s)
            self.taken = None if answer is None else {answer}
        self._place(region, told_width if region is told else None)

    def _less_misses(self, told: BaseGeometry, hit: Sighting) -> BaseGeometry:
        """The first hit's region less the misses' (they count from the first hit on: before it, they placed
        nothing); the misses' answers are taken from now on."""
        excluded = self._missed_near(hit)
        if self.missed_points:
            self.taken = (self.taken or set()) | {(*point, False) for point in self.missed_points}
        self.missed_points = self.missed_shapes = None
        return told.difference(shapely.union_all(excluded)) if excluded else told

    def _taken_before(self, s: Sighting) -> bool:
        """Whether ``s`` is a point check's answer that the trail has taken already (if not, it is noted as taken)."""
        answer = _answer(s)
        if answer is None:
            return False
        if self.taken is None:
            self.taken = set()
        elif answer in self.taken:
            return True
        elif len(self.taken) >= MAX_REMEMBERED:
            self.taken.clear()  # bounded: forgetting costs only arithmetic done again
        self.taken.add(answer)
        return False

    def _place(self, region: BaseGeometry, width: float | None = None) -> None:
        """``region`` is where the asset may be now; its ``width`` when already measured."""
        self.consistent = region
        self.width = _width(region) if width is None else width

    def _remember(self, at: float, place: float, window_s: float) -> None:
        """Add a near check; drop those older than the window (they no longer count) and past the bound."""
        if self.recent is None:
            self.recent = array("d")
        recent = self.recent
        old = 0
        while old < len(recent) and recent[old] < at - window_s:
            old += 2
        del recent[: max(old, len(recent) + 2 - 2 * MAX_REMEMBERED)]
        recent.extend((at, place))

    def _miss(self, s: Sighting) -> None:
        if isinstance(s.shape, tuple):
            if self.missed_points is None:
                self.missed_points = {}
            self.missed_points[(*s.shape, s.reach_m)] = None
            if len(self.missed_points) > MAX_REMEMBERED:
                del self.missed_points[next(iter(self.missed_points))]
        else:
            if self.missed_shapes is None:
                self.missed_shapes = deque(maxlen=MAX_REMEMBERED)
            self.missed_shapes.append((s.shape, s.reach_m))

    def _missed_near(self, hit: Sighting) -> list[BaseGeometry]:
        """The regions the misses told that can overlap ``hit``'s (cheap: shapes and reaches first)."""
        asked, reach_m = hit.geometry(), hit.reach_m
        shapes = self.missed_shapes or ()
        regions = [geo_buffered(shape, reach) for shape, reach in shapes if shape.distance(asked) <= reach + reach_m]
        if self.missed_points:
            xyr = np.array(list(self.missed_points), dtype=float)
            points = shapely.points(xyr[:, :2])
            meet = shapely.distance(points, asked) <= xyr[:, 2] + reach_m
            regions += [geo_buffered(point, reach) for point, reach in zip(points[meet], xyr[meet, 2].tolist(), strict=True)]
        return regions

    def checks_since(self, since: float) -> int:
        """Distinct near checks from ``since`` (POSIX seconds) on."""
        recent = self.recent or array("d")
        return len({place for at, place in zip(recent[::2], recent[1::2], strict=True) if at >= since})


def _answer(s: Sighting) -> tuple[float, float, float, bool] | None:
    """A point check's answer about an asset, exactly: where it was asked (on the asset's plane), how far it
    reached, hit or miss. None for an area's: those are not kept."""
    return (*s.shape, s.reach_m, s.hit) if isinstance(s.shape, tuple) else None


def _width(region: BaseGeometry) -> float:
    """The diameter of the smallest circle around ``region``: how closely it places what is in it."""
    # GEOS may raise the floating-point "invalid" flag on its way to a finite answer (the region two disks a hair
    # apart leave): the answer is what counts. Were it not a number, the box's diagonal, never narrower, stands in.
    with np.errstate(invalid="ignore"):
        radius = float(shapely.minimum_bounding_radius(region))
    if math.isnan(radius):
        west, south, east, north = region.bounds
        return math.hypot(east - west, north - south)
    return 2.0 * radius


class ProbeWatch:
    """``ProbeWatch(alarm_m, checks, window_s)``: takes sightings, keeps the probes their owners should be told of.

    Thread-safe. It lives in memory: a restart starts every trail afresh.
    """

    def __init__(self, alarm_m: float, checks: int, window_s: float) -> None:
        self.alarm_m = alarm_m
        self.checks = checks
        self.window = timedelta(seconds=window_s)
        self._trails: dict[tuple[str, str], dict[str, _Trail]] = {}  # (owner, asset) -> asker -> trail
        self._due: list[Probe] = []
        self._lock = threading.Lock()
        self._swept: datetime | None = None

    def observe(self, seen: Iterable[Sighting]) -> list[Probe]:
        """Take what some answers told their askers; the probes they reveal are returned and kept until :meth:`take_due`."""
        probes = []
        with self._lock:
            for s in seen:
                trails = self._trails.get((s.owner, s.asset))
                if trails is None:
                    trails = self._trails[(s.owner, s.asset)] = {}
                trail = trails.get(s.asker)
                if trail is None or trail.point != s.point:  # the asset moved: what was learnt of it is old
                    trail = trails[s.asker] = _Trail(s.point, s.at, s.at)
                trail.take(s, self.window.total_seconds())
                probe = self._judge(s, trail)
                if probe is not None:
                    probes.append(probe)
            self._due.extend(probes)
        return probes

    def take_due(self, now: datetime) -> list[Probe]:
        """The probes observed since the last call, oldest first; trails idle for a whole window are forgotten
        (their checks no longer count), looked for every twelfth of a window."""
        with self._lock:
            due, self._due = self._due, []
            if self._swept is None or now - self._swept > self.window / 12:
                self._swept = now
                for asset, trails in list(self._trails.items()):
                    for asker in [asker for asker, trail in trails.items() if trail.last_at < now - self.window]:
                        del trails[asker]
                    if not trails:
                        del self._trails[asset]
        return due

    def moved(self, owner: str, asset: str, point: LatLon | None) -> None:
        """``owner``'s ``asset`` is now at ``point`` (None: no longer placed): if it moved, what askers learnt
        of where it was is old, and forgotten now rather than when it is next checked near (a node would
        otherwise keep the trails of every unit that ever moved for a whole window)."""
        with self._lock:
            trails = self._trails.get((owner, asset))
            if trails and (point is None or any(trail.point != point for trail in trails.values())):
                del self._trails[(owner, asset)]

    def __len__(self) -> int:
        """Trails kept: one per asking party and asset it has checked near."""
        return sum(len(trails) for trails in self._trails.values())

    def _judge(self, s: Sighting, trail: _Trail) -> Probe | None:
        signs = []
        width = trail.width
        if width is not None and width < min(self.alarm_m, NARROWER * trail.single_m) and width <= trail.reported_width_m / 2:
            signs.append("narrowing")
            trail.reported_width_m = width
        if not signs and not s.near:  # only a near check adds to the count: without one, no new sign
            return None
        checks = trail.checks_since((s.at - self.window).timestamp())
        if checks >= self.checks and checks >= 2 * trail.reported_checks:
            signs.append("clustering")
            trail.reported_checks = checks
        if not signs:
            return None
        return Probe(
            s.owner, s.asker, s.asset, s.object, s.name, tuple(signs), checks, trail.hits, trail.closest_m, width,
            trail.first_at, trail.last_at,
        )  # fmt: skip
