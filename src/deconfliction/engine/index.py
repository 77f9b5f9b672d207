"""Spatial indexes for the picture: points by H3 cell, shapes in an STRtree.

Positions stream in, so assets live in mutable dicts of H3 cells (an update is two set
operations), with their coordinates in numpy arrays. Zones, AORs and territories change
rarely, so they sit in a shapely STRtree that is rebuilt on the first query after a
change. Both answer "what might lie within ``reach_m`` of this geometry"; the rules then
measure exactly.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar, cast

import h3
import h3.api.basic_int as h3i
import h3.api.numpy_int as h3n
import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.geo import (
    PLANE_ORIGIN,
    LatLon,
    LocalPlane,
    beyond_chords,
    buffered,
    degree_margins,
    degrees_envelope,
    farthest_m,
    in_envelope,
    segment_distances_m,
    wrapped_box,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


RING_SPACING = 1.5
"""In a grid of regular hexagons the centres of ring k lie at least 1.5 * k edges from the centre cell's:
k * sqrt(3) edges along the six lines through neighbours (the ring's corners), 1.5 * k midway between them
(the middle of the ring's sides)."""


class Level:
    """One H3 resolution of the point index, for positions up to ``max_uncertainty_m``.

    Edges of H3 cells at one resolution measure 0.70 to 1.10 times their average over the
    whole globe (sampled, pentagon neighbourhoods included, and checked by
    tests/engine/test_index.py); ``edge_min_m`` and ``edge_max_m`` add a margin to both.
    """

    __slots__ = ("cell_area_m2", "edge_max_m", "edge_min_m", "max_uncertainty_m", "resolution")

    def __init__(self, resolution: int, max_uncertainty_m: float) -> None:
        edge = float(h3.average_hexagon_edge_length(resolution, unit="m"))
        self.resolution = resolution
        self.max_uncertainty_m = max_uncertainty_m
        self.edge_min_m = 0.65 * edge
        self.edge_max_m = 1.15 * edge
        self.cell_area_m2 = float(h3.average_hexagon_area(resolution, unit="m^2"))

    def disk_k(self, reach_m: float) -> int:
        """Rings of cells around a point's cell that surely hold everything within ``reach_m``.

        A point within ``reach_m`` lies in a cell whose centre is within reach + 2 edges of
        the query cell's centre (no corner of a cell lies farther from its centre than the
        longest edge: tests/engine/test_index.py); ring k's centres lie at least
        ``RING_SPACING`` * k shortest edges out. Until 2026-12-07 the rings were counted by the
        corners' sqrt(3) * k, which the margins on the edges covered while k was small, and
        which dropped points from large searches where cells are smallest (a point check of
        100 km radius at 23.6° N 67.1° W missed points 1 m inside its reach;
        tests/engine/test_index.py holds both).
        """
        return math.ceil(self.search_m(reach_m) / (RING_SPACING * self.edge_min_m))

    def search_m(self, reach_m: float) -> float:
        """How far from a query this level is searched for points within ``reach_m``: the reach, the largest
        uncertainty the level holds, and two of its longest edges (the query's cell and the point's)."""
        return reach_m + self.max_uncertainty_m + 2 * self.edge_max_m


LEVELS = (
    Level(8, 100.0),
    Level(7, 500.0),
    Level(6, 1_500.0),
    Level(5, 5_000.0),
    Level(4, 15_000.0),
    Level(3, 40_000.0),
    Level(2, 100_000.0),
)
"""Precise positions (the usual GPS report) in small cells, coarser ones in ever larger
cells, so that the cells searched stay few at every level: the search radius of a level
grows with the uncertainty it holds, and so does its cells' size. Positions less certain
than the last level (the service refuses them) would be kept aside and always measured.
Each level's cells are about as large as the uncertainty it holds. Measured at 1M assets:
with only the first two levels, the 1 % of positions less certain than 1 km were measured
on every check and made a point check five times slower."""


ROW = np.dtype([("lon", "f8"), ("lat", "f8"), ("uncertainty_m", "f8"), ("cell", "i8")])
"""What the point index holds of each slot, for the query and the rules' measuring."""


class _Pairs:
    """(cell, slot) pairs in the order they came, in numpy arrays that grow: a query reads them as they are."""

    __slots__ = ("cells", "count", "slots")

    def __init__(self) -> None:
        self.count = 0
        self.cells = np.empty(MERGE_MIN_MOVES, dtype=np.int64)
        self.slots = np.empty(MERGE_MIN_MOVES, dtype=np.int64)

    def add(self, cell: int, slot: int) -> None:
        if self.count == len(self.cells):
            self.cells, self.slots = np.resize(self.cells, 2 * self.count), np.resize(self.slots, 2 * self.count)
        self.cells[self.count], self.slots[self.count] = cell, slot
        self.count += 1

    def taken(self) -> tuple[np.ndarray, np.ndarray]:
        """The pairs held, which are then no longer held (the arrays are kept for the next)."""
        held = self.cells[: self.count].copy(), self.slots[: self.count].copy()
        self.count = 0
        return held


class _Buckets:
    """Every level's (cell, slot) pairs sorted by cell, the pairs added since, and those left since.

    An H3 cell id names its resolution, so the levels share one sorted array: a query looks up
    the cells of all its levels' disks with one pair of ``searchsorted`` calls (a pair per
    level cost a point check at a million assets 150 µs). Moves land in the recent pairs
    (measured on every query, so they stay few) and are merged into the sorted arrays now and
    then. A pair whose cell is no longer its slot's current cell is skipped by the query; the
    merge drops it, found by the pair a slot leaves behind when it moves to another cell or goes
    (``left``), rather than by testing every pair (10 of its 14 ms at a million, a random read of
    each slot's cell).
    """

    __slots__ = ("cells", "left", "recent", "slots")

    def __init__(self) -> None:
        self.cells = np.empty(0, dtype=np.int64)
        self.slots = np.empty(0, dtype=np.int64)
        self.recent = _Pairs()
        self.left = _Pairs()

    def positions(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where in the sorted arrays the pairs of ``cells`` (sorted) lie, and how many each cell has there."""
        # ndarray's methods rather than numpy's functions, which dispatch to them for about half a µs each.
        lo, hi = self.cells.searchsorted(cells, "left"), self.cells.searchsorted(cells, "right")
        counts = hi - lo
        return (lo - counts.cumsum() + counts).repeat(counts) + np.arange(int(counts.sum())), counts


class PointIndex(Generic[K, V]):
    """Points with an uncertainty and a value each, bucketed by H3 cell at one of several resolutions.

    Each key holds a slot in numpy arrays (position, uncertainty, current level and cell);
    a query returns slots, and the rules measure all candidates in one vectorised step
    before any Python object is touched. The slot's value is then one list index away:
    at a million points, a dict lookup by key costs a finding about a microsecond more,
    in cache misses on the key's tuple and strings.
    """

    def __init__(self) -> None:
        self._buckets = _Buckets()
        self._held = [0] * len(LEVELS)  # slots at each level: a query skips the empty ones
        self._slot: dict[K, int] = {}
        self._values: list[V | None] = []  # by slot, None when free
        self._free: list[int] = []
        self._wide: set[int] = set()
        self._merge_at: float = MERGE_MIN_MOVES  # moves before the next merge: it grows with the index
        self._level = np.zeros(0, dtype=np.int64)  # a slot's level, -1 when none (wide or removed)
        self._rows = np.zeros(0, dtype=ROW)
        # The latitudes again, side by side: a scan (_scan) compares every one, 6 µs faster over 10k than in
        # the rows (which the search keeps for the rules' sake); 8 bytes more a point.
        self._lats = np.zeros(0)
        self._view_rows()

    def _view_rows(self) -> None:
        """A slot's position, uncertainty and cell lie side by side in one row of 32 bytes, so
        the query's test of a candidate's cell brings its position into the cache for the
        rules: one miss a candidate rather than four (15 % of a check at a million assets)."""
        self.lon, self.lat = self._rows["lon"], self._rows["lat"]
        self.uncertainty_m = self._rows["uncertainty_m"]
        self._cell = self._rows["cell"]  # a slot's cell at its level, -1 when none

    def __len__(self) -> int:
        return len(self._slot)

    def _new_slot(self) -> int:
        if self._free:
            return self._free.pop()
        slot = len(self._values)
        self._values.append(None)
        if slot >= len(self._rows):
            grow = np.zeros(max(1024, len(self._rows)), dtype=ROW)
            grow["cell"] = -1
            self._rows = np.concatenate((self._rows, grow))
            self._level = np.concatenate((self._level, np.full(len(grow), -1, dtype=np.int64)))
            self._lats = np.concatenate((self._lats, np.zeros(len(grow))))
            self._view_rows()
        return slot

    def values(self, slots: np.ndarray) -> list[V]:
        """The values of ``slots`` that a query found (each held: a free slot is found by none)."""
        values = self._values
        return cast(list[V], [values[slot] for slot in slots.tolist()])

    def revalue(self, key: K, value: V) -> None:
        """A new value for a point that stays where it is (nothing when ``key`` has no point)."""
        slot = self._slot.get(key)
        if slot is not None:
            self._values[slot] = value

    def put(self, key: K, point: LatLon, uncertainty_m: float, value: V) -> None:
        slot = self._slot.get(key)
        if slot is None:
            slot = self._slot[key] = self._new_slot()
        self._values[slot] = value
        self.lon[slot], self.lat[slot], self.uncertainty_m[slot] = point.lon, point.lat, uncertainty_m
        self._lats[slot] = point.lat
        for i, level in enumerate(LEVELS):
            if uncertainty_m <= level.max_uncertainty_m:
                cell = h3i.latlng_to_cell(point.lat, point.lon, level.resolution)
                if self._level[slot] == i and self._cell[slot] == cell:
                    return  # a move within its cell (most of a unit's reports): its pair still holds
                self._leave_level(slot)
                self._level[slot], self._cell[slot] = i, cell
                self._held[i] += 1
                self._buckets.recent.add(cell, slot)
                self._moved()
                return
        self._leave_level(slot)
        self._wide.add(slot)

    def remove(self, key: K) -> None:
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        self._leave_level(slot)  # its bucket entries no longer match and are skipped
        self._values[slot] = None
        self._free.append(slot)
        self._moved()

    def _leave_level(self, slot: int) -> None:
        level = int(self._level[slot])
        if level >= 0:
            self._held[level] -= 1
            self._buckets.left.add(int(self._cell[slot]), slot)  # no longer its pair: the next merge drops it
        self._level[slot] = self._cell[slot] = -1
        self._wide.discard(slot)

    def _moved(self) -> None:
        if max(self._buckets.recent.count, self._buckets.left.count) >= self._merge_at:
            self._merge()
            self._merge_at = max(MERGE_MIN_MOVES, len(self._slot) // MERGE_EVERY)

    @contextmanager
    def merged_at_end(self) -> Iterator[None]:
        """Inside the block, moves are merged once, at its end: a rebuild from the log sorts a million points once,
        and numbers them anew in the order of their cells (:meth:`_renumber`) when it placed most of them."""
        self._merge_at = math.inf
        try:
            yield
        finally:
            placed_most = self._buckets.recent.count >= len(self._slot) // 2
            self._merge()
            if placed_most:
                self._renumber()
            self._merge_at = max(MERGE_MIN_MOVES, len(self._slot) // MERGE_EVERY)

    def _renumber(self) -> None:
        """Number the slots in the order of their cells (just merged), so that the points a query finds in one cell
        lie side by side in memory: their rows are read in a few cache misses rather than one each. At a million
        points this took 0.8 s, and a point fires check's p50 went from 251 to 235 µs (2026-12-07). Points
        that move later keep their slots; most move within a few cells."""
        buckets, n = self._buckets, len(self._values)
        placed = np.zeros(n, dtype=bool)
        placed[buckets.slots] = True
        order = np.concatenate((buckets.slots, np.flatnonzero(~placed)))  # the slots in cells, then the wide and free
        renumbered = np.empty(n, dtype=np.int64)
        renumbered[order] = np.arange(n)
        self._rows[:n], self._level[:n], self._lats[:n] = self._rows[order], self._level[order], self._lats[order]
        values, new = self._values, renumbered.tolist()
        self._values = [values[i] for i in order.tolist()]
        self._slot = {key: new[slot] for key, slot in self._slot.items()}
        self._free = [new[slot] for slot in self._free]
        self._wide = {new[slot] for slot in self._wide}
        buckets.slots = renumbered[buckets.slots]

    def _merge(self) -> None:
        """Fold the recent moves into the sorted arrays, dropping the pairs their slots left."""
        buckets = self._buckets
        left_cells, left_slots = buckets.left.taken()
        recent = np.unique(buckets.recent.taken()[1])
        if len(left_cells):
            order = np.argsort(left_cells, kind="stable")
            left_cells, left_slots = left_cells[order], left_slots[order]
            # Each left pair against the sorted pairs of its cell (a few: those the cell holds).
            at, counts = buckets.positions(left_cells)
            gone = at[buckets.slots[at] == np.repeat(left_slots, counts)]
            buckets.cells, buckets.slots = np.delete(buckets.cells, gone), np.delete(buckets.slots, gone)
        # Every slot that moved left its pair before (or is new): its current pair is the one to hold, once.
        recent = recent[self._cell[recent] >= 0]
        recent_cells = self._cell[recent]
        order = np.argsort(recent_cells, kind="stable")
        at = np.searchsorted(buckets.cells, recent_cells[order])
        buckets.cells = np.insert(buckets.cells, at, recent_cells[order])
        buckets.slots = np.insert(buckets.slots, at, recent[order])

    def near(self, geom: BaseGeometry, plane: LocalPlane, reach_m: float) -> np.ndarray:
        """Slots whose point may lie within ``reach_m`` (+ its uncertainty) of ``geom`` (lon/lat)."""
        if len(self._slot) <= SCAN_MAX:
            return self._scan(geom, reach_m)
        wanted = self._cells_near(geom, plane, reach_m, most=len(self._slot) * CELLS_PER_POINT_MAX)
        if wanted is None:
            return self._scan(geom, reach_m)
        wide = np.fromiter(self._wide, dtype=np.int64, count=len(self._wide))
        if not len(wanted):
            return wide
        buckets = self._buckets
        index, _ = buckets.positions(wanted)
        slots = buckets.slots[index]
        found = [slots[self._cell[slots] == buckets.cells[index]], wide]
        recent = buckets.recent
        if recent.count:
            cells, slots = recent.cells[: recent.count], recent.slots[: recent.count]
            at = np.minimum(np.searchsorted(wanted, cells), len(wanted) - 1)
            hit = np.flatnonzero(wanted[at] == cells)
            moved = slots[hit][self._cell[slots[hit]] == cells[hit]]
            if len(moved):
                # A slot that moved away and back is both in its bucket and among the recent moves
                # (and may be there twice). Moves found are few: comparing each with every slot
                # found costs less than sorting them all (np.unique).
                moved = np.unique(moved)
                found.append(moved[~(found[0][:, None] == moved).any(axis=0)])
        return np.concatenate(found)

    def _cells_near(self, geom: BaseGeometry, plane: LocalPlane, reach_m: float, most: float) -> np.ndarray | None:
        """The cells, sorted, of every level held that hold all its points that may lie within ``reach_m`` of ``geom``;
        None where they would be more than ``most`` (a scan of every point then costs less).

        A point, or an area small enough, is searched as a disk of cells around its centre
        (far cheaper than covering the area's shape with cells).
        """
        if isinstance(geom, Point):
            centre, radius, xy = geom, 0.0, None
        else:
            xy = plane.project(geom)
            centre, radius = Point(plane.lon0, plane.lat0), farthest_m(xy)
        cells, count = [], 0.0
        for level, held in zip(LEVELS, self._held, strict=True):
            if not held:
                continue
            if xy is None or radius <= DISK_RADIUS_M:
                k = level.disk_k(reach_m + radius)
                count += 3 * k * (k + 1) + 1  # the cells of a disk k rings wide (fewer around a pentagon)
                if count > most:
                    return None
                origin = h3i.latlng_to_cell(centre.y, centre.x, level.resolution)
                cells.append(h3n.grid_disk(origin, k))
            else:
                grown = buffered(xy, beyond_chords(level.search_m(reach_m), QUAD_SEGS), QUAD_SEGS)  # a route, segment by segment
                count += grown.area / level.cell_area_m2  # about; the plane's metres are the ground's near its origin
                if count > most:
                    return None
                # Across the antimeridian the unprojected shape's longitudes jump from 180° to -180°: H3 reads a
                # polygon wider than 180° as crossing it, which is what it is (tests/engine/test_index.py).
                shape = h3.geo_to_h3shape(shapely.geometry.mapping(plane.unproject(grown)))
                cells.append(h3n.h3shape_to_cells_experimental(shape, level.resolution, contain="overlap"))
        if not cells:
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate(cells).astype(np.int64))

    def _scan(self, geom: BaseGeometry, reach_m: float) -> np.ndarray:
        """:meth:`near` for a small index: every slot against one lon/lat box, in numpy.

        Searching the H3 levels costs about 25 µs whatever the index holds; this costs a few
        comparisons per slot, so it wins below ``SCAN_MAX`` slots. The box is widened by the
        largest uncertainty a level in use may hold (positions beyond the levels are always returned).
        Only the latitudes are compared for every slot: the band they leave is a few percent of
        a theatre, and the rest is tested on it alone (at 10k points 19 µs against 35 µs for
        every test on every slot, 2026-12-07).
        """
        widest = max((level.max_uncertainty_m for level, held in zip(LEVELS, self._held, strict=True) if held), default=0.0)
        envelope = degrees_envelope(geom.bounds, reach_m + widest)
        _, south, _, north = envelope
        lat = self._lats[: len(self._values)]
        band = np.flatnonzero((lat >= south) & (lat <= north))
        band = band[self._level[band] >= 0]  # a free slot keeps its last position; a wide one is added below
        inside = band[in_envelope(self.lon[band], self.lat[band], envelope)]
        wide = np.fromiter(self._wide, dtype=np.int64, count=len(self._wide))
        return np.concatenate((inside, wide))


SCAN_MAX = 40_000
"""Up to this many points, :meth:`PointIndex.near` scans them all (see ``_scan``). Measured with the bench
theatre, a check and its probe watch's sightings through the service's path, p50 scanning against searching
the H3 levels: point fires 81 against 101 µs at 20k, 93 against 109 at 30k, 98 against 109 at 40k, 103
against 112 at 50k; point ground 74 against 88, 83 against 92, 87 against 92, 91 against 93 (2026-12-08,
AMD EPYC, both in turn in one process, six passes each, with the latitudes side by side: 15,000 before)."""

MERGE_MIN_MOVES = 1024
"""Moves kept aside before they are merged (at least; more in a large picture, 1/MERGE_EVERY of it)."""

MERGE_EVERY = 1024
"""A large picture's moves are merged once they are 1/MERGE_EVERY of it. Every check pays for the moves not yet
merged (about 10 ns each), every merge for the whole index: at a million points a merge took 3.8 ms (14 ms when it
tested every pair, at 1/256), and a point fires check between moves p50 282 and 289 µs against 297 and 306 at 1/256,
for about 1 µs more a report (2026-12-07, AMD EPYC, old and new in turn)."""


DISK_RADIUS_M = 20_000.0
"""Areas whose circumscribed circle is smaller than this are searched as a disk of cells."""

QUAD_SEGS = 4
"""Chords a quarter circle of an area's grown shape is drawn with: few, for H3 covers the shape by testing its
edges. The shape is grown by 1.9 % more so that the chords lie outside the margin (``geo.beyond_chords``). Until
2026-12-07 they cut inside it, and a search of 120 km reach round a large area missed points up to a kilometre
inside its reach, between the chords and the arcs (tests/engine/test_index.py)."""

CELLS_PER_POINT_MAX = 1 / 16
"""A search of the H3 levels that would look in more cells than this for each point held scans every point instead
(:meth:`PointIndex._scan`). The cells of a disk grow with the square of its reach: with four levels in use, a
reach of 200 km is 550,000 cells and the probe watch's 600 km, 4.8 million (0.56 s beside 20,000 points). Looking
in a cell cost 45 to 75 ns, scanning a point 2.4 to 10 ns (the first where a check's latitudes leave few of the
points, the second where they leave all), at 100k and 1M points (2026-12-07, AMD EPYC)."""


class ShapeIndex(Generic[K, V]):
    """Shapes (lon/lat) with a value each, in an STRtree rebuilt lazily after changes."""

    def __init__(self) -> None:
        self._items: dict[K, tuple[BaseGeometry, V]] = {}
        self._tree: shapely.STRtree | None = None
        self._values: list[V] = []  # in the tree's order

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return ((k, v) for k, (_, v) in self._items.items())

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        return None if item is None else item[1]

    def put(self, key: K, footprint: BaseGeometry, value: V) -> None:
        """``footprint`` is what the tree searches: the shape, or a box around a widened route."""
        shapely.prepare(footprint)  # contains/intersects against it are asked on every check
        self._items[key] = (footprint, value)
        self._tree = None

    def remove(self, key: K) -> None:
        if self._items.pop(key, None) is not None:
            self._tree = None

    def near(self, geom: BaseGeometry, reach_m: float) -> list[V]:
        """Values whose footprint comes within about ``reach_m`` of ``geom`` (a superset)."""
        return self.within(wrapped_box(degrees_envelope(geom.bounds, reach_m)))

    def within(self, box: BaseGeometry) -> list[V]:
        """Values whose footprint's bounding box meets ``box`` (lon/lat: a box, or the two of :func:`~deconfliction.geo.
        wrapped_box` across the antimeridian, each searched for itself), in the order they were put."""
        if not self._items:
            return []
        if self._tree is None:
            self._tree = shapely.STRtree([footprint for footprint, _ in self._items.values()])
            self._values = [value for _, value in self._items.values()]
        if isinstance(box, shapely.MultiPolygon):
            hits: np.ndarray = np.unique(self._tree.query(shapely.get_parts(box))[1])
        else:  # in an array of one: shapely lays a single shape out as one for 1.6 µs, twice the search itself
            hits = self._tree.query(np.array((box,), dtype=object))[1]
        values = self._values
        return [values[i] for i in sorted(hits.tolist())]


DIRECT_PAIRS = 4096
"""Up to this many (point, segment) pairs, border distances skip the segment tree."""


class Outline:
    """A territory's boundary cut into its segments, in an STRtree, for border distances.

    A border of ten thousand vertices then costs each point the few segments near it,
    not the whole line, and many points are measured in one vectorised pass.
    """

    def __init__(self, boundary: BaseGeometry) -> None:
        self.boundary = boundary
        coords = [np.asarray(part.coords)[:, :2] for part in shapely.get_parts(boundary)]
        self.ends = np.concatenate([np.hstack((c[:-1], c[1:])) for c in coords])  # [lon1, lat1, lon2, lat2]
        self.tree = shapely.STRtree(shapely.linestrings(self.ends.reshape(-1, 2, 2)))

    def distance_m(self, point: LatLon, search_m: float) -> float:
        """:meth:`distances_m` for one point (a check's). A simple outline is projected whole onto the
        point's plane and measured by shapely, in a third of the time numpy takes over arrays of one."""
        if len(self.ends) <= DIRECT_PAIRS:
            return float(shapely.distance(PLANE_ORIGIN, LocalPlane(point).project(self.boundary)))
        return float(self.distances_m(np.array([point.lat]), np.array([point.lon]), search_m)[0])

    def distances_m(self, lat: np.ndarray, lon: np.ndarray, search_m: float) -> np.ndarray:
        """Metres from each point to the outline: segments within ``search_m`` first, all of them if none is."""
        n, m = len(lat), len(self.ends)
        if n * m <= DIRECT_PAIRS:  # a simple outline: measuring every pair beats searching the tree
            points = np.repeat(np.arange(n), m)
            all_pairs = segment_distances_m(lat[points], lon[points], np.tile(self.ends, (n, 1)))
            nearest: np.ndarray = all_pairs.reshape(n, m).min(axis=1)
            return nearest
        dlat, dlon = degree_margins(lat, search_m)
        west, south, east, north = lon - dlon, lat - dlat, lon + dlon, lat + dlat
        # A box past ±180° is searched a turn round as well: the segments beyond the antimeridian are as near.
        owner, past = np.arange(len(lat)), np.flatnonzero((west <= -180.0) | (east >= 180.0))
        turn = np.where(west[past] <= -180.0, 360.0, -360.0)
        west, east = np.concatenate((west, west[past] + turn)), np.concatenate((east, east[past] + turn))
        owner = np.concatenate((owner, past))
        found, segments = self.tree.query(shapely.box(west, south[owner], east, north[owner]))
        points = owner[found]
        best = np.full(len(lat), np.inf)
        if len(points):
            np.minimum.at(best, points, segment_distances_m(lat[points], lon[points], self.ends[segments]))
        for i in np.nonzero(np.isinf(best))[0]:  # nothing near: measure against every segment
            n = len(self.ends)
            best[i] = segment_distances_m(np.full(n, lat[i]), np.full(n, lon[i]), self.ends).min()
        return best
