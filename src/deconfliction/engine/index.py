"""Spatial indexes for the picture: points by H3 cell, shapes in an STRtree.

Positions stream in, so assets live in a mutable dict of H3 cells (an update is two set
operations). Zones, AORs and territories change rarely, so they sit in a shapely STRtree
that is rebuilt on the first query after a change. Both answer "what might lie within
``reach_m`` of this geometry"; the rules then measure exactly.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

import h3
import numpy as np
import shapely
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from deconfliction.geo import LatLon, LocalPlane, degrees_envelope

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

CELL_RESOLUTION = 7
"""H3 resolution of the point buckets: cells of about 5 km², a few per check buffer."""

WIDE_UNCERTAINTY_M = 2_000.0
"""Positions less certain than this are kept outside the cells and always considered,
so that the cell search radius stays small for the ordinary, precise report."""

_EDGE_M = h3.average_hexagon_edge_length(CELL_RESOLUTION, unit="m")
# H3 cells vary in size across the globe (up to about 2x between pentagon neighbourhoods
# and the largest cells); these bounds keep the disk search conservative everywhere.
_EDGE_MIN_M = 0.55 * _EDGE_M
_EDGE_MAX_M = 1.3 * _EDGE_M
_CELL_AREA_M2 = h3.average_hexagon_area(CELL_RESOLUTION, unit="m^2")


class PointIndex(Generic[K]):
    """Points with an uncertainty, bucketed by H3 cell."""

    def __init__(self) -> None:
        self._cells: dict[str, set[K]] = {}
        self._where: dict[K, tuple[str | None, LatLon, float]] = {}
        self._wide: set[K] = set()

    def __len__(self) -> int:
        return len(self._where)

    def put(self, key: K, point: LatLon, uncertainty_m: float) -> None:
        self.remove(key)
        if uncertainty_m > WIDE_UNCERTAINTY_M:
            self._wide.add(key)
            self._where[key] = (None, point, uncertainty_m)
            return
        cell = h3.latlng_to_cell(point.lat, point.lon, CELL_RESOLUTION)
        self._cells.setdefault(cell, set()).add(key)
        self._where[key] = (cell, point, uncertainty_m)

    def remove(self, key: K) -> None:
        old = self._where.pop(key, None)
        if old is None:
            return
        cell = old[0]
        if cell is None:
            self._wide.discard(key)
            return
        bucket = self._cells[cell]
        bucket.discard(key)
        if not bucket:
            del self._cells[cell]

    def near(self, geom: BaseGeometry, plane: LocalPlane, reach_m: float) -> Iterator[K]:
        """Keys whose point may lie within ``reach_m`` (+ its uncertainty) of ``geom`` (lon/lat)."""
        yield from self._wide
        reach = reach_m + WIDE_UNCERTAINTY_M
        if isinstance(geom, Point):
            k = math.ceil((reach + 2 * _EDGE_MAX_M) / (math.sqrt(3) * _EDGE_MIN_M))
            cells = h3.grid_disk(h3.latlng_to_cell(geom.y, geom.x, CELL_RESOLUTION), k)
        else:
            grown = plane.project(geom).buffer(reach + 2 * _EDGE_MAX_M, quad_segs=4)
            if grown.area / _CELL_AREA_M2 > len(self._cells):
                yield from (k for k, (cell, _, _) in self._where.items() if cell is not None)
                return
            shape = h3.geo_to_h3shape(shapely.geometry.mapping(plane.unproject(grown)))
            cells = h3.h3shape_to_cells_experimental(shape, CELL_RESOLUTION, contain="overlap")
        for cell in cells:
            bucket = self._cells.get(cell)
            if bucket:
                yield from bucket


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
        envelope = box(*degrees_envelope(geom.bounds, reach_m))
        hits: np.ndarray = self._tree.query(envelope)
        return [self._items[self._keys[i]][1] for i in sorted(hits.tolist())]
