"""PostGIS and Redis answer the benchmark's checks as our engine does (docs/rules.md).

These start real servers (PostgreSQL 15 with PostGIS, redis-server), so they are slow and
CI, which has neither, skips them: ``python -m pytest tests/bench -q -m slow``.

Distances differ slightly between the systems (a local plane with buffers widened by at
least 0.5 %, the ellipsoid, a sphere), so a check with something within 1 % of its
buffer's edge may honestly differ: such checks are found with
:func:`~deconfliction.bench.alternatives.borderline`, counted, and left out of the
comparison, which must then agree on every check.
"""

from __future__ import annotations

import math
import random
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from shapely.geometry import Point

# The benchmark's own dependencies (pip install -e '.[bench]'); CI installs only '.[test]'
# and deselects these slow tests, but still collects this module.
pytest.importorskip("psycopg")
pytest.importorskip("redis")

from deconfliction.bench.alternatives import (
    Answer,
    CheckPath,
    PostgisPath,
    RedisPath,
    RedisServer,
    agreement,
    borderline,
    make_answer,
    ours_answer,
)
from deconfliction.bench.servers import PG_BIN, PostgisServer
from deconfliction.bench.theatre import Theatre, make_theatre
from deconfliction.engine.rules import check
from deconfliction.geo import LatLon
from deconfliction.model import DEFAULT_BUFFERS_M, CheckKind, CheckQuery, Window

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None,
        reason="needs PostgreSQL 15 with PostGIS and redis-server on this machine",
    ),
]

RANDOM_POINTS = 300  # per kind
POLYGONS = 100  # in all, a quarter of each kind
AIMED = 100  # per kind: points near assets and zones, so that conflicts are really exercised
MAX_BORDERLINE_SHARE = 0.05  # more than this, and the exclusion would be hiding real differences


@dataclass(frozen=True)
class Case:
    query: CheckQuery
    buffer_m: float
    ours: Answer


@pytest.fixture(scope="module")
def theatre() -> Theatre:
    return make_theatre(2000, seed=5)


def _aimed(theatre: Theatre, kind: CheckKind, count: int, seed: int) -> list[CheckQuery]:
    """Points at a random offset from an asset or a zone, up to twice the buffer (plus 500 m) away."""
    rng = random.Random(seed)
    buffer_m = DEFAULT_BUFFERS_M[kind]
    queries = []
    for _ in range(count):
        if rng.random() < 0.7:
            target = rng.choice(theatre.reports).point
        else:
            c = rng.choice(theatre.zones).geometry.centroid
            target = LatLon(c.y, c.x)
        offset = rng.uniform(0, 2 * buffer_m + 500)
        bearing = math.radians(rng.uniform(0, 360))
        lat = target.lat + offset * math.cos(bearing) / 110_574
        lon = target.lon + offset * math.sin(bearing) / (111_320 * math.cos(math.radians(target.lat)))
        queries.append(CheckQuery(rng.choice(("west", "east")), kind, Point(lon, lat), Window(theatre.now, theatre.now)))
    return queries


@pytest.fixture(scope="module")
def point_cases(theatre: Theatre) -> list[Case]:
    picture = theatre.picture()
    cases = []
    for i, kind in enumerate(CheckKind):
        queries = theatre.checks(RANDOM_POINTS, kind, seed=10 + i) + _aimed(theatre, kind, AIMED, seed=20 + i)
        buffer_m = DEFAULT_BUFFERS_M[kind]
        cases += [Case(q, buffer_m, ours_answer(check(picture, q, theatre.now, buffer_m))) for q in queries]
    return cases


@pytest.fixture(scope="module")
def polygon_cases(theatre: Theatre) -> list[Case]:
    picture = theatre.picture()
    cases = []
    for i, kind in enumerate(CheckKind):
        buffer_m = DEFAULT_BUFFERS_M[kind]
        queries = theatre.checks(POLYGONS // len(CheckKind), kind, area=True, seed=30 + i)
        cases += [Case(q, buffer_m, ours_answer(check(picture, q, theatre.now, buffer_m))) for q in queries]
    return cases


@pytest.fixture(scope="module")
def postgis(theatre: Theatre) -> Iterator[PostgisPath]:
    with PostgisServer() as server:
        path = PostgisPath(server)
        try:
            seconds = path.load(theatre)
            print(f"\nPostGIS: loaded {len(theatre.assets)} assets in {seconds:.2f} s")
            yield path
        finally:
            path.close()


@pytest.fixture(scope="module")
def redis_path(theatre: Theatre) -> Iterator[RedisPath]:
    with RedisServer() as server:
        path = RedisPath(server)
        try:
            seconds = path.load(theatre)
            print(f"\nRedis: loaded {len(theatre.assets)} assets in {seconds:.2f} s")
            yield path
        finally:
            path.close()


def _compare(path: CheckPath, cases: list[Case], theatre: Theatre) -> tuple[list[Answer], list[Case]]:
    """The path's answers, and the borderline cases (looked for in every case, agreeing or not)."""
    theirs = [path.check(c.query, theatre.now, c.buffer_m) for c in cases]
    edge = [c for c in cases if borderline(path, c.query, theatre.now, c.buffer_m)]
    return theirs, edge


def _report(label: str, cases: list[Case], theirs: list[Answer], edge: list[Case], *, assets_only: bool) -> list[str]:
    """Print the figures, and list the disagreements on checks that are not borderline."""
    edge_ids = {id(c) for c in edge}
    kept = [(c, a) for c, a in zip(cases, theirs, strict=True) if id(c) not in edge_ids]
    share = agreement([c.ours for c, _ in kept], [a for _, a in kept], assets_only=assets_only)
    overall = agreement([c.ours for c in cases], theirs, assets_only=assets_only)
    statuses = {s: sum(c.ours.status == s for c in cases) for s in ("conflict", "unknown", "clear")}
    print(
        f"\n{label}: {len(cases)} checks {statuses}, {len(edge)} borderline; "
        f"agreement {overall:.4f} on all, {share:.4f} on the rest"
    )
    field = "asset_ids" if assets_only else "conflict_ids"
    return [
        f"{c.query.kind} {c.query.geometry.wkt}: ours {getattr(c.ours, field)} {c.ours.status},"
        f" theirs {getattr(a, field)} {a.status}"
        for c, a in kept
        if not _same(c.ours, a, assets_only=assets_only)
    ]


def _same(a: Answer, b: Answer, *, assets_only: bool) -> bool:
    return agreement([a], [b], assets_only=assets_only) == 1.0


# ---------------------------------------------------------------------------- PostGIS


def test_postgis_agrees_with_the_engine_on_point_checks(postgis: PostgisPath, point_cases: list[Case], theatre: Theatre) -> None:
    theirs, edge = _compare(postgis, point_cases, theatre)
    differ = _report("PostGIS points", point_cases, theirs, edge, assets_only=False)
    assert not differ, "\n".join(differ[:20])
    assert len(edge) <= MAX_BORDERLINE_SHARE * len(point_cases)
    # The rules are exercised, not only clears: every status occurs.
    assert {c.ours.status for c in point_cases} == {"conflict", "unknown", "clear"}


def test_postgis_agrees_with_the_engine_on_polygon_checks(
    postgis: PostgisPath, polygon_cases: list[Case], theatre: Theatre
) -> None:
    theirs, edge = _compare(postgis, polygon_cases, theatre)
    differ = _report("PostGIS polygons", polygon_cases, theirs, edge, assets_only=False)
    assert not differ, "\n".join(differ[:20])
    assert len(edge) <= MAX_BORDERLINE_SHARE * len(polygon_cases)


def test_postgis_finds_the_same_gaps(postgis: PostgisPath, point_cases: list[Case], theatre: Theatre) -> None:
    """Beyond the status: the same parties are named for the same reasons (lapsed AOR, stale unit, no AOR)."""
    differ = []
    for c in point_cases:
        theirs = postgis.check(c.query, theatre.now, c.buffer_m)
        if theirs.gap_reasons != c.ours.gap_reasons and not borderline(postgis, c.query, theatre.now, c.buffer_m):
            differ.append(f"{c.query.geometry.wkt}: ours {sorted(c.ours.gap_reasons)}, theirs {sorted(theirs.gap_reasons)}")
    assert not differ, "\n".join(differ[:20])


def test_postgis_sees_territory_nobody_vouches_for(theatre: Theatre) -> None:
    """``no_aor``: the theatre's AORs cover its territories, so a territory without AORs is loaded apart."""
    bare = replace(theatre, aors=[a for a in theatre.aors if a.party != "east"])
    query = CheckQuery("west", CheckKind.FIRES, Point(39.999, 30.5), Window(theatre.now, theatre.now))
    picture = bare.picture()
    ours = ours_answer(check(picture, query, theatre.now, 1500.0))
    with PostgisServer() as server:
        path = PostgisPath(server)
        try:
            path.load(bare)
            theirs = path.check(query, theatre.now, 1500.0)
            inside_own = path.check(replace(query, asker="east"), theatre.now, 1500.0)
        finally:
            path.close()
    assert ("east", "no_aor") in ours.gap_reasons
    assert theirs.gap_reasons == ours.gap_reasons
    assert ("east", "no_aor") not in inside_own.gap_reasons  # one's own territory is not a gap


def _moved_here(path: PostgisPath | RedisPath, theatre: Theatre, index: int, uncertainty_m: float) -> None:
    """A report moves an asset 0.3° north, with ``uncertainty_m``: a check there sees it, and not once it is back."""
    report = theatre.reports[index]
    key = (report.party, report.asset)
    far = LatLon(report.point.lat + 0.3, report.point.lon)
    # Asked from uncertainty + 100 m away, with a 200 m buffer: inside only if the uncertainty counts.
    away = LatLon(far.lat + (uncertainty_m + 100) / 110_574, far.lon)
    query = CheckQuery("west", CheckKind.GROUND, Point(away.lon, away.lat), Window(theatre.now, theatre.now))
    try:
        assert path.report_batch([replace(report, point=far, uncertainty_m=uncertainty_m, stale_at=None)]) == 1
        assert key in path.check(query, theatre.now, 200.0).asset_ids
    finally:
        path.report_batch([report])
    assert key not in path.check(query, theatre.now, 200.0).asset_ids


def test_postgis_report_batch_moves_assets(postgis: PostgisPath, theatre: Theatre) -> None:
    _moved_here(postgis, theatre, 1, uncertainty_m=10.0)
    _moved_here(postgis, theatre, 1, uncertainty_m=5000.0)  # beyond any in the theatre: the search bound grows
    with pytest.raises(ValueError, match="unknown asset"):
        postgis.report_batch([replace(theatre.reports[1], asset="no-such-asset")])


# ---------------------------------------------------------------------------- Redis


def test_redis_agrees_with_the_engine_on_asset_conflicts(
    redis_path: RedisPath, point_cases: list[Case], theatre: Theatre
) -> None:
    theirs, edge = _compare(redis_path, point_cases, theatre)
    differ = _report("Redis points (assets only)", point_cases, theirs, edge, assets_only=True)
    assert not differ, "\n".join(differ[:20])
    assert len(edge) <= MAX_BORDERLINE_SHARE * len(point_cases)
    assert RedisPath.answers_zones_and_gaps is False and PostgisPath.answers_zones_and_gaps is True


def test_redis_area_checks_are_conservative(redis_path: RedisPath, polygon_cases: list[Case], theatre: Theatre) -> None:
    """An area is asked as the circle around it: Redis may add conflicts, but never misses one of ours."""
    theirs, edge = _compare(redis_path, polygon_cases, theatre)
    _report("Redis polygons (assets only, as circles)", polygon_cases, theirs, edge, assets_only=True)
    edge_ids = {id(c) for c in edge}
    missed = [
        c for c, a in zip(polygon_cases, theirs, strict=True) if id(c) not in edge_ids and not c.ours.asset_ids <= a.asset_ids
    ]
    assert not missed


def test_redis_report_batch_moves_assets(redis_path: RedisPath, theatre: Theatre) -> None:
    _moved_here(redis_path, theatre, 2, uncertainty_m=10.0)
    _moved_here(redis_path, theatre, 2, uncertainty_m=5000.0)


def test_a_second_redis_client_searches_as_wide_as_the_loader(
    redis_path: RedisPath, point_cases: list[Case], theatre: Theatre
) -> None:
    """The harness opens one path per thread on a loaded server: each must answer as the loader does."""
    with RedisPath(redis_path.server) as other:
        for c in point_cases:
            assert other.check(c.query, theatre.now, c.buffer_m) == redis_path.check(c.query, theatre.now, c.buffer_m)


def test_redis_is_durable() -> None:
    """The ingest figure is that of a durable store: every write fsynced before it is acknowledged."""
    with RedisServer() as server, server.client(decode_responses=True) as client:
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "always"


# ---------------------------------------------------------------------------- servers and answers


def test_servers_leave_nothing_behind() -> None:
    with PostgisServer() as pg, RedisServer() as rs:
        dirs = [Path(d) for d in (pg._dir, rs._dir) if d is not None]
        ports = [pg.port, rs.port]
        assert all(d.exists() for d in dirs)
    assert not any(d.exists() for d in dirs)
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on {port}"


def test_a_failed_start_cleans_up() -> None:
    server = PostgisServer(settings={"shared_buffers": "not-a-size"})
    with pytest.raises(RuntimeError, match="did not start"), server:
        pass
    assert server._dir is None


def test_answers_and_agreement() -> None:
    a = make_answer([("west", "a1")], [("east", "z1")], [("east", "aor_lapsed")])
    assert a.status == "conflict" and a.conflict_parties == {"west", "east"} and a.asset_status == "conflict"
    stale = make_answer([], [], [("west", "stale_asset")])
    assert stale.status == "unknown" and stale.asset_status == "unknown"
    zone_only = make_answer([], [("east", "z1")], [])
    assert zone_only.status == "conflict" and zone_only.asset_status == "clear"
    clear = make_answer([], [], [])
    assert agreement([a, zone_only], [a, clear], assets_only=False) == 0.5
    assert agreement([a, zone_only], [a, clear], assets_only=True) == 1.0
    with pytest.raises(ValueError):
        agreement([a], [], assets_only=False)
    with pytest.raises(ValueError):
        agreement([], [], assets_only=False)


def test_stale_units_are_gaps_for_every_path(postgis: PostgisPath, redis_path: RedisPath, theatre: Theatre) -> None:
    """A report gone stale a second ago turns its unit from a conflict into a gap, in every path."""
    report = next(r for r in theatre.reports if r.stale_at is not None and r.stale_at > theatre.now)
    assert report.stale_at is not None
    point = Point(report.point.lon, report.point.lat)
    for now in (report.stale_at - timedelta(seconds=1), report.stale_at + timedelta(seconds=1)):
        query = CheckQuery("west", CheckKind.GROUND, point, Window(now, now))
        ours = ours_answer(check(theatre.picture(), query, now, 200.0))
        stale = now > report.stale_at
        assert ((report.party, report.asset) in ours.asset_ids) is not stale
        assert ((report.party, "stale_asset") in ours.gap_reasons) is stale
        for path in (postgis, redis_path):
            theirs = path.check(query, now, 200.0)
            assert theirs.asset_ids == ours.asset_ids
            assert ((report.party, "stale_asset") in theirs.gap_reasons) is stale
