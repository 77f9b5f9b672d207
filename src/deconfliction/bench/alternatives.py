"""The same checks answered by PostGIS and by Redis GEOSEARCH, to compare with our engine.

``deconflict bench`` loads one synthetic theatre (:mod:`deconfliction.bench.theatre`) into
each system and asks each the same checks. For the comparison to mean anything, each path
must answer the *same question*: :class:`PostgisPath` applies every rule of docs/rules.md
in one SQL round trip; :class:`RedisPath` answers only the asset part (Redis has no
polygons), and says so with ``answers_zones_and_gaps = False``.

Both servers are throwaway processes on loopback ports in temporary directories, started
and stopped by the context managers here; every wait is bounded.

Answers are compared as :class:`Answer` values: the status, and who and what is in
conflict. Distances differ slightly between the systems (our engine measures on a local
plane and widens every buffer by at least 0.5 %; PostGIS measures on the ellipsoid; Redis
on a sphere), so an object lying within about 1 % of the buffer's edge may be inside for
one and outside for another: :func:`borderline` finds those checks, so that a comparison
can count them apart instead of calling them disagreements.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, cast

import psycopg
import redis
import shapely
from redis.typing import EncodableT, FieldT
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from deconfliction.bench.ours import free_port
from deconfliction.bench.servers import (
    START_TIMEOUT_S,
    PostgisServer,
    stop_process,
    tail,
)
from deconfliction.bench.theatre import Theatre
from deconfliction.geo import LatLon, geodesic_m
from deconfliction.model import AssetKind, CheckQuery, CheckResult, Report, Status

# ---------------------------------------------------------------------------- answers

ASSET_OBJECTS = frozenset(kind.value for kind in AssetKind)
"""The ``Finding.object`` values that are assets (the others are zone kinds)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a check found, reduced to what every path can be compared on.

    ``asset_ids`` is the asset part of ``conflict_ids``, so that a path that knows only
    assets (Redis) can be compared on that part alone.
    """

    status: str
    conflict_parties: frozenset[str]
    conflict_ids: frozenset[tuple[str, str]]
    gap_reasons: frozenset[tuple[str, str]]
    asset_ids: frozenset[tuple[str, str]] = frozenset()

    @property
    def asset_status(self) -> str:
        """The status the assets alone give: an asset conflict, else a stale unit, else clear."""
        if self.asset_ids:
            return Status.CONFLICT.value
        if any(reason == "stale_asset" for _, reason in self.gap_reasons):
            return Status.UNKNOWN.value
        return Status.CLEAR.value


def make_answer(assets: Iterable[tuple[str, str]], zones: Iterable[tuple[str, str]], gaps: Iterable[tuple[str, str]]) -> Answer:
    """An answer from its findings; the status follows docs/rules.md: conflict > unknown > clear."""
    asset_ids, gap_reasons = frozenset(assets), frozenset(gaps)
    conflict_ids = asset_ids | frozenset(zones)
    status = Status.CONFLICT if conflict_ids else Status.UNKNOWN if gap_reasons else Status.CLEAR
    return Answer(
        status=status.value,
        conflict_parties=frozenset(party for party, _ in conflict_ids),
        conflict_ids=conflict_ids,
        gap_reasons=gap_reasons,
        asset_ids=asset_ids,
    )


def ours_answer(result: CheckResult) -> Answer:
    """Our engine's :class:`CheckResult` as an :class:`Answer`, for the harness and the tests alike."""
    answer = make_answer(
        assets=[(f.party, f.id) for f in result.conflicts if f.object in ASSET_OBJECTS],
        zones=[(f.party, f.id) for f in result.conflicts if f.object not in ASSET_OBJECTS],
        gaps=[(g.party, g.reason) for g in result.gaps],
    )
    # The engine decided the status itself; keep its word rather than our re-derivation.
    return replace(answer, status=result.status.value)


def agreement(ours: list[Answer], theirs: list[Answer], *, assets_only: bool) -> float:
    """The share of checks where both give the same status and the same conflict ids.

    With ``assets_only``, only the asset part is compared (the status the assets alone
    give, and the assets in conflict), for a path that knows nothing else.
    """
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} answers of ours against {len(theirs)} of theirs: not the same checks")
    if not ours:
        raise ValueError("no checks to compare")  # a share of nothing would hide a broken harness
    same = sum(_same(a, b, assets_only=assets_only) for a, b in zip(ours, theirs, strict=True))
    return same / len(ours)


def _same(a: Answer, b: Answer, *, assets_only: bool) -> bool:
    if assets_only:
        return a.asset_status == b.asset_status and a.asset_ids == b.asset_ids
    return a.status == b.status and a.conflict_ids == b.conflict_ids


class CheckPath(Protocol):
    def check(self, query: CheckQuery, now: datetime, buffer_m: float) -> Answer: ...


BORDERLINE_MARGIN = 0.01
"""How near the buffer's edge (as a share of radius plus buffer) an object makes a check borderline."""


def borderline(path: CheckPath, query: CheckQuery, now: datetime, buffer_m: float, margin: float = BORDERLINE_MARGIN) -> bool:
    """Whether something lies within ``margin`` of the buffer's edge, as ``path`` measures.

    Every rule is monotonic in the buffer (a larger buffer only adds conflicts and gaps),
    so the answer is the same anywhere between 99 % and 101 % of the reach exactly when
    nothing lies in that ring. Two more checks, and no distances leave the path.
    """
    reach = query.radius_m + buffer_m
    inner = path.check(query, now, reach * (1 - margin) - query.radius_m)
    outer = path.check(query, now, reach * (1 + margin) - query.radius_m)
    return inner != outer


# ---------------------------------------------------------------------------- PostGIS path

SEGMENT_DEG = 0.01
"""Longest edge kept in stored shapes, in degrees.

Our engine reads a shape's edges as straight lines in longitude/latitude (that is how the
shapes are drawn and how shapely and the local plane treat them); geography reads an edge
as a great-circle arc. A one-degree edge along a parallel bulges about 100 m poleward at
30°, enough to change answers; at 0.01° (about 1 km) the bulge is about 1 cm.
"""

TILE_DEG = 0.25
"""Large shapes (territories, AORs) are stored cut into tiles of this many degrees, the usual
PostGIS practice for large polygons: a check then reads the few small pieces near it, as our
engine cuts large shapes to the box around the buffer. ST_Subdivide does not serve here: it
counts vertices, and a densified rectangle cut by a rectangle loses its collinear vertices,
so it stops cutting at a few huge pieces."""

WIDE_UNCERTAINTY_M = 500.0
"""Positions less certain than this are searched with their own bound, as our engine keeps
them out of its cells: a few very uncertain positions should not widen every search."""

_SCHEMA = """
DROP TABLE IF EXISTS assets, zones, aors, territories, bounds CASCADE;
CREATE TABLE assets (
    party text NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,                    -- unit or site
    disclosure text NOT NULL,
    geog geography(Point, 4326),           -- null: never reported, so never located
    uncertainty_m float8,
    stale_at timestamptz,                  -- null for a site: it holds until moved
    PRIMARY KEY (party, id)
);
CREATE TABLE zones (
    party text NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    geog geography NOT NULL,               -- a route's centre line
    width_m float8 NOT NULL,
    "window" tstzrange,                    -- closed; null: always
    alt_low float8,                        -- null: any height
    alt_high float8,
    disclosure text NOT NULL,
    PRIMARY KEY (party, id)
);
CREATE TABLE aors (                        -- one row per piece of an AOR
    party text NOT NULL,
    id text NOT NULL,
    geog geography NOT NULL,
    confirmed_at timestamptz,              -- null: never confirmed, lapsed from the start
    freshness_s float8 NOT NULL
);
CREATE TABLE territories (                 -- one row per piece of a territory
    party text NOT NULL,
    geog geography NOT NULL
);
-- Bounds that turn per-row distances into one index search radius.
CREATE TABLE bounds (wide_uncertainty_m float8 NOT NULL, half_width_m float8 NOT NULL);
"""

_INDEXES = f"""
CREATE INDEX assets_narrow ON assets USING gist (geog) WHERE uncertainty_m <= {WIDE_UNCERTAINTY_M};
CREATE INDEX assets_wide ON assets USING gist (geog) WHERE uncertainty_m > {WIDE_UNCERTAINTY_M};
CREATE INDEX zones_geog ON zones USING gist (geog);
CREATE INDEX aors_geog ON aors USING gist (geog);
CREATE INDEX territories_geog ON territories USING gist (geog);
INSERT INTO bounds
SELECT coalesce((SELECT max(uncertainty_m) FROM assets WHERE uncertainty_m > {WIDE_UNCERTAINTY_M}), 0),
       coalesce((SELECT max(width_m) / 2 FROM zones), 0);
"""

# One check in one round trip. PL/pgSQL rather than SQL: its plans are cached for the
# session, where a SQL function's would be made again at every call.
_CHECK_FUNCTION = f"""
CREATE OR REPLACE FUNCTION deconfliction_check(
    p_wkb bytea, p_radius_m float8, p_buffer_m float8, p_kind text, p_asker text,
    p_start timestamptz, p_end timestamptz, p_alt_low float8, p_alt_high float8, p_now timestamptz)
RETURNS TABLE (hit_what text, hit_party text, hit_id text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v_geom geometry := ST_Segmentize(ST_GeomFromWKB(p_wkb, 4326), {SEGMENT_DEG});
    v_q geography := v_geom::geography;
    -- The buffer is measured from the edge of the position's circle or of the area.
    v_reach float8 := p_radius_m + p_buffer_m;
    v_ref geometry := CASE WHEN GeometryType(v_geom) = 'POINT' THEN v_geom ELSE ST_Centroid(v_geom) END;
    -- Coverage needs polygon arithmetic, which geography lacks: it is done in the UTM zone of
    -- the reference point, the projection geography's own ST_Buffer picks for a small area.
    v_srid int := CASE WHEN ST_Y(v_ref) >= 0 THEN 32600 ELSE 32700 END
                  + least(60, greatest(1, floor((ST_X(v_ref) + 180) / 6)::int + 1));
    v_wide float8;
    v_half float8;
BEGIN
    SELECT b.wide_uncertainty_m, b.half_width_m INTO v_wide, v_half FROM bounds b;
    RETURN QUERY
    WITH area AS (
        -- The buffered geometry, as our engine draws it (16 segments a quarter circle); made
        -- only when another party's territory is near (a scalar subquery runs on first use).
        SELECT ST_Buffer(ST_Transform(v_geom, v_srid), v_reach, 16) AS g
    ),
    near_assets AS (
        -- Distance minus uncertainty within the reach: the index finds candidates within
        -- reach + the largest uncertainty of their class, the second ST_DWithin is exact.
        -- A unit without a stale time never goes stale: without the IS NOT NULL, its NULL
        -- would drop it from both the conflicts and the gaps.
        SELECT a.party, a.id, (a.kind = 'unit' AND a.stale_at IS NOT NULL AND a.stale_at <= p_now) AS stale
        FROM assets a
        WHERE a.uncertainty_m <= {WIDE_UNCERTAINTY_M}
          AND ST_DWithin(a.geog, v_q, v_reach + {WIDE_UNCERTAINTY_M})
          AND ST_DWithin(a.geog, v_q, v_reach + a.uncertainty_m)
        UNION ALL
        SELECT a.party, a.id, (a.kind = 'unit' AND a.stale_at IS NOT NULL AND a.stale_at <= p_now)
        FROM assets a
        WHERE a.uncertainty_m > {WIDE_UNCERTAINTY_M}
          AND ST_DWithin(a.geog, v_q, v_reach + v_wide)
          AND ST_DWithin(a.geog, v_q, v_reach + a.uncertainty_m)
    ),
    zone_hits AS (
        -- Zones this kind keeps clear of, active in the window and the band, within the
        -- reach (a route's from its centre line plus half its width).
        SELECT z.party, z.id
        FROM zones z
        WHERE ST_DWithin(z.geog, v_q, v_reach + v_half)
          AND ST_DWithin(z.geog, v_q, v_reach + z.width_m / 2)
          AND (z.kind IN ('protected_area', 'route') OR (z.kind = 'no_fire_area' AND p_kind IN ('fires', 'air')))
          AND (z."window" IS NULL OR z."window" && tstzrange(p_start, p_end, '[]'))
          AND (z.alt_low IS NULL OR p_alt_low IS NULL OR (z.alt_low <= p_alt_high AND p_alt_low <= z.alt_high))
    ),
    aor_near AS (
        -- AOR pieces touching the buffered geometry; lapsed when never confirmed or when
        -- the last confirmation plus the freshness is not after now.
        SELECT c.party, c.id, c.geog,
               (c.confirmed_at IS NULL OR c.confirmed_at + make_interval(secs => c.freshness_s) <= p_now) AS lapsed
        FROM aors c
        WHERE ST_DWithin(c.geog, v_q, v_reach)
    ),
    uncovered AS (
        -- Another party's territory inside the buffered geometry, less all that party's
        -- AORs (lapsed ones too: those are gaps of their own), larger than 1 m2.
        SELECT t.party
        FROM territories t
        WHERE t.party <> p_asker AND ST_DWithin(t.geog, v_q, v_reach)
        GROUP BY t.party
        HAVING ST_Area(ST_Difference(
            ST_Union(ST_Intersection(ST_Transform(t.geog::geometry, v_srid), (SELECT g FROM area))),
            (SELECT coalesce(ST_Union(ST_Transform(c.geog::geometry, v_srid)), ST_SetSRID('POLYGON EMPTY'::geometry, v_srid))
             FROM aor_near c WHERE c.party = t.party)
        )) > 1.0
    )
    SELECT 'asset'::text, n.party, n.id FROM near_assets n WHERE NOT n.stale
    UNION ALL SELECT 'zone'::text, h.party, h.id FROM zone_hits h
    UNION ALL SELECT 'stale_asset'::text, n.party, n.id FROM near_assets n WHERE n.stale
    UNION ALL SELECT DISTINCT 'aor_lapsed'::text, c.party, c.id FROM aor_near c WHERE c.lapsed
    UNION ALL SELECT 'no_aor'::text, u.party, NULL::text FROM uncovered u;
END
$fn$;
"""

# A session's staging table for reports, emptied at every commit.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS reports_in (
    party text, id text, geog geography(Point, 4326), uncertainty_m float8, stale_at timestamptz
) ON COMMIT DELETE ROWS;
"""

_CHECK_SQL = "SELECT hit_what, hit_party, hit_id FROM deconfliction_check(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _hex_ewkb(geoms: Sequence[BaseGeometry]) -> list[str]:
    """Shapes as hex EWKB with SRID 4326, which geography columns read in COPY, in one vectorised call."""
    with_srid = shapely.set_srid(shapely.segmentize(list(geoms), SEGMENT_DEG), 4326)
    return [str(h) for h in shapely.to_wkb(with_srid, hex=True, include_srid=True)]


def _latest(reports: Iterable[Report]) -> dict[tuple[str, str], Report]:
    """The last report of each asset: the last write wins, as in the engine's picture."""
    return {(r.party, r.asset): r for r in reports}


class PostgisPath:
    """Checks answered by PostGIS with the rules of docs/rules.md, one SQL round trip each.

    Distances are geodesic (geography on the WGS 84 ellipsoid); the coverage arithmetic is
    done in the UTM zone of the check. Stored shapes are densified (:data:`SEGMENT_DEG`)
    so that PostGIS reads them as the same shapes our engine does.
    """

    answers_zones_and_gaps = True

    def __init__(self, server: PostgisServer | str) -> None:
        dsn = server if isinstance(server, str) else server.dsn
        self._conn = psycopg.connect(dsn, autocommit=True)
        # Each connection stages its own reports (a temporary table is the session's own).
        self._conn.execute(_STAGING)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def load(self, theatre: Theatre) -> float:
        """Create the tables, COPY the theatre in, index and ANALYZE; the seconds it took."""
        started = time.perf_counter()
        with self._conn.transaction():
            self._conn.execute(_SCHEMA)
            self._copy_assets(theatre)
            self._copy_zones(theatre)
            self._copy_areas(theatre)
            self._conn.execute(_INDEXES)
            self._conn.execute(_CHECK_FUNCTION)
        self._conn.execute("ANALYZE assets, zones, aors, territories, bounds")
        return time.perf_counter() - started

    def _copy_assets(self, theatre: Theatre) -> None:
        reports = _latest(theatre.reports)
        located = [reports[a.key] for a in theatre.assets if a.key in reports]
        points = iter(_hex_ewkb([Point(r.point.lon, r.point.lat) for r in located]))
        with (
            self._conn.cursor() as cur,
            cur.copy("COPY assets (party, id, kind, disclosure, geog, uncertainty_m, stale_at) FROM STDIN") as copy,
        ):
            for asset in theatre.assets:
                r = reports.get(asset.key)
                geog, uncertainty, stale_at = (next(points), r.uncertainty_m, r.stale_at) if r else (None, None, None)
                copy.write_row((asset.party, asset.id, asset.kind.value, asset.disclosure.value, geog, uncertainty, stale_at))

    def _copy_zones(self, theatre: Theatre) -> None:
        shapes = _hex_ewkb([z.geometry for z in theatre.zones])
        with (
            self._conn.cursor() as cur,
            cur.copy('COPY zones (party, id, kind, geog, width_m, "window", alt_low, alt_high, disclosure) FROM STDIN') as copy,
        ):
            for zone, shape in zip(theatre.zones, shapes, strict=True):
                window = None if zone.window is None else f"[{zone.window.start.isoformat()},{zone.window.end.isoformat()}]"
                low, high = (None, None) if zone.altitude is None else (zone.altitude.low_m, zone.altitude.high_m)
                copy.write_row(
                    (zone.party, zone.id, zone.kind.value, shape, zone.width_m, window, low, high, zone.disclosure.value)
                )

    def _copy_areas(self, theatre: Theatre) -> None:
        """AORs and territories, densified and cut into tiles (:data:`TILE_DEG`)."""
        self._conn.execute(
            "CREATE TEMP TABLE areas_in (party text, id text, geom geometry, confirmed_at timestamptz, freshness_s float8)"
            " ON COMMIT DROP"
        )
        rows: list[tuple[str, str | None, BaseGeometry, datetime | None, float | None]]
        rows = [(a.party, a.id, a.geometry, a.confirmed_at, a.freshness_s) for a in theatre.aors]
        rows += [(t.party, None, t.geometry, None, None) for t in theatre.territories]
        shapes = _hex_ewkb([row[2] for row in rows])
        with self._conn.cursor() as cur, cur.copy("COPY areas_in FROM STDIN") as copy:
            for (party, id_, _, confirmed_at, freshness_s), shape in zip(rows, shapes, strict=True):
                copy.write_row((party, id_, shape, confirmed_at, freshness_s))
        # The tiles' edges are new, long edges: densified again.
        tiles = f"""
            SELECT a.*, ST_Segmentize(ST_CollectionExtract(ST_Intersection(a.geom, tile.geom), 3), {SEGMENT_DEG}) AS piece
            FROM areas_in a, ST_SquareGrid({TILE_DEG}, a.geom) AS tile
            WHERE ST_Intersects(a.geom, tile.geom)
        """
        self._conn.execute(
            f"INSERT INTO aors SELECT party, id, piece::geography, confirmed_at, freshness_s FROM ({tiles}) t"
            " WHERE id IS NOT NULL AND NOT ST_IsEmpty(piece)"
        )
        self._conn.execute(
            f"INSERT INTO territories SELECT party, piece::geography FROM ({tiles}) t WHERE id IS NULL AND NOT ST_IsEmpty(piece)"
        )

    def check(self, query: CheckQuery, now: datetime, buffer_m: float) -> Answer:
        """One check, one round trip: the function made at load applies every rule."""
        alt = query.altitude
        rows = self._conn.execute(
            _CHECK_SQL,
            (
                shapely.to_wkb(query.geometry),
                query.radius_m,
                buffer_m,
                query.kind.value,
                query.asker,
                query.window.start,
                query.window.end,
                None if alt is None else alt.low_m,
                None if alt is None else alt.high_m,
                now,
            ),
            prepare=True,
        ).fetchall()
        return make_answer(
            assets=[(p, i) for what, p, i in rows if what == "asset"],
            zones=[(p, i) for what, p, i in rows if what == "zone"],
            gaps=[(p, what) for what, p, _ in rows if what not in ("asset", "zone")],
        )

    def report_batch(self, reports: Sequence[Report]) -> int:
        """Move known assets to new positions, durably, in one transaction; the rows moved.

        COPY into a staging table, then one UPDATE: the fastest way into PostgreSQL for a
        batch. The service accepts reports for known assets only, so every key must exist.
        """
        latest = _latest(reports)
        shapes = _hex_ewkb([Point(r.point.lon, r.point.lat) for r in latest.values()])
        with self._conn.transaction():
            with self._conn.cursor() as cur, cur.copy("COPY reports_in FROM STDIN") as copy:
                for r, shape in zip(latest.values(), shapes, strict=True):
                    copy.write_row((r.party, r.asset, shape, r.uncertainty_m, r.stale_at))
            moved = self._conn.execute(
                "UPDATE assets a SET geog = s.geog, uncertainty_m = s.uncertainty_m, stale_at = s.stale_at"
                " FROM reports_in s WHERE a.party = s.party AND a.id = s.id"
            ).rowcount
            if moved != len(latest):
                raise ValueError(f"{len(latest) - moved} of {len(latest)} reports name an unknown asset")
            # Only a batch with a less certain position than ever touches (and locks) the bounds.
            self._conn.execute(
                "UPDATE bounds SET wide_uncertainty_m = s.most FROM (SELECT max(uncertainty_m) AS most FROM reports_in) s"
                " WHERE s.most > bounds.wide_uncertainty_m"
            )
        return int(moved)


# ---------------------------------------------------------------------------- Redis server


class RedisServer:
    """A throwaway redis-server on a free loopback port, in a temporary directory.

    Durable like our store and PostgreSQL: ``--appendonly yes --appendfsync always`` makes
    every write reach the disk before it is acknowledged. ``--save "" --appendonly no``
    would make Redis's ingest figure that of a cache that loses everything in a crash,
    which is not the same service.
    """

    def __init__(self, *, attempts: int = 3) -> None:
        self.attempts = attempts
        self.port = 0
        self.password = secrets.token_urlsafe(24)
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix="deconfliction-redis-"))
        try:
            for attempt in range(self.attempts):
                if self._start():
                    break
                if attempt == self.attempts - 1:
                    raise RuntimeError(f"redis-server did not start:\n{tail(self._dir / 'redis.log')}")
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._cleanup()

    def client(self, **options: Any) -> redis.Redis:
        """A client of this server; every call bounded in time unless ``options`` say otherwise."""
        settings: dict[str, Any] = {"socket_timeout": 30, "socket_connect_timeout": 10, **options}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **settings)

    def _start(self) -> bool:
        """Start on a free port and wait, bounded, until it answers; False if it lost the port."""
        assert self._dir is not None
        self.port = free_port()
        config = self._dir / "redis.conf"
        # The password in a file rather than on the command line, where ps would show it.
        config.write_text(f"requirepass {self.password}\n")
        config.chmod(0o600)
        user = _redis_user()
        if user is not None:
            for path in (self._dir, config):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._proc = subprocess.Popen(
            ["redis-server", str(config),
             "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--daemonize", "no", "--logfile", str(self._dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            user=None if user is None else user.pw_uid, group=None if user is None else user.pw_gid,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        with self.client(socket_timeout=1) as probe:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    self._proc.wait()
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if probe.ping():
                        return True
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S:g} s")

    def _cleanup(self) -> None:
        try:
            if self._proc is not None:
                stop_process(self._proc)  # SIGTERM: Redis flushes its append-only file and exits
                self._proc = None
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None


def _redis_user() -> pwd.struct_passwd | None:
    """As root, the server runs as Debian's ``redis`` user (set directly, no runuser in between,
    so that our SIGTERM reaches redis-server itself); otherwise as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("redis")
    except KeyError:
        return None


# ---------------------------------------------------------------------------- Redis path

GEO_KEY = "positions"
MAX_UNCERTAINTY_KEY = "max_uncertainty_m"
BATCH = 10_000
"""Commands per pipelined batch while loading: large enough to hide round trips, small enough for memory."""


def _member(party: str, id_: str) -> str:
    return f"{party}/{id_}"  # ids are [a-z0-9._-], so '/' cannot be part of one


def _disc(geometry: BaseGeometry) -> tuple[float, float, float]:
    """The circle Redis can search with: a point itself, or an area's centroid and circumradius.

    Redis searches circles and boxes only. A polygon becomes the smallest circle about its
    centroid that holds it, which holds more than the polygon: Redis's answer to an area
    check is conservative (it may add conflicts near the corners, never miss one).
    """
    if isinstance(geometry, Point):
        return geometry.x, geometry.y, 0.0
    centre = geometry.centroid
    origin = LatLon(centre.y, centre.x)
    corners = shapely.get_coordinates(geometry.convex_hull)
    radius = max(geodesic_m(origin, LatLon(lat, lon)) for lon, lat in corners)
    return centre.x, centre.y, radius


class RedisPath:
    """Asset checks answered by Redis: GEOSEARCH, then one pipelined HMGET round.

    Redis answers only the asset part of a check: the conflicts of assets (distance minus
    uncertainty within the buffer) and stale units as gaps. It has no polygons, so no
    zones, no AORs, no territories and no coverage gaps; an area check is asked as the
    circle around the area (see :func:`_disc`). Distances are Redis's own, on a sphere of
    radius 6,372,797.56 m: within about 0.4 % of the ellipsoid's at these latitudes.
    """

    answers_zones_and_gaps = False

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self._r = server.client(decode_responses=True)
        # A client opened on a loaded server (one per thread, say) must search as wide as the loader.
        self._max_uncertainty_m = float(cast(str | None, self._r.get(MAX_UNCERTAINTY_KEY)) or 0.0)

    def close(self) -> None:
        self._r.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def load(self, theatre: Theatre) -> float:
        """GEOADD every position under one key and a hash per asset, in pipelined batches; the seconds it took."""
        started = time.perf_counter()
        self._r.flushdb()
        kinds = {a.key: a.kind.value for a in theatre.assets}
        self._write(list(_latest(theatre.reports).values()), kinds)
        return time.perf_counter() - started

    def _write(self, reports: Sequence[Report], kinds: dict[tuple[str, str], str] | None, *, atomic: bool = False) -> None:
        """GEOADD and HSET per report; ``atomic`` sends all in one MULTI/EXEC, else in batches."""
        batch = max(1, len(reports)) if atomic else BATCH
        for start in range(0, len(reports), batch):
            pipe = self._r.pipeline(transaction=atomic)
            for r in reports[start : start + batch]:
                member = _member(r.party, r.asset)
                pipe.geoadd(GEO_KEY, (r.point.lon, r.point.lat, member))
                fields: dict[FieldT, EncodableT] = {
                    "u": r.uncertainty_m,
                    "s": "" if r.stale_at is None else r.stale_at.timestamp(),
                }
                if kinds is not None:
                    fields["k"] = kinds[(r.party, r.asset)]
                pipe.hset(f"a:{member}", mapping=fields)
            pipe.execute()
        if reports:
            # The search radius must reach the least certain position: kept in Redis for
            # other clients, and here so that a check needs no extra round trip for it.
            self._max_uncertainty_m = max(self._max_uncertainty_m, *(r.uncertainty_m for r in reports))
            self._r.set(MAX_UNCERTAINTY_KEY, self._max_uncertainty_m)

    def report_batch(self, reports: Sequence[Report]) -> int:
        """Move known assets, in one MULTI/EXEC (with appendfsync always, durable when answered).

        Redis has no constraints: unlike PostgreSQL, it does not refuse a report for an
        unknown asset, and checking would cost another round trip; the benchmark's reports
        are all for known assets.
        """
        latest = list(_latest(reports).values())
        self._write(latest, None, atomic=True)
        return len(latest)

    def check(self, query: CheckQuery, now: datetime, buffer_m: float) -> Answer:
        """The asset part of a check, in two round trips; zones and coverage are not answered."""
        lon, lat, circumradius = _disc(query.geometry)
        reach = circumradius + query.radius_m + buffer_m
        hits = cast(
            list[tuple[str, float]],
            self._r.geosearch(
                GEO_KEY, longitude=lon, latitude=lat, radius=reach + self._max_uncertainty_m, unit="m", sort="ASC", withdist=True
            ),
        )
        if not hits:
            return make_answer((), (), ())
        pipe = self._r.pipeline(transaction=False)
        for member, _ in hits:
            pipe.hmget(f"a:{member}", "u", "s", "k")
        details = cast(list[tuple[str, str, str | None]], pipe.execute())
        stamp = now.timestamp()
        assets: list[tuple[str, str]] = []
        gaps: list[tuple[str, str]] = []
        for (member, distance), (uncertainty, stale_at, kind) in zip(hits, details, strict=True):
            if float(distance) - float(uncertainty) > reach:
                continue
            party, id_ = member.split("/", 1)
            if kind == AssetKind.UNIT.value and stale_at and float(stale_at) <= stamp:
                gaps.append((party, "stale_asset"))
            else:
                assets.append((party, id_))
        return make_answer(assets, (), gaps)
