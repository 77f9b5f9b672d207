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

import threading
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.disclosure import level_for
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import measure, search_area
from deconfliction.geo import LatLon, LocalPlane
from deconfliction.geo import buffered as geo_buffered
from deconfliction.model import CheckQuery, Disclosure

MAX_REMEMBERED = 1_000
"""Most checks remembered per asker and asset (the oldest go first): a party that made a thousand checks
near one hidden asset has long been reported; remembering more would only cost memory."""
NARROWER = 0.75
"""How much narrower than the narrowest single answer the answers together must place an asset to be a sign."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one check told its asker about one hidden asset: it is within ``reach_m`` of ``shape``, or not.

    ``shape`` is the checked geometry on the plane at the asset's ``point``, in metres; the
    region itself (:meth:`told`) is drawn only when the watch needs it.
    """

    asker: str
    owner: str
    asset: str
    object: str
    name: str
    point: LatLon  # where the asset was when the check was answered
    at: datetime
    hit: bool  # inside the region (a finding), or outside it
    shape: BaseGeometry
    reach_m: float
    distance_m: float  # from the checked geometry to the asset
    near: bool  # the buffered area came within near_m of the asset: the check counts towards clustering
    place: tuple[float, float, float]  # the check's place and reach, rounded: equal for a repeated check

    def told(self) -> BaseGeometry:
        # The asker may draw the region around its own geometry: on the asset's plane it is the same region.
        return geo_buffered(self.shape, self.reach_m)


def sightings(picture: Picture, query: CheckQuery, buffer_m: float, near_m: float, at: datetime) -> list[Sighting]:
    """What ``query`` tells its asker about each asset hidden from it that its answer can place.

    The same test as the check's own (distance less uncertainty within the reach), so a
    sighting is a hit exactly when the answer holds a finding (or a stale gap) for the asset.
    A miss places an asset only where an earlier hit's area could reach, so assets are
    looked for within twice the reach (and at least ``near_m``) beyond the buffered area.
    """
    area = search_area(query, buffer_m)
    index = picture.hidden_positions
    beyond = max(2.0 * area.reach, near_m)
    slots, distances = measure(area, index, index.near(query.geometry, area.plane, area.reach + beyond), area.reach + beyond)
    place = (round(area.reference.lat, 4), round(area.reference.lon, 4), round(area.reach))
    found: list[Sighting] = []
    candidates = zip(slots.tolist(), distances.tolist(), index.uncertainty_m[slots].tolist(), strict=True)
    for slot, d, uncertainty in candidates:
        asset, report = index.value(slot)
        if asset.party == query.asker:
            continue
        if level_for(asset.party, asset.disclosure, query.asker, asset.kind.value, picture.grants) is not Disclosure.HIDDEN:
            continue  # a grant opened it: the asker sees it, there is nothing to probe
        point = report.point
        shape = LocalPlane(point).project(query.geometry)
        hit = d - uncertainty <= area.reach
        near = d - uncertainty <= area.reach + near_m
        who = (query.asker, asset.party, asset.id, asset.kind.value, asset.name)
        found.append(Sighting(*who, point, at, hit, shape, area.reach + uncertainty, d, near, place))
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
    """One asker's checks around one asset at one position, kept compact: a node keeps one per asker and
    hidden asset checked near, for a whole window (hours), so each remembered check is a few numbers."""

    point: LatLon
    first_at: datetime
    last_at: datetime
    consistent: BaseGeometry | None = None  # where the asset may be, given the hits and misses; None before a hit
    width: float | None = None  # consistent's width, kept with it: judged on every sighting, changed by few
    # Misses before the first hit, as the regions they told: a point check's as x, y, reach (the most
    # common, and a shapely point per miss costs ten times the memory), any other shape as itself.
    missed_points: array[float] = field(default_factory=lambda: array("d"))
    missed_shapes: deque[tuple[BaseGeometry, float]] = field(default_factory=lambda: deque(maxlen=MAX_REMEMBERED))
    hits: int = 0
    single_m: float = float("inf")  # the narrowest one answer placed the asset in
    closest_m: float = float("inf")
    # The near checks in the window: when (POSIX seconds) and where (the place's hash: a collision, one in
    # 2**64, would count two checks as one).
    recent_at: array[float] = field(default_factory=lambda: array("d"))
    recent_place: array[int] = field(default_factory=lambda: array("q"))
    reported_width_m: float = float("inf")
    reported_checks: int = 0
    # The point checks whose answers the region (or the misses kept) already holds, as (x, y, reach, hit):
    # the same answer again tells nothing new, and taking it again costs polygon arithmetic for nothing.
    taken: set[tuple[float, float, float, bool]] = field(default_factory=set)

    def take(self, s: Sighting, window: timedelta) -> None:
        self.last_at = max(self.last_at, s.at)
        self.closest_m = min(self.closest_m, s.distance_m)
        if s.near:
            self._remember(s.at.timestamp(), hash(s.place), (s.at - window).timestamp())
        if s.hit:
            self.hits += 1
        if self._taken_before(s):
            return
        if s.hit:
            told = s.told()
            # A point check's region is a disk: its width is its diameter, without GEOS searching the
            # polygon for its enclosing circle (44 µs, the trail's dearest step).
            told_width = 2.0 * s.reach_m if isinstance(s.shape, Point) else _width(told)
            self.single_m = min(self.single_m, told_width)
            if self.consistent is None:
                # The misses so far count from the first hit on: before it, they placed nothing.
                excluded = self._missed_near(s)
                region = told.difference(shapely.union_all(excluded)) if excluded else told
                del self.missed_points[:]
                self.missed_shapes.clear()
            else:
                region = self.consistent.intersection(told)
            if region.is_empty:  # answers that contradict each other: the asset changed; start from this one
                region = told
                self.taken = {_answer(s)} if isinstance(s.shape, Point) else set()
            self._place(region, told_width if region is told else None)
        elif self.consistent is None:
            self._miss(s)
        elif float(s.shape.distance(self.consistent)) <= s.reach_m:
            narrower = self.consistent.difference(s.told())
            if not narrower.is_empty:
                self._place(narrower)

    def _taken_before(self, s: Sighting) -> bool:
        """Whether ``s`` is a point check's answer that the trail has taken already (if not, it is noted as taken)."""
        if not isinstance(s.shape, Point):
            return False
        answer = _answer(s)
        if answer in self.taken:
            return True
        if len(self.taken) >= MAX_REMEMBERED:
            self.taken.clear()  # bounded: forgetting costs only arithmetic done again
        self.taken.add(answer)
        return False

    def _place(self, region: BaseGeometry, width: float | None = None) -> None:
        """``region`` is where the asset may be now; its ``width`` when already measured."""
        self.consistent = region
        self.width = _width(region) if width is None else width

    def _remember(self, at: float, place: int, horizon: float) -> None:
        """Add a near check; drop those older than the window (they no longer count) and past the bound."""
        old = 0
        while old < len(self.recent_at) and self.recent_at[old] < horizon:
            old += 1
        old = max(old, len(self.recent_at) + 1 - MAX_REMEMBERED)
        del self.recent_at[:old], self.recent_place[:old]
        self.recent_at.append(at)
        self.recent_place.append(place)

    def _miss(self, s: Sighting) -> None:
        if isinstance(s.shape, Point):
            if len(self.missed_points) >= 3 * MAX_REMEMBERED:
                del self.missed_points[:3]
            self.missed_points.extend((s.shape.x, s.shape.y, s.reach_m))
        else:
            self.missed_shapes.append((s.shape, s.reach_m))

    def _missed_near(self, hit: Sighting) -> list[BaseGeometry]:
        """The regions the misses told that can overlap ``hit``'s (cheap: shapes and reaches first)."""
        regions = [geo_buffered(shape, reach) for shape, reach in self.missed_shapes if _may_meet(shape, reach, hit)]
        if self.missed_points:
            xyr = np.frombuffer(self.missed_points, dtype=float).reshape(-1, 3)
            points = shapely.points(xyr[:, :2])
            meet = shapely.distance(points, hit.shape) <= xyr[:, 2] + hit.reach_m
            regions += [geo_buffered(point, reach) for point, reach in zip(points[meet], xyr[meet, 2].tolist(), strict=True)]
        return regions

    def checks_since(self, start: datetime) -> int:
        since = start.timestamp()
        return len({place for at, place in zip(self.recent_at, self.recent_place, strict=True) if at >= since})


def _answer(s: Sighting) -> tuple[float, float, float, bool]:
    """A point check's answer about an asset, exactly: where it was asked (on the asset's plane), how far it
    reached, hit or miss."""
    return (s.shape.x, s.shape.y, s.reach_m, s.hit)


def _may_meet(shape: BaseGeometry, reach_m: float, other: Sighting) -> bool:
    """Whether two told regions can overlap at all (cheap: shapes and reaches only)."""
    return float(shape.distance(other.shape)) <= reach_m + other.reach_m


def _width(region: BaseGeometry) -> float:
    """The diameter of the smallest circle around ``region``: how closely it places what is in it."""
    return 2.0 * float(shapely.minimum_bounding_radius(region))


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
                trails = self._trails.setdefault((s.owner, s.asset), {})
                trail = trails.get(s.asker)
                if trail is None or trail.point != s.point:  # the asset moved: what was learnt of it is old
                    trail = trails[s.asker] = _Trail(s.point, s.at, s.at)
                trail.take(s, self.window)
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
        checks = trail.checks_since(s.at - self.window)
        if checks >= self.checks and checks >= 2 * trail.reported_checks:
            signs.append("clustering")
            trail.reported_checks = checks
        if not signs:
            return None
        return Probe(
            s.owner, s.asker, s.asset, s.object, s.name, tuple(signs), checks, trail.hits, trail.closest_m, width,
            trail.first_at, trail.last_at,
        )  # fmt: skip
