"""What changed where since a picture version: the evidence behind picture keys.

A picture key says "I have seen this box of the map as of version V". To honour it the
service must answer "what in this box changed after V?", hidden objects included, without
keeping a copy of the picture per key. So every change appends one entry (its sequence
number, the object, and the box the object occupied before or after the change) to a log
held in flat arrays. A query is a binary search for V and one vectorised box test over
the entries after it.

The log is bounded: past ``capacity`` entries the oldest half is dropped and the horizon
rises; a key from before the horizon can no longer be honoured and must be renewed.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deconfliction.errors import InvalidInput
from deconfliction.geo import Box, degree_margins, wrapped
from deconfliction.model import Disclosure

CAPACITY = 2_000_000
"""Entries kept (56 bytes each). A report that moves its asset is two (where it was, where it is), so
this keeps an hour of 275 such reports a second."""


@dataclass(frozen=True, slots=True)
class Changed:
    """An object that changed: ``what`` is asset, zone, aor, territory or activity."""

    what: str
    party: str
    id: str
    disclosure: Disclosure


class ChangeLog:
    """Append-only (seq, object, footprint) entries, queried by version and box."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.enabled = True
        self.horizon = 0  # changes at or before this sequence number are not known
        self._seq = array("q")
        self._box = array("d")  # minx, miny, maxx, maxy per entry
        self._margin = array("d")  # metres to widen the box by (a position's uncertainty)
        self._obj = array("l")
        self._objects: list[Changed] = []
        self._ids: dict[Changed, int] = {}

    def __len__(self) -> int:
        return len(self._seq)

    def reset(self, horizon: int) -> None:
        """Forget every entry: keys issued up to ``horizon`` cannot be honoured (a restart)."""
        self.__init__(self.capacity)  # type: ignore[misc]
        self.horizon = horizon

    def record(self, seq: int, changed: Changed, box: Box, margin_m: float = 0.0) -> None:
        if not self.enabled:
            return
        obj = self._ids.get(changed)
        if obj is None:
            obj = self._ids[changed] = len(self._objects)
            self._objects.append(changed)
        self._seq.append(seq)
        self._box.extend(box)
        self._margin.append(margin_m)
        self._obj.append(obj)
        if len(self._seq) > self.capacity:
            self._drop_oldest_half()

    def _drop_oldest_half(self) -> None:
        keep = len(self._seq) // 2
        self.horizon = self._seq[-keep - 1]
        self._seq = self._seq[-keep:]
        self._box = self._box[-4 * keep :]
        self._margin = self._margin[-keep:]
        self._obj = self._obj[-keep:]

    def since(self, seq: int, box: Box) -> dict[Changed, int]:
        """Objects whose footprint met ``box`` in a change after ``seq``, with their latest such change."""
        seqs = np.frombuffer(self._seq, dtype=np.int64) if self._seq else np.empty(0, np.int64)
        start = int(np.searchsorted(seqs, seq, side="right"))
        if start == len(seqs):
            return {}
        boxes = np.frombuffer(self._box, dtype=np.float64).reshape(-1, 4)[start:]
        margins = np.frombuffer(self._margin, dtype=np.float64)[start:]
        dlat, dlon = degree_margins((boxes[:, 1] + boxes[:, 3]) / 2, margins)
        _, south, _, north = box
        hit = (boxes[:, 1] - dlat <= north) & (boxes[:, 3] + dlat >= south)
        # Longitudes are compared within -180° to 180°: the box in its parts (geo.wrapped), and an entry whose
        # footprint reaches ±180° (a route beside the antimeridian, a position's uncertainty) a turn round too.
        west_of, east_of = boxes[:, 0] - dlon, boxes[:, 2] + dlon
        turns = (-360.0, 0.0, 360.0) if ((west_of <= -180.0) | (east_of >= 180.0)).any() else (0.0,)
        meets = np.zeros(len(boxes), dtype=bool)
        for west, _, east, _ in wrapped(box):
            for turn in turns:
                meets |= (west_of + turn <= east) & (east_of + turn >= west)
        hit &= meets
        objs = np.frombuffer(self._obj, dtype=np.dtype(f"i{self._obj.itemsize}"))[start:][hit]
        found: dict[Changed, int] = {}
        for obj, s in zip(objs.tolist(), seqs[start:][hit].tolist(), strict=True):
            found[self._objects[obj]] = s  # later entries overwrite: the latest change wins
        return found


def _micro(value: float, rounding: Callable[[float], int], outwards: int) -> float:
    """``value`` rounded outwards to a whole micro-degree (the float product may round the wrong way: then step once more)."""
    micro = rounding(value * 1e6)
    if (micro / 1e6 - value) * outwards < 0:
        micro += outwards
    return micro / 1e6


_KEY = re.compile(r"^(\d{1,18})@(-?\d{1,3}\.\d{6}),(-?\d{1,2}\.\d{6}),(-?\d{1,3}\.\d{6}),(-?\d{1,2}\.\d{6})$")


@dataclass(frozen=True, slots=True)
class PictureKey:
    """Proof of having seen a box of the map as of a picture version: ``"1234@70.980000,34.530000,71.040000,34.570000"``.

    Clients treat it as opaque. It needs no signature: it claims only what anyone may
    obtain by looking, and the service checks the claim against its own change log.
    """

    version: int
    box: Box

    @classmethod
    def issue(cls, version: int, box: Box) -> PictureKey:
        """A key for ``box``, rounded outwards to whole micro-degrees so that it still covers it."""
        w, s, e, n = box
        return cls(
            version, (_micro(w, math.floor, -1), _micro(s, math.floor, -1), _micro(e, math.ceil, 1), _micro(n, math.ceil, 1))
        )

    def __str__(self) -> str:
        return f"{self.version}@" + ",".join(f"{v:.6f}" for v in self.box)

    @classmethod
    def parse(cls, text: object, field: str) -> PictureKey:
        m = _KEY.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            raise InvalidInput(f"{text!r} is not a picture key; use the key a check or GET /v1/picture returned", field=field)
        return cls(int(m[1]), (float(m[2]), float(m[3]), float(m[4]), float(m[5])))

    def covers(self, box: Box) -> bool:
        w, s, e, n = self.box
        return w <= box[0] and s <= box[1] and e >= box[2] and n >= box[3]
