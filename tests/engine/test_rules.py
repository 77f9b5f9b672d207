"""The check rules, one branch at a time, on the pure engine (no store, no HTTP).

The theatre: a border on the meridian 71.0 E, party "east" beyond it, party "west" before
it. Distances are chosen well away from the buffers' edges so that each test says one
thing; the edges themselves are tested at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point, box

from deconfliction.engine.picture import Picture
from deconfliction.engine.rules import UNCOVERED_AREA_M2, border, borders, check, search_area
from deconfliction.geo import PLANE_ORIGIN, SAFETY_FACTOR, LatLon
from deconfliction.model import (
    AltitudeBand,
    Aor,
    Asset,
    AssetKind,
    CheckKind,
    CheckQuery,
    Disclosure,
    Report,
    Status,
    Territory,
    Window,
    Zone,
    ZoneKind,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
GEOD = Geod(ellps="WGS84")
ORIGIN = LatLon(34.55, 70.95)  # 4.6 km west of the border, in west's territory


def offset(origin: LatLon, distance_m: float, azimuth: float = 90.0) -> LatLon:
    lon, lat, _ = GEOD.fwd(origin.lon, origin.lat, azimuth, distance_m)
    return LatLon(lat, lon)


@pytest.fixture
def picture() -> Picture:
    """Two parties, both territories wholly inside fresh AORs."""
    p = Picture()
    p.put_territory(Territory("east", box(71.0, 34.3, 71.3, 34.9)))
    p.put_territory(Territory("west", box(70.7, 34.3, 71.0, 34.9)))
    p.put_aor(Aor("east", "east-aor", box(71.0, 34.3, 71.3, 34.9), freshness_s=6 * 3600, confirmed_at=NOW - HOUR))
    p.put_aor(Aor("west", "west-aor", box(70.7, 34.3, 71.0, 34.9), freshness_s=6 * 3600, confirmed_at=NOW - HOUR))
    return p


def add_asset(
    p: Picture,
    party: str,
    asset_id: str,
    at: LatLon,
    *,
    kind: AssetKind = AssetKind.SITE,
    uncertainty_m: float = 0.0,
    stale_at: datetime | None = None,
    disclosure: Disclosure = Disclosure.EXACT,
) -> None:
    p.put_asset(Asset(party, asset_id, kind, asset_id, disclosure))
    p.put_report(Report(party, asset_id, at, NOW - HOUR, uncertainty_m, stale_at))


def ask(
    p: Picture,
    at: LatLon | None = None,
    kind: CheckKind = CheckKind.FIRES,
    *,
    asker: str = "west",
    area: object = None,
    radius_m: float = 0.0,
    window: Window | None = None,
    altitude: AltitudeBand | None = None,
    buffer_m: float = 1500.0,
):
    at = at or ORIGIN
    geometry = area if area is not None else Point(at.lon, at.lat)
    query = CheckQuery(asker, kind, geometry, window or Window(NOW, NOW), radius_m, altitude)  # type: ignore[arg-type]
    return check(p, query, NOW, buffer_m)


# ---------------------------------------------------------------- clear


def test_check_clear_when_nothing_near_and_every_picture_fresh(picture: Picture) -> None:
    add_asset(picture, "east", "far-post", offset(ORIGIN, 10_000))
    result = ask(picture)
    assert result.status is Status.CLEAR
    assert result.conflicts == () and result.gaps == ()


def test_check_clear_when_no_party_has_a_stake_in_the_area() -> None:
    """Nobody's territory and nobody's AOR: there is nobody whose silence could mislead."""
    assert ask(Picture()).status is Status.CLEAR


# ---------------------------------------------------------------- conflict: assets


@pytest.mark.parametrize(
    ("distance_m", "uncertainty_m", "status"),
    [
        pytest.param(1_000, 0, Status.CONFLICT, id="inside-buffer"),
        pytest.param(2_000, 0, Status.CLEAR, id="outside-buffer"),
        pytest.param(2_000, 600, Status.CONFLICT, id="uncertainty-reaches-into-buffer"),
        pytest.param(3_000, 2_500, Status.CONFLICT, id="wide-uncertainty-kept-outside-cells"),
    ],
)
def test_check_asset_distance_minus_uncertainty_counts(
    picture: Picture, distance_m: float, uncertainty_m: float, status: Status
) -> None:
    add_asset(picture, "west", "post", offset(ORIGIN, distance_m, azimuth=270), uncertainty_m=uncertainty_m)
    assert ask(picture).status is status


def test_check_conflict_names_party_and_distance(picture: Picture) -> None:
    add_asset(picture, "east", "volcano", offset(ORIGIN, 1_000, azimuth=0))
    (finding,) = ask(picture).conflicts
    assert (finding.party, finding.id, finding.object) == ("east", "volcano", "site")
    assert finding.distance_m == pytest.approx(1_000, abs=5)


def test_check_own_unit_is_a_conflict(picture: Picture) -> None:
    """Kandahar 2001: the target grid was the requester's own position."""
    add_asset(picture, "west", "tf-alpha", ORIGIN, kind=AssetKind.UNIT, stale_at=NOW + HOUR)
    result = ask(picture, asker="west")
    assert result.status is Status.CONFLICT
    assert [f.party for f in result.conflicts] == ["west"]


def test_check_hidden_asset_still_conflicts(picture: Picture) -> None:
    add_asset(picture, "east", "secret", offset(ORIGIN, 500), disclosure=Disclosure.HIDDEN)
    assert ask(picture).status is Status.CONFLICT


def test_check_radius_widens_the_checked_point(picture: Picture) -> None:
    add_asset(picture, "west", "post", offset(ORIGIN, 2_500, azimuth=180))
    assert ask(picture).status is Status.CLEAR
    assert ask(picture, radius_m=1_200).status is Status.CONFLICT


def test_check_area_measures_from_the_polygon_edge(picture: Picture) -> None:
    area = box(70.90, 34.50, 70.92, 34.52)
    add_asset(picture, "west", "post", LatLon(34.51, 70.93))  # ~900 m east of the box's edge
    assert ask(picture, area=area, kind=CheckKind.FIRES).status is Status.CONFLICT
    assert ask(picture, area=area, kind=CheckKind.GROUND, buffer_m=200).status is Status.CLEAR


@pytest.mark.parametrize(
    ("kind", "buffer_m", "distance_m", "status"),
    [
        pytest.param(CheckKind.FIRES, 1500, 1400, Status.CONFLICT, id="fires-1500"),
        pytest.param(CheckKind.AIR, 1000, 1400, Status.CLEAR, id="air-1000"),
        pytest.param(CheckKind.GROUND, 200, 150, Status.CONFLICT, id="ground-200"),
        pytest.param(CheckKind.OTHER, 100, 150, Status.CLEAR, id="other-100"),
    ],
)
def test_check_buffer_comes_from_the_kind(
    picture: Picture, kind: CheckKind, buffer_m: float, distance_m: float, status: Status
) -> None:
    add_asset(picture, "west", "post", offset(ORIGIN, distance_m))
    assert ask(picture, kind=kind, buffer_m=buffer_m).status is status


# ---------------------------------------------------------------- conflict: zones


@pytest.mark.parametrize(
    ("zone_kind", "check_kind", "status"),
    [
        pytest.param(ZoneKind.PROTECTED_AREA, CheckKind.GROUND, Status.CONFLICT, id="protected-any-kind"),
        pytest.param(ZoneKind.NO_FIRE_AREA, CheckKind.FIRES, Status.CONFLICT, id="nfa-fires"),
        pytest.param(ZoneKind.NO_FIRE_AREA, CheckKind.AIR, Status.CONFLICT, id="nfa-air"),
        pytest.param(ZoneKind.NO_FIRE_AREA, CheckKind.GROUND, Status.CLEAR, id="nfa-not-ground"),
        pytest.param(ZoneKind.OPERATING_AREA, CheckKind.FIRES, Status.CLEAR, id="operating-area-is-information"),
    ],
)
def test_check_zone_kinds(picture: Picture, zone_kind: ZoneKind, check_kind: CheckKind, status: Status) -> None:
    picture.put_zone(Zone("east", "z", zone_kind, box(70.94, 34.54, 70.96, 34.56)))
    assert ask(picture, kind=check_kind, buffer_m=200).status is status


def test_check_route_counts_with_its_width(picture: Picture) -> None:
    # A route running north-south 1.2 km east of the checked point.
    lon = offset(ORIGIN, 1_200).lon
    route = LineString([(lon, 34.50), (lon, 34.60)])
    picture.put_zone(Zone("relief", "convoy", ZoneKind.ROUTE, route, width_m=200))
    assert ask(picture, kind=CheckKind.GROUND, buffer_m=1_050).status is Status.CLEAR  # 1200 - 100 > 1050
    assert ask(picture, kind=CheckKind.GROUND, buffer_m=1_150).status is Status.CONFLICT


@pytest.mark.parametrize(
    ("zone_window", "status"),
    [
        pytest.param(Window(NOW - HOUR, NOW + HOUR), Status.CONFLICT, id="window-covers-now"),
        pytest.param(Window(NOW + 2 * HOUR, NOW + 3 * HOUR), Status.CLEAR, id="window-later"),
        pytest.param(None, Status.CONFLICT, id="no-window-always"),
    ],
)
def test_check_zone_window_must_overlap(picture: Picture, zone_window: Window | None, status: Status) -> None:
    picture.put_zone(Zone("east", "z", ZoneKind.PROTECTED_AREA, box(70.94, 34.54, 70.96, 34.56), window=zone_window))
    assert ask(picture).status is status


def test_check_altitude_bands_that_do_not_overlap_do_not_conflict(picture: Picture) -> None:
    picture.put_zone(Zone("east", "z", ZoneKind.PROTECTED_AREA, box(70.94, 34.54, 70.96, 34.56), altitude=AltitudeBand(0, 500)))
    assert ask(picture, kind=CheckKind.AIR, altitude=AltitudeBand(3_000, 4_000)).status is Status.CLEAR
    assert ask(picture, kind=CheckKind.AIR, altitude=AltitudeBand(400, 4_000)).status is Status.CONFLICT
    assert ask(picture, kind=CheckKind.AIR).status is Status.CONFLICT  # no band asked: assume any height


# ---------------------------------------------------------------- unknown


def test_check_unknown_when_an_aor_lapsed(picture: Picture) -> None:
    picture.confirm_aor(("west", "west-aor"), NOW - 7 * HOUR)
    result = ask(picture)
    assert result.status is Status.UNKNOWN
    (gap,) = result.gaps
    assert (gap.party, gap.reason, gap.aor) == ("west", "aor_lapsed", "west-aor")
    assert gap.since == NOW - HOUR


def test_check_unknown_when_an_aor_was_never_confirmed(picture: Picture) -> None:
    picture.put_aor(Aor("west", "new", box(70.9, 34.5, 71.0, 34.6), freshness_s=3600))
    result = ask(picture)
    assert result.status is Status.UNKNOWN
    assert [(g.aor, g.since) for g in result.gaps] == [("new", None)]


def test_check_unknown_in_another_partys_territory_outside_its_aors(picture: Picture) -> None:
    picture.withdraw_zone(("none", "none"))  # a no-op change: version still grows
    picture.put_aor(Aor("east", "east-aor", box(71.0, 34.3, 71.05, 34.9), 6 * 3600, NOW - HOUR))
    result = ask(picture, LatLon(34.6, 71.15))
    assert result.status is Status.UNKNOWN
    assert [(g.party, g.reason) for g in result.gaps] == [("east", "no_aor")]


def test_what_the_aors_leave_of_a_territory_follows_every_change_of_them_and_of_it() -> None:
    """Two of east's AORs meet at 71.15: a check across that edge is held by them together until one is redrawn
    short of it, and again once it is redrawn back; a territory grown past them leaves a gap too."""
    p = Picture()
    p.put_territory(Territory("east", box(71.0, 34.3, 71.3, 34.9)))
    p.put_aor(Aor("east", "a", box(71.0, 34.3, 71.15, 34.9), 6 * 3600, NOW - HOUR))
    p.put_aor(Aor("east", "b", box(71.15, 34.3, 71.3, 34.9), 6 * 3600, NOW - HOUR))
    across_the_edge, by_the_north_edge = LatLon(34.6, 71.15), LatLon(34.89, 71.2)
    assert ask(p, across_the_edge).status is Status.CLEAR
    p.put_aor(Aor("east", "b", box(71.16, 34.3, 71.3, 34.9), 6 * 3600, NOW - HOUR))
    assert [(g.party, g.reason) for g in ask(p, across_the_edge).gaps] == [("east", "no_aor")]
    p.put_aor(Aor("east", "b", box(71.15, 34.3, 71.3, 34.9), 6 * 3600, NOW - HOUR))
    assert ask(p, across_the_edge).status is Status.CLEAR
    assert ask(p, by_the_north_edge).status is Status.CLEAR
    p.put_territory(Territory("east", box(71.0, 34.3, 71.3, 35.0)))
    assert [(g.party, g.reason) for g in ask(p, by_the_north_edge).gaps] == [("east", "no_aor")]


def test_check_own_territory_without_aor_is_not_a_gap(picture: Picture) -> None:
    picture.put_aor(Aor("west", "west-aor", box(70.7, 34.3, 70.8, 34.4), 6 * 3600, NOW - HOUR))
    assert ask(picture, asker="west").status is Status.CLEAR
    assert ask(picture, asker="east").status is Status.UNKNOWN


def test_check_buffer_reaching_over_the_border_needs_the_other_side_fresh(picture: Picture) -> None:
    near_border = offset(LatLon(34.55, 71.0), 1_000, azimuth=270)  # 1 km west of the border
    picture.confirm_aor(("east", "east-aor"), NOW - 7 * HOUR)
    assert ask(picture, near_border, kind=CheckKind.GROUND, buffer_m=200).status is Status.CLEAR
    assert ask(picture, near_border, kind=CheckKind.FIRES).status is Status.UNKNOWN


def test_check_stale_unit_is_a_gap_not_a_conflict(picture: Picture) -> None:
    add_asset(picture, "east", "patrol", offset(ORIGIN, 800), kind=AssetKind.UNIT, stale_at=NOW - HOUR)
    result = ask(picture)
    assert result.status is Status.UNKNOWN
    (gap,) = result.gaps
    assert (gap.reason, gap.since, gap.asset.id if gap.asset else None) == ("stale_asset", NOW - HOUR, "patrol")


def test_check_site_never_goes_stale(picture: Picture) -> None:
    add_asset(picture, "east", "post", offset(ORIGIN, 800), kind=AssetKind.SITE, stale_at=None)
    assert ask(picture).status is Status.CONFLICT


def test_check_conflict_outranks_gaps_and_lists_both(picture: Picture) -> None:
    picture.confirm_aor(("west", "west-aor"), NOW - 7 * HOUR)
    add_asset(picture, "west", "post", offset(ORIGIN, 300))
    result = ask(picture)
    assert result.status is Status.CONFLICT
    assert [g.reason for g in result.gaps] == ["aor_lapsed"]


# ---------------------------------------------------------------- index and border


def test_check_finds_assets_after_they_move(picture: Picture) -> None:
    add_asset(picture, "east", "u", offset(ORIGIN, 800), kind=AssetKind.UNIT, stale_at=NOW + HOUR)
    assert ask(picture).status is Status.CONFLICT
    picture.put_report(Report("east", "u", offset(ORIGIN, 9_000), NOW, 0, NOW + HOUR))
    assert ask(picture).status is Status.CLEAR
    picture.withdraw_position(("east", "u"))
    assert len(picture.positions) == 0


def test_check_over_many_assets_finds_exactly_those_within_the_buffer(picture: Picture) -> None:
    """Against a brute-force answer: the index may not drop anything."""
    for i in range(400):
        add_asset(picture, "west", f"a{i}", offset(ORIGIN, 30 * i + 7, azimuth=(i * 37) % 360))
    found = {f.id for f in ask(picture).conflicts}
    # Inside the buffer: all found. Beyond the safety margin: none. Between: either.
    assert {f"a{i}" for i in range(400) if 30 * i + 7 <= 1500} <= found
    assert not found & {f"a{i}" for i in range(400) if 30 * i + 7 > 1500 * SAFETY_FACTOR}


def test_border_reads_territory_and_distance(picture: Picture) -> None:
    b = border(picture, LatLon(34.55, 71.01))
    assert b.territory == "east"
    assert b.distance_m == pytest.approx(917, abs=3)  # 0.01 degree of longitude at 34.55 N
    outside = border(picture, LatLon(34.55, 71.5))
    assert outside.territory is None and outside.distance_m == pytest.approx(18_340, rel=0.003)


def test_picture_version_grows_with_every_change() -> None:
    p = Picture()
    versions = [p.version]
    p.put_territory(Territory("east", box(71.0, 34.3, 71.3, 34.9)))
    versions.append(p.version)
    p.put_zone(Zone("east", "z", ZoneKind.PROTECTED_AREA, box(71.1, 34.5, 71.2, 34.6)))
    versions.append(p.version)
    assert versions == sorted(set(versions))


def test_border_distance_is_the_same_through_the_segment_tree() -> None:
    """A long, detailed border is searched through its segment tree; the answer must not change."""
    detailed = Picture()
    outline = box(71.0, 34.3, 71.3, 34.9).segmentize(0.0001)  # about 18,000 segments
    detailed.put_territory(Territory("east", outline))
    simple = Picture()
    simple.put_territory(Territory("east", box(71.0, 34.3, 71.3, 34.9)))
    for point in (LatLon(34.55, 71.01), LatLon(34.55, 70.5), LatLon(34.95, 71.1), LatLon(30.0, 71.1)):
        assert border(detailed, point) == border(simple, point)


def test_a_buffer_across_the_antimeridian_sees_the_other_side_s_territory_assets_and_zones() -> None:
    """West holds 179° E to 180°, east 180° to 179° W: a check 560 m west of the line reaches 900 m into east's side."""
    p = Picture()
    p.put_territory(Territory("west", box(179.0, -17.0, 180.0, -16.0)))
    p.put_territory(Territory("east", box(-180.0, -17.0, -179.0, -16.0)))
    p.put_aor(Aor("west", "west-aor", box(179.0, -17.0, 180.0, -16.0), freshness_s=6 * 3600, confirmed_at=NOW - HOUR))
    at = LatLon(-16.5, 179.99475)
    unknown = ask(p, at)
    assert unknown.status is Status.UNKNOWN and [(g.party, g.reason) for g in unknown.gaps] == [("east", "no_aor")]
    p.put_aor(Aor("east", "east-aor", box(-180.0, -17.0, -179.0, -16.0), freshness_s=6 * 3600, confirmed_at=NOW - HOUR))
    assert ask(p, at).status is Status.CLEAR, "east vouches for its side"
    add_asset(p, "east", "post", LatLon(-16.5, -179.9995))
    p.put_zone(Zone("east", "hospital", ZoneKind.PROTECTED_AREA, box(-179.999, -16.501, -179.998, -16.5)))
    conflict = ask(p, at)
    assert conflict.status is Status.CONFLICT and {f.id for f in conflict.conflicts} == {"post", "hospital"}
    across = [GEOD.inv(at.lon, at.lat, lon, -16.5)[2] for lon in (-179.9995, -179.999)]  # the post, the hospital's corner
    assert [f.distance_m for f in conflict.conflicts] == pytest.approx(across, rel=0.003)


def test_border_across_the_antimeridian_is_measured_across_it() -> None:
    """Islands either side of 180° (Fiji's lie so): the nearest shore is over the line, not the far one on this side."""
    parts = [box(179.3, -17.0, 179.6, -16.0), box(-179.99, -17.0, -179.0, -16.0)]
    point = LatLon(-16.5, 179.995)  # 0.015° west of the far part's west edge, 0.395° east of the near part's east edge
    expected = GEOD.inv(179.995, -16.5, -179.99, -16.5)[2]
    for outline in (shapely.MultiPolygon(parts), shapely.MultiPolygon(parts).segmentize(0.0001)):  # simple, and by its tree
        picture = Picture()
        picture.put_territory(Territory("east", outline))
        assert border(picture, point).distance_m == pytest.approx(expected, rel=0.003)
        batch = borders(picture, np.array([point.lat, point.lat]), np.array([point.lon, point.lon]))  # two: the arrays' path
        assert [b.distance_m for b in batch] == pytest.approx([expected, expected], rel=0.003)


@pytest.mark.parametrize("segmentize", [None, 0.0001], ids=["simple", "detailed"])
def test_border_of_one_point_is_what_a_batch_of_reports_reads_for_it(picture: Picture, segmentize: float | None) -> None:
    """A check reads its border alone, a batch of reports in arrays; in, out, between and far off, the same."""
    if segmentize:
        picture.put_territory(Territory("east", box(71.0, 34.3, 71.3, 34.9).segmentize(segmentize)))
    points = [LatLon(34.2 + 0.09 * i, 70.6 + 0.1 * j) for i in range(9) for j in range(9)] + [LatLon(-30.0, 10.0)]
    lat, lon = np.array([p.lat for p in points]), np.array([p.lon for p in points])
    assert [border(picture, p) for p in points] == borders(picture, lat, lon)
    assert {border(picture, p).territory for p in points} == {"west", "east", None}


@pytest.mark.parametrize("distance_m", [900, 1600], ids=["inside-buffer", "outside-buffer"])
def test_check_zone_of_many_vertices_is_measured_as_its_simple_twin(picture: Picture, distance_m: float) -> None:
    """A detailed zone is cut to the search box first; the answer must be the same."""
    edge = offset(ORIGIN, distance_m).lon
    simple = box(edge, 34.4, edge + 0.2, 34.7)
    detailed = simple.segmentize(0.001)  # about 1,000 vertices
    answers = []
    for geometry in (simple, detailed):
        p = Picture()
        p.put_zone(Zone("east", "z", ZoneKind.PROTECTED_AREA, geometry))
        answers.append([(f.id, round(f.distance_m)) for f in ask(p).conflicts])
    assert answers[0] == answers[1]
    assert bool(answers[0]) is (distance_m < 1500)


# ---------------------------------------------------------------- coverage against the plane's arithmetic

_EDGES = st.integers(0, 12).map(lambda i: round(70.94 + 0.01 * i, 2))  # coinciding edges are the point of the test
_LATS = st.integers(0, 12).map(lambda i: round(34.49 + 0.01 * i, 2))


@st.composite
def _aor_layouts(draw: st.DrawFn) -> list[Aor]:
    """Up to four of east's AORs near the border at 71.0, edge to edge or overlapping, some lapsed."""
    aors = []
    for i in range(draw(st.integers(0, 4))):
        west, east = sorted(draw(st.lists(_EDGES, min_size=2, max_size=2, unique=True)))
        south, north = sorted(draw(st.lists(_LATS, min_size=2, max_size=2, unique=True)))
        confirmed = NOW - (7 * HOUR if draw(st.booleans()) else HOUR)
        aors.append(Aor("east", f"a{i}", box(west, south, east, north), 6 * 3600, confirmed))
    return aors


@settings(max_examples=300, deadline=None)
@given(
    aors=_aor_layouts(),
    lat=st.floats(34.51, 34.59),
    lon=st.floats(70.96, 71.04),
    buffer_m=st.sampled_from([200.0, 1500.0, 4000.0]),
)
def test_coverage_gaps_are_those_of_polygon_arithmetic_on_the_plane(
    aors: list[Aor], lat: float, lon: float, buffer_m: float
) -> None:
    """The shortcuts (an AOR holding the whole envelope, AORs holding the territory's part of it together)
    give the gaps that projecting everything and measuring what is left uncovered gives."""
    p = Picture()
    east = box(71.0, 34.3, 71.3, 34.9)
    p.put_territory(Territory("east", east))
    p.put_territory(Territory("west", box(70.7, 34.3, 71.0, 34.9)))
    for aor in aors:
        p.put_aor(aor)
    query = CheckQuery("west", CheckKind.FIRES, Point(lon, lat), Window(NOW, NOW))
    area = search_area(query, buffer_m)
    disk = area.plane.project(Point(lon, lat)).buffer(area.reach)
    expected = [  # an AOR within the reach, measured
        ("aor_lapsed", aor.id)
        for aor in aors
        if aor.lapsed_since(NOW) and area.plane.project(aor.geometry).distance(PLANE_ORIGIN) <= area.reach
    ]
    uncovered = area.plane.project(east).intersection(disk)
    if aors:
        uncovered = uncovered.difference(shapely.union_all([area.plane.project(a.geometry) for a in aors]))
    if uncovered.area > UNCOVERED_AREA_M2:
        expected.append(("no_aor", None))
    assert [(g.reason, g.aor) for g in check(p, query, NOW, buffer_m).gaps] == expected


def test_the_reach_to_an_uncertain_unit_widens_its_uncertainty_with_the_buffer() -> None:
    """The plane errs on the whole distance: 60° north, a unit 3 km uncertain is reached 3,200 m widened
    by the plane's bound (the buffer by at least SAFETY_FACTOR), not 200 m widened and 3,000 m as they are."""
    area = search_area(CheckQuery("p", CheckKind.GROUND, Point(10.0, 60.0), Window(NOW, NOW)), 200.0)
    bound = area.plane.error_bound(3_200 * 1.01)
    assert area.reach_for(np.array([3_000.0])).tolist() == [200 * max(SAFETY_FACTOR, 1 + bound) + 3_000 * (1 + bound)]
    assert area.reach_for(np.array([3_000.0]))[0] > area.reach + 3_000.0


def test_near_a_pole_a_unit_whose_uncertainty_reaches_past_the_plane_is_never_cleared_by_it() -> None:
    """At 89.2°, a unit 50 km uncertain reaches past 89.5°, where the plane has no bound: nothing the
    plane measures clears it, and the other units near the check keep their own reach."""
    area = search_area(CheckQuery("p", CheckKind.GROUND, Point(10.0, 89.2), Window(NOW, NOW)), 200.0)
    precise, vague = area.reach_for(np.array([10.0, 50_000.0])).tolist()
    assert vague == float("inf")
    assert precise == area.reach_for(np.array([10.0])).tolist()[0] < 400.0
