"""A synthetic theatre for the benchmark: one border, two forces, an aid agency, N assets.

The border runs 2,000 km along the meridian 40° E (latitudes 20° to 38°); each force's
territory reaches 1° (about 100 km) from it. Density stays realistic at every size: at
1M assets there are about 2.5 assets per km². The same seed gives the same theatre, so
every system in the benchmark answers the same questions on the same data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shapely.geometry import LineString, Point, Polygon, box

from deconfliction.engine.picture import Picture
from deconfliction.geo import LatLon
from deconfliction.model import (
    Aor,
    Asset,
    AssetKind,
    CheckKind,
    CheckQuery,
    Disclosure,
    Party,
    Report,
    Territory,
    Window,
    Zone,
    ZoneKind,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BORDER_LON = 40.0
SOUTH, NORTH = 20.0, 38.0
DEPTH_DEG = 1.0
WIDE_RADIUS_M = 100_000.0
"""The radius of the bench's wide checks (the API takes up to 200 km)."""
WIDE_EAST_DEG = 4.0
"""The wide checks' distance east of the border: 3 degrees (about 290 km) beyond the theatre's assets."""
PARTIES = (Party("west", "West Force"), Party("east", "East Force"), Party("relief", "Relief Agency"))


@dataclass
class Theatre:
    """Everything the benchmark loads into each system, as domain objects."""

    now: datetime
    parties: list[Party]
    territories: list[Territory]
    aors: list[Aor]
    assets: list[Asset]
    reports: list[Report]
    zones: list[Zone]
    seed: int = 1
    sizes: dict[str, int] = field(default_factory=dict)

    def picture(self) -> Picture:
        """The theatre in the engine's in-memory picture, loaded as the service rebuilds it from its log."""
        p = Picture()
        with p.loading():
            for party in self.parties:
                p.put_party(party)
            for territory in self.territories:
                p.put_territory(territory)
            for aor in self.aors:
                p.put_aor(aor)
            for asset in self.assets:
                p.put_asset(asset)
            for report in self.reports:
                p.put_report(report)
            for zone in self.zones:
                p.put_zone(zone)
        return p

    def checks(self, count: int, kind: CheckKind, *, area: bool = False, seed: int = 2) -> list[CheckQuery]:
        """Random checks in the theatre: points, or squares of 0.5 to 2 km."""
        rng = random.Random(seed)
        queries = []
        for _ in range(count):
            lat, lon = _random_point(rng)
            geometry: Point | Polygon = Point(lon, lat)
            if area:
                half = rng.uniform(250, 1000)
                dlat, dlon = half / 110_574, half / (111_320 * math.cos(math.radians(lat)))
                geometry = box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
            asker = rng.choice(("west", "east"))
            queries.append(CheckQuery(asker, kind, geometry, Window(self.now, self.now)))
        return queries

    def wide_checks(self, count: int, *, radius_m: float = WIDE_RADIUS_M, seed: int = 3) -> list[CheckQuery]:
        """Air checks of ``radius_m`` from points ``WIDE_EAST_DEG`` east of the border, where no asset is within
        reach: what a wide check costs the index's search alone (the probe watch, three times as far, reaches
        some)."""
        rng = random.Random(seed)
        points = [Point(BORDER_LON + WIDE_EAST_DEG, rng.uniform(SOUTH, NORTH)) for _ in range(count)]
        return [CheckQuery("west", CheckKind.AIR, p, Window(self.now, self.now), radius_m) for p in points]


def _random_point(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(SOUTH, NORTH), rng.uniform(BORDER_LON - DEPTH_DEG, BORDER_LON + DEPTH_DEG)


def _square(lat: float, lon: float, half_m: float) -> Polygon:
    dlat, dlon = half_m / 110_574, half_m / (111_320 * math.cos(math.radians(lat)))
    return box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def _aors(party: str, west: float, east: float, now: datetime) -> Iterator[Aor]:
    """One AOR per degree of latitude; every seventh has lapsed (confirmed 7 h ago, 6 h freshness)."""
    for i, lat in enumerate(range(int(SOUTH), int(NORTH))):
        confirmed = now - timedelta(hours=7 if i % 7 == 3 else 1)
        yield Aor(party, f"{party}-{lat}", box(west, lat, east, lat + 1), 6 * 3600, confirmed)


def make_theatre(assets: int, zones: int | None = None, seed: int = 1, now: datetime = NOW) -> Theatre:
    """A theatre of ``assets`` assets and ``zones`` zones (default one per ten assets), as it stands at ``now``.

    The same seed gives the same theatre at any ``now``: every time in it is relative to ``now``.
    """
    zones = assets // 10 if zones is None else zones
    rng = random.Random(seed)
    territories = [
        Territory("west", box(BORDER_LON - DEPTH_DEG, SOUTH, BORDER_LON, NORTH)),
        Territory("east", box(BORDER_LON, SOUTH, BORDER_LON + DEPTH_DEG, NORTH)),
    ]
    aors = [*_aors("west", BORDER_LON - DEPTH_DEG, BORDER_LON, now), *_aors("east", BORDER_LON, BORDER_LON + DEPTH_DEG, now)]
    asset_list: list[Asset] = []
    reports: list[Report] = []
    for i in range(assets):
        lat, lon = _random_point(rng)
        party = "relief" if i % 20 == 0 else ("west" if lon < BORDER_LON else "east")
        kind = AssetKind.SITE if i % 3 == 0 else AssetKind.UNIT
        roll = rng.random()
        disclosure = Disclosure.EXACT if roll < 0.7 else Disclosure.COARSE if roll < 0.9 else Disclosure.HIDDEN
        roll = rng.random()
        uncertainty = rng.uniform(5, 50) if roll < 0.9 else rng.uniform(100, 500) if roll < 0.99 else rng.uniform(1000, 3000)
        stale_at = None
        if kind is AssetKind.UNIT:
            stale_at = now - timedelta(minutes=10) if rng.random() < 0.05 else now + timedelta(minutes=rng.uniform(5, 60))
        asset_list.append(Asset(party, f"a{i}", kind, f"asset {i}", disclosure))
        reports.append(Report(party, f"a{i}", LatLon(lat, lon), now - timedelta(minutes=5), uncertainty, stale_at))
    zone_list: list[Zone] = []
    for i in range(zones):
        lat, lon = _random_point(rng)
        party = "relief" if i % 10 == 0 else ("west" if lon < BORDER_LON else "east")
        window = None
        if rng.random() < 0.3:
            start = now + timedelta(hours=rng.uniform(-12, 12))
            window = Window(start, start + timedelta(hours=rng.uniform(1, 8)))
        roll = rng.random()
        if roll < 0.6:
            zone = Zone(party, f"z{i}", ZoneKind.PROTECTED_AREA, _square(lat, lon, rng.uniform(50, 250)), window=window)
        elif roll < 0.9:
            zone = Zone(party, f"z{i}", ZoneKind.NO_FIRE_AREA, _square(lat, lon, rng.uniform(250, 1000)), window=window)
        else:
            points = [(lon, lat)]
            for _ in range(rng.randint(2, 5)):
                lon2 = points[-1][0] + rng.uniform(-0.03, 0.03)
                lat2 = points[-1][1] + rng.uniform(-0.03, 0.03)
                points.append((lon2, lat2))
            zone = Zone(party, f"z{i}", ZoneKind.ROUTE, LineString(points), width_m=rng.uniform(50, 300), window=window)
        zone_list.append(zone)
    return Theatre(
        now=now,
        parties=list(PARTIES),
        territories=territories,
        aors=aors,
        assets=asset_list,
        reports=reports,
        zones=zone_list,
        seed=seed,
        sizes={"assets": assets, "zones": zones},
    )
