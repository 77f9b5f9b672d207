"""Rough check latency on a synthetic theatre: ``python benchmarks/check_latency.py [--assets 100000]``.

Prints the figures; it asserts nothing (speed is measured here, not in timed tests).
The engine alone is measured (what a check costs in process), then the whole service
call, which also records the check durably in SQLite.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shapely.geometry import Point, box

from deconfliction.clock import ManualClock
from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import check
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
from deconfliction.service import Caller, Role, Service
from deconfliction.stores import SQLiteStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# A 400 km stretch of border on the meridian 71 E, assets within 50 km either side.
LAT0, LAT1, LON0, LON1 = 33.0, 36.6, 70.45, 71.55


def theatre(assets: int, zones: int, seed: int = 1) -> Picture:
    rng = random.Random(seed)
    p = Picture()
    p.put_territory(Territory("east", box(71.0, LAT0, 72.0, LAT1)))
    p.put_territory(Territory("west", box(70.0, LAT0, 71.0, LAT1)))
    p.put_aor(Aor("east", "e", box(71.0, LAT0, 72.0, LAT1), 6 * 3600, NOW))
    p.put_aor(Aor("west", "w", box(70.0, LAT0, 71.0, LAT1), 6 * 3600, NOW))
    for i in range(assets):
        party = "east" if i % 2 else "west"
        kind = AssetKind.UNIT if i % 3 else AssetKind.SITE
        p.put_asset(Asset(party, f"a{i}", kind, f"a{i}", Disclosure.EXACT))
        point = LatLon(rng.uniform(LAT0, LAT1), rng.uniform(LON0, LON1))
        p.put_report(Report(party, f"a{i}", point, NOW, rng.uniform(5, 100), NOW + timedelta(hours=1)))
    for i in range(zones):
        x, y = rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1)
        p.put_zone(Zone("east", f"z{i}", ZoneKind.PROTECTED_AREA, box(x, y, x + 0.005, y + 0.005)))
    return p


def percentiles(samples_s: list[float]) -> str:
    ordered = sorted(samples_s)
    q = statistics.quantiles(ordered, n=1000)
    return f"p50 {q[499] * 1e6:8.1f} us   p99 {q[989] * 1e6:8.1f} us   p99.9 {q[998] * 1e6:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=5_000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, python {platform.python_version()}")

    started = time.perf_counter()
    picture = theatre(args.assets, args.zones)
    print(f"built {args.assets} assets and {args.zones} zones in {time.perf_counter() - started:.1f} s")

    rng = random.Random(2)
    for kind in (CheckKind.FIRES, CheckKind.GROUND):
        samples = []
        for _ in range(args.checks):
            at = Point(rng.uniform(LON0, LON1), rng.uniform(LAT0, LAT1))
            query = CheckQuery("west", kind, at, Window(NOW, NOW))
            t = time.perf_counter()
            check(picture, query, NOW, 1500.0 if kind is CheckKind.FIRES else 200.0)
            samples.append(time.perf_counter() - t)
        print(f"engine point check, {kind.value:6}: {percentiles(samples)}")

    with tempfile.TemporaryDirectory() as tmp:
        service = Service(SQLiteStore(Path(tmp) / "bench.db"), ManualClock(NOW))
        service.picture = picture
        picture.parties.update({p: Party(p, p) for p in ("east", "west")})
        caller = Caller("west", Role.LIAISON)
        samples = []
        for _ in range(min(args.checks, 2_000)):
            position = f"{rng.uniform(LAT0, LAT1):.5f}, {rng.uniform(LON0, LON1):.5f}"
            t = time.perf_counter()
            service.check(caller, {"position": position, "kind": "fires"})
            samples.append(time.perf_counter() - t)
        print(f"service check, recorded durably: {percentiles(samples)}")


if __name__ == "__main__":
    main()
