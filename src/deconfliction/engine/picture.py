"""The shared picture in memory: every party's assets, positions, zones, AORs and territories.

Pure state with no I/O and no clock: the service applies accepted writes to it, and the
rules read it. ``version`` grows with every change, so an answer can say which picture it
was given on; fed from the log, it is the sequence number of the latest change.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from deconfliction.engine.index import Outline, PointIndex, ShapeIndex
from deconfliction.geo import degrees_envelope
from deconfliction.model import Aor, Asset, Party, Report, Territory, Zone, ZoneKind

Key = tuple[str, str]


def _footprint(zone: Zone) -> BaseGeometry:
    if zone.kind is ZoneKind.ROUTE:
        return box(*degrees_envelope(zone.geometry.bounds, zone.width_m / 2))
    return zone.geometry


class Picture:
    """Current state of every party's declarations, indexed for checks."""

    def __init__(self) -> None:
        self.version = 0
        self.parties: dict[str, Party] = {}
        self.assets: dict[Key, Asset] = {}
        self.reports: dict[Key, Report] = {}
        self.positions: PointIndex[Key] = PointIndex()
        self.zones: ShapeIndex[Key, Zone] = ShapeIndex()
        self.aors: ShapeIndex[Key, Aor] = ShapeIndex()
        self.territories: ShapeIndex[str, Territory] = ShapeIndex()
        self.outlines: dict[str, Outline] = {}  # each territory's boundary, for border distances

    def _changed(self) -> int:
        self.version += 1
        return self.version

    def put_party(self, party: Party) -> int:
        self.parties[party.id] = party
        return self._changed()

    def put_asset(self, asset: Asset) -> int:
        self.assets[asset.key] = asset
        return self._changed()

    def withdraw_asset(self, key: Key) -> int:
        self.assets.pop(key, None)
        self.reports.pop(key, None)
        self.positions.remove(key)
        return self._changed()

    def put_report(self, report: Report) -> int:
        key = (report.party, report.asset)
        self.reports[key] = report
        self.positions.put(key, report.point, report.uncertainty_m)
        return self._changed()

    def withdraw_position(self, key: Key) -> int:
        self.reports.pop(key, None)
        self.positions.remove(key)
        return self._changed()

    def put_zone(self, zone: Zone) -> int:
        self.zones.put(zone.key, _footprint(zone), zone)
        return self._changed()

    def withdraw_zone(self, key: Key) -> int:
        self.zones.remove(key)
        return self._changed()

    def put_aor(self, aor: Aor) -> int:
        self.aors.put(aor.key, aor.geometry, aor)
        return self._changed()

    def confirm_aor(self, key: Key, at: datetime) -> int:
        aor = self.aors.get(key)
        assert aor is not None, "confirm_aor on an unknown AOR: the service checks first"
        self.aors.put(key, aor.geometry, replace(aor, confirmed_at=at))
        return self._changed()

    def put_territory(self, territory: Territory) -> int:
        self.territories.put(territory.party, territory.geometry, territory)
        self.outlines[territory.party] = Outline(territory.geometry.boundary)
        return self._changed()
