"""Spatial indexes for the picture: points by H3 cell, shapes in an STRtree.

Positions stream in, so assets live in a mutable dict of H3 cells (an update is two set
operations). Zones, AORs and territories change rarely, so they sit in a shapely STRtree
that is rebuilt on the first query after a change. Both answer "what might lie within
``reach_m`` of this geometry"; the rules then measure exactly.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator
from itertools import chain
from typing import Generic, TypeVar

import h3
import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.geo import LatLon, LocalPlane, degrees_envelope

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CELL_RESOLUTION = 7
"""H3 resolution of the point buckets: cells of about 5 km², a few per check buffer."""

WIDE_UNCERTAINTY_M = 500.0
"""Positions less certain than this are kept outside the cells and always considered,
so that the cell search radius stays small for the ordinary, precise report."""

_EDGE_M = h3.average_hexagon_edge_length(CELL_RESOLUTION, unit="m")
# Edges of resolution-7 cells measure 0.70 to 1.10 times the average over the whole globe
# (sampled, pentagon neighbourhoods included); these bounds add a margin to both.
_EDGE_MIN_M = 0.65 * _EDGE_M
_EDGE_MAX_M = 1.15 * _EDGE_M
_CELL_AREA_M2 = h3.average_hexagon_area(CELL_RESOLUTION, unit="m^2")


class PointIndex(Generic[K]):
    """Points with an uncertainty, bucketed by H3 cell, with coordinates in numpy arrays.

    Each key holds a slot; a query returns slots, and the rules measure all candidates in
    one vectorised step before any Python object is touched.
    """

    def __init__(self) -> None:
        self._cells: dict[str, set[int]] = {}
        self._slot: dict[K, int] = {}
        self._keys: list[K | None] = []
        self._cell_of: list[str | None] = []
        self._free: list[int] = []
        self._wide: set[int] = set()
        self.lon = np.zeros(0)
        self.lat = np.zeros(0)
        self.uncertainty_m = np.zeros(0)

    def __len__(self) -> int:
        return len(self._slot)

    def key(self, slot: int) -> K:
        key = self._keys[slot]
        assert key is not None
        return key

    def _new_slot(self, key: K) -> int:
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = key
            return slot
        slot = len(self._keys)
        self._keys.append(key)
        self._cell_of.append(None)
        if slot >= len(self.lon):
            grow = max(1024, len(self.lon))
            self.lon, self.lat, self.uncertainty_m = (
                np.concatenate((a, np.zeros(grow))) for a in (self.lon, self.lat, self.uncertainty_m)
            )
        return slot

    def put(self, key: K, point: LatLon, uncertainty_m: float) -> None:
        slot = self._slot.get(key)
        if slot is None:
            slot = self._slot[key] = self._new_slot(key)
        else:
            self._unbucket(slot)
        self.lon[slot], self.lat[slot], self.uncertainty_m[slot] = point.lon, point.lat, uncertainty_m
        if uncertainty_m > WIDE_UNCERTAINTY_M:
            self._wide.add(slot)
            return
        cell = h3.latlng_to_cell(point.lat, point.lon, CELL_RESOLUTION)
        self._cells.setdefault(cell, set()).add(slot)
        self._cell_of[slot] = cell

    def _unbucket(self, slot: int) -> None:
        cell = self._cell_of[slot]
        if cell is None:
            self._wide.discard(slot)
            return
        bucket = self._cells[cell]
        bucket.discard(slot)
        if not bucket:
            del self._cells[cell]
        self._cell_of[slot] = None

    def remove(self, key: K) -> None:
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        self._unbucket(slot)
        self._keys[slot] = None
        self._free.append(slot)

    def near(self, geom: BaseGeometry, plane: LocalPlane, reach_m: float) -> np.ndarray:
        """Slots whose point may lie within ``reach_m`` (+ its uncertainty) of ``geom`` (lon/lat)."""
        reach = reach_m + WIDE_UNCERTAINTY_M
        cells: Iterable[str]
        if isinstance(geom, Point):
            k = math.ceil((reach + 2 * _EDGE_MAX_M) / (math.sqrt(3) * _EDGE_MIN_M))
            cells = h3.grid_disk(h3.latlng_to_cell(geom.y, geom.x, CELL_RESOLUTION), k)
        else:
            grown = plane.project(geom).buffer(reach + 2 * _EDGE_MAX_M, quad_segs=4)
            if grown.area / _CELL_AREA_M2 > len(self._cells):
                cells = self._cells  # the area holds more cells than are occupied: take them all
            else:
                shape = h3.geo_to_h3shape(shapely.geometry.mapping(plane.unproject(grown)))
                cells = h3.h3shape_to_cells_experimental(shape, CELL_RESOLUTION, contain="overlap")
        buckets = [b for b in map(self._cells.get, cells) if b]
        return np.fromiter(chain(self._wide, *buckets), dtype=np.int64)


class ShapeIndex(Generic[K, V]):
    """Shapes (lon/lat) with a value each, in an STRtree rebuilt lazily after changes."""

    def __init__(self) -> None:
        self._items: dict[K, tuple[BaseGeometry, V]] = {}
        self._tree: shapely.STRtree | None = None
        self._keys: list[K] = []

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
        if not self._items:
            return []
        if self._tree is None:
            self._keys = list(self._items)
            self._tree = shapely.STRtree([self._items[k][0] for k in self._keys])
        envelope = shapely.box(*degrees_envelope(geom.bounds, reach_m))
        hits: np.ndarray = self._tree.query(envelope)
        return [self._items[self._keys[i]][1] for i in sorted(hits.tolist())]
