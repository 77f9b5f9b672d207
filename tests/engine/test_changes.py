"""The change log behind picture keys, the keys themselves, and the pure activity rules.

``ChangeLog.since`` is held against a plain loop over every recorded entry (the brute
force it replaces); the rules of ``engine.activities`` are tested on hand-made activities
at 34.55 N, distances measured with pyproj's geodesic and kept clear of the edges unless
an edge is the point.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point, box

from deconfliction.engine.activities import due, envelope, inside_notified, reaches_point, settled
from deconfliction.engine.changes import Changed, ChangeLog, PictureKey
from deconfliction.errors import InvalidInput
from deconfliction.geo import LatLon
from deconfliction.model import Activity, ActivityKind, ActivityState, Answer, Disclosure, Volume, Window

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
GEOD = Geod(ellps="WGS84")
ORIGIN = LatLon(34.55, 70.95)
WORLD = (-180.0, -90.0, 180.0, 90.0)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Box = tuple[float, float, float, float]


def offset(origin: LatLon, distance_m: float, azimuth: float = 90.0) -> LatLon:
    lon, lat, _ = GEOD.fwd(origin.lon, origin.lat, azimuth, distance_m)
    return LatLon(lat, lon)


def pt(at: LatLon) -> Point:
    return Point(at.lon, at.lat)


# ---------------------------------------------------------------------------- ChangeLog


def changed(n: int, what: str = "asset") -> Changed:
    return Changed(what, "alfa", f"{what}-{n}", Disclosure.EXACT)


def meets(a: Box, b: Box) -> bool:
    """Closed boxes that share at least a point."""
    return a[0] <= b[2] and a[2] >= b[0] and a[1] <= b[3] and a[3] >= b[1]


def brute_since(entries: list[tuple[int, Changed, Box]], seq: int, query: Box) -> dict[Changed, int]:
    """What ``since`` must answer, by looking at every entry ever recorded, in order."""
    found: dict[Changed, int] = {}
    for s, obj, b in entries:
        if s > seq and meets(b, query):
            found[obj] = s
    return found


# Quarter-degree grid coordinates, so that boxes often touch edge to edge (the closed case).
lon_grid = st.integers(-40, 40).map(lambda v: v / 4)
lat_grid = st.integers(-40, 40).map(lambda v: v / 4)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    w, e = sorted((draw(lon_grid), draw(lon_grid)))
    s, n = sorted((draw(lat_grid), draw(lat_grid)))
    return (w, s, e, n)


entries_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 5), boxes()),  # (seq step: 0 repeats a seq, object, box)
    max_size=60,
)


@PROPERTY
@given(
    steps=entries_strategy,
    capacity=st.one_of(st.just(10_000), st.integers(2, 12)),
    queries=st.lists(st.tuples(st.integers(0, 130), boxes()), min_size=1, max_size=8),
)
def test_since_is_the_brute_force_over_entries_after_seq(
    steps: list[tuple[int, int, Box]], capacity: int, queries: list[tuple[int, Box]]
) -> None:
    """Exactly the objects with an entry after ``seq`` whose box meets the query, each with its latest such entry.

    From the horizon on, dropping old entries changes no answer: what was dropped is at or
    before the horizon, so no key the log still honours could have missed it.
    """
    log = ChangeLog(capacity=capacity)
    entries: list[tuple[int, Changed, Box]] = []
    seq = 1
    for step, obj, b in steps:
        seq += step
        entries.append((seq, changed(obj), b))
        log.record(seq, changed(obj), b)
    assert len(log) <= capacity
    for q, query in queries:
        q = max(q, log.horizon)
        assert log.since(q, query) == brute_since(entries, q, query), (q, query)


side_lon = st.integers(0, 16).map(lambda v: 176.0 + v / 4)  # 176° to 180°, on a quarter-degree grid


@st.composite
def beside_180(draw: st.DrawFn) -> Box:
    """A footprint beside the antimeridian, east or west of it: a change's box stays within ±180°."""
    w, e = sorted((draw(side_lon), draw(side_lon)))
    s, n = sorted((draw(lat_grid), draw(lat_grid)))
    return (w, s, e, n) if draw(st.booleans()) else (-e, s, -w, n)


@st.composite
def across_180(draw: st.DrawFn) -> Box:
    """A key's box around a check beside the antimeridian: it may reach past 180° (east) or -180° (west)."""
    w = draw(side_lon)
    e = w + draw(st.integers(0, 24)) / 4
    s, n = sorted((draw(lat_grid), draw(lat_grid)))
    return (w, s, e, n) if draw(st.booleans()) else (-e, s, -w, n)


def meets_on_the_globe(a: Box, b: Box) -> bool:
    """Whether two boxes share a point once a turn of the globe is not told apart."""
    return any(meets((a[0] + turn, a[1], a[2] + turn, a[3]), b) for turn in (-360.0, 0.0, 360.0))


@PROPERTY
@given(entries=st.lists(beside_180(), max_size=30), queries=st.lists(across_180(), min_size=1, max_size=8))
def test_since_meets_what_lies_across_the_antimeridian(entries: list[Box], queries: list[Box]) -> None:
    """A key's box reaching past 180° is the same place as the one just past -180°: changes there must count."""
    log = ChangeLog()
    for seq, b in enumerate(entries, start=1):
        log.record(seq, changed(seq), b)
    for query in queries:
        expected = {changed(seq): seq for seq, b in enumerate(entries, start=1) if meets_on_the_globe(b, query)}
        assert log.since(0, query) == expected, query


def test_a_margin_reaches_across_the_antimeridian() -> None:
    """A position 0.001° east of the antimeridian with 500 m uncertainty: a change in a box 0.001° west of it."""
    log = ChangeLog()
    log.record(1, changed(1), (-179.999, 10.0, -179.999, 10.0), margin_m=500.0)
    assert log.since(0, (179.999, 10.0, 179.999, 10.0)) == {changed(1): 1}
    assert log.since(0, (179.99, 10.0, 179.99, 10.0)) == {}, "1.1 km away: beyond the margin"


def test_since_on_an_empty_log_is_empty() -> None:
    assert ChangeLog().since(0, WORLD) == {}


def test_since_is_strictly_after_seq_and_the_latest_change_wins() -> None:
    log = ChangeLog()
    here, there = (71.0, 34.5, 71.01, 34.51), (71.2, 34.7, 71.21, 34.71)
    log.record(3, changed(1), here)
    log.record(5, changed(1), there)  # the same object moved away
    log.record(5, changed(2), there)
    assert log.since(0, here) == {changed(1): 3}
    assert log.since(0, there) == {changed(1): 5, changed(2): 5}
    assert log.since(0, WORLD) == {changed(1): 5, changed(2): 5}
    assert log.since(3, here) == {}  # a key of version 3 has seen the change at 3
    assert log.since(4, WORLD) == {changed(1): 5, changed(2): 5}
    assert log.since(5, WORLD) == {}


def test_since_tells_objects_apart_by_kind_party_and_id() -> None:
    log = ChangeLog()
    b = (71.0, 34.5, 71.0, 34.5)
    things = [
        Changed("asset", "alfa", "x", Disclosure.EXACT),
        Changed("zone", "alfa", "x", Disclosure.EXACT),
        Changed("asset", "bravo", "x", Disclosure.EXACT),
        Changed("asset", "alfa", "y", Disclosure.HIDDEN),
    ]
    for seq, thing in enumerate(things, start=1):
        log.record(seq, thing, b)
    assert log.since(0, b) == {thing: seq for seq, thing in enumerate(things, start=1)}


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 180.0, 270.0])
def test_a_margin_widens_the_footprint_by_that_many_metres(azimuth: float) -> None:
    """A position with 500 m uncertainty counts as a change in a box 400 m away, not in one 700 m away."""
    log = ChangeLog()
    log.record(1, changed(1), (ORIGIN.lon, ORIGIN.lat, ORIGIN.lon, ORIGIN.lat), margin_m=500.0)
    log.record(2, changed(2), (ORIGIN.lon, ORIGIN.lat, ORIGIN.lon, ORIGIN.lat))  # the same point, no margin

    def point_box(distance_m: float) -> Box:
        p = offset(ORIGIN, distance_m, azimuth)
        return (p.lon, p.lat, p.lon, p.lat)

    assert log.since(0, point_box(400.0)) == {changed(1): 1}
    assert log.since(0, point_box(700.0)) == {}
    assert log.since(0, (ORIGIN.lon, ORIGIN.lat, ORIGIN.lon, ORIGIN.lat)) == {changed(1): 1, changed(2): 2}


def test_past_capacity_the_oldest_half_is_dropped_and_the_horizon_rises() -> None:
    log = ChangeLog(capacity=4)
    b = (71.0, 34.5, 71.0, 34.5)
    for seq in range(1, 5):
        log.record(seq, changed(seq), b)
    assert (len(log), log.horizon) == (4, 0)
    log.record(5, changed(5), b)
    assert len(log) == 2
    assert log.horizon == 3  # changes 1 to 3 are forgotten: keys up to version 3 cannot be honoured
    assert log.since(log.horizon, WORLD) == {changed(4): 4, changed(5): 5}
    for seq in range(6, 9):
        log.record(seq, changed(seq), b)
    assert len(log) <= 4
    assert log.horizon >= 5
    assert log.since(log.horizon, WORLD) == {changed(s): s for s in range(log.horizon + 1, 9)}


def test_reset_forgets_everything_and_sets_the_horizon() -> None:
    log = ChangeLog(capacity=8)
    log.record(1, changed(1), WORLD)
    log.reset(horizon=41)
    assert (len(log), log.horizon, log.capacity) == (0, 41, 8)
    assert log.since(41, WORLD) == {}
    log.record(42, changed(2), WORLD)
    assert log.since(41, WORLD) == {changed(2): 42}


def test_a_disabled_log_records_nothing() -> None:
    log = ChangeLog()
    log.enabled = False
    log.record(1, changed(1), WORLD)
    assert len(log) == 0
    assert log.since(0, WORLD) == {}


# ---------------------------------------------------------------------------- PictureKey

lons = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
lats = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
versions = st.integers(min_value=0, max_value=10**18 - 1)


@st.composite
def any_box(draw: st.DrawFn) -> Box:
    w, e = sorted((draw(lons), draw(lons)))
    s, n = sorted((draw(lats), draw(lats)))
    return (w, s, e, n)


@PROPERTY
@given(version=versions, b=any_box())
def test_key_round_trips_through_its_text(version: int, b: Box) -> None:
    key = PictureKey.issue(version, b)
    text = str(key)
    assert PictureKey.parse(text, "key") == key
    assert str(PictureKey.parse(text, "key")) == text


@PROPERTY
@given(version=versions, b=any_box())
def test_key_rounds_outwards_to_a_micro_degree(version: int, b: Box) -> None:
    """The key covers the box it was issued for, and is no more than a micro-degree wider on any side."""
    key = PictureKey.issue(version, b)
    assert key.version == version
    assert key.covers(b), (b, key.box)
    assert all(abs(k - v) <= 1.0000001e-6 for k, v in zip(key.box, b, strict=True)), (b, key.box)
    assert all(math.isclose(v * 1e6, round(v * 1e6), abs_tol=1e-6) for v in key.box)  # whole micro-degrees


@pytest.mark.parametrize(
    "b",
    [
        (70.00027299999999, 34.5, 70.1, 34.6),  # one ulp west of 70.000273
        (70.0, 34.5, 70.00010400000001, 34.6),  # one ulp east of 70.000104
    ],
)
def test_key_covers_a_box_an_ulp_beside_a_whole_micro_degree(b: Box) -> None:
    assert PictureKey.issue(1, b).covers(b), PictureKey.issue(1, b).box


def test_key_text_has_six_decimals() -> None:
    key = PictureKey.issue(1234, (70.98, 34.53, 71.04, 34.57))
    assert str(key) == "1234@70.980000,34.530000,71.040000,34.570000"
    assert PictureKey.parse("7@-70.000001,-34.000000,180.000000,90.000000", "key") == PictureKey(
        7, (-70.000001, -34.0, 180.0, 90.0)
    )


def test_key_covers_only_boxes_inside_it() -> None:
    key = PictureKey(1, (71.0, 34.5, 71.1, 34.6))
    assert key.covers((71.0, 34.5, 71.1, 34.6))
    assert key.covers((71.05, 34.55, 71.06, 34.56))
    assert not key.covers((70.999999, 34.5, 71.1, 34.6))
    assert not key.covers((71.0, 34.499999, 71.1, 34.6))
    assert not key.covers((71.0, 34.5, 71.100001, 34.6))
    assert not key.covers((71.0, 34.5, 71.1, 34.600001))


@pytest.mark.parametrize(
    "text",
    [
        None,
        12,
        "",
        "latest",
        "12",
        "@71.000000,34.000000,71.100000,34.100000",
        "-1@71.000000,34.000000,71.100000,34.100000",
        "x@71.000000,34.000000,71.100000,34.100000",
        "12@71.0,34.0,71.1,34.1",  # not six decimals
        "12@71.0000000,34.000000,71.100000,34.100000",  # seven
        "12@71.000000,34.000000,71.100000",  # three numbers
        "12@71.000000,34.000000,71.100000,34.100000,1.000000",  # five
        "12@71.000000, 34.000000, 71.100000, 34.100000",  # spaces
        "12 @71.000000,34.000000,71.100000,34.100000",
        "12@71.000000;34.000000;71.100000;34.100000",
        "12@1710.000000,34.000000,71.100000,34.100000",  # four digits of longitude
        "12@71.000000,134.000000,71.100000,34.100000",  # three of latitude
        "1234567890123456789@71.000000,34.000000,71.100000,34.100000",  # nineteen digits of version
        "12@71.000000,34.000000,71.100000,34.100000 trailing",
    ],
)
def test_key_parse_refuses_malformed_text(text: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        PictureKey.parse(text, "key")
    assert refused.value.field == "key"
    assert refused.value.code == "invalid_input"
    assert "picture key" in refused.value.message


# ---------------------------------------------------------------------------- activities: the rules


def window(start_s: float = 0.0, end_s: float = 3600.0) -> Window:
    return Window(NOW + timedelta(seconds=start_s), NOW + timedelta(seconds=end_s))


def volume(at: LatLon = ORIGIN, radius_m: float = 500.0, w: Window | None = None) -> Volume:
    return Volume(pt(at), radius_m, w or window())


def activity(
    *volumes: Volume,
    kind: ActivityKind = ActivityKind.FIRES,
    affected: tuple[str, ...] = (),
    answers: dict[str, Answer] | None = None,
    escalated_at: datetime | None = None,
    state: ActivityState = ActivityState.PROPOSED,
    deadline: datetime = NOW + timedelta(minutes=10),
) -> Activity:
    return Activity(
        id="a-1",
        party="west",
        kind=kind,
        volumes=volumes or (volume(),),
        purpose="test",
        affected=affected,
        proposed_at=NOW,
        deadline=deadline,
        envelope=(0.0, 0.0, 0.0, 0.0),
        state=state,
        answers=answers or {},
        escalated_at=escalated_at,
    )


ACK = Answer(True, NOW)
OBJ = Answer(False, NOW, "our patrol is there")


@pytest.mark.parametrize(
    ("affected", "answers", "escalated", "state"),
    [
        ((), {}, False, ActivityState.CLEARED),  # nobody affected: cleared at once
        (("b", "c"), {}, False, ActivityState.PROPOSED),
        (("b", "c"), {"b": ACK}, False, ActivityState.PROPOSED),
        (("b", "c"), {"b": ACK, "c": ACK}, False, ActivityState.CLEARED),
        (("b", "c"), {"b": OBJ}, False, ActivityState.OBJECTED),  # one objection is enough, without waiting
        (("b", "c"), {"b": ACK, "c": OBJ}, False, ActivityState.OBJECTED),
        (("b", "c"), {}, True, ActivityState.ESCALATED),
        (("b", "c"), {"b": ACK}, True, ActivityState.ESCALATED),  # silence after the deadline is still not consent
        (("b", "c"), {"b": ACK, "c": ACK}, True, ActivityState.CLEARED),  # late answers still clear it
        (("b", "c"), {"c": OBJ}, True, ActivityState.OBJECTED),
        (("b",), {"x": ACK}, False, ActivityState.PROPOSED),  # an answer from a party not affected counts for nothing
        (("b",), {"x": OBJ, "b": ACK}, False, ActivityState.CLEARED),
    ],
)
def test_settled(affected: tuple[str, ...], answers: dict[str, Answer], escalated: bool, state: ActivityState) -> None:
    made = activity(affected=affected, answers=answers, escalated_at=NOW + HOUR if escalated else None)
    assert settled(made) is state


def test_settled_follows_a_changed_answer() -> None:
    objected = activity(affected=("b",), answers={"b": OBJ})
    assert settled(objected) is ActivityState.OBJECTED
    assert settled(replace(objected, answers={"b": ACK})) is ActivityState.CLEARED


@pytest.mark.parametrize(
    ("state", "at", "fired"),
    [
        (ActivityState.PROPOSED, NOW + timedelta(minutes=9, seconds=59), []),
        (ActivityState.PROPOSED, NOW + timedelta(minutes=10), ["escalated"]),  # at the deadline itself
        (ActivityState.PROPOSED, NOW + timedelta(minutes=30), ["escalated"]),
        (ActivityState.ESCALATED, NOW + timedelta(minutes=30), []),  # once only
        (ActivityState.CLEARED, NOW + timedelta(minutes=30), []),  # answered in time: nothing to escalate
        (ActivityState.OBJECTED, NOW + timedelta(minutes=30), []),
        (ActivityState.ACTIVE, NOW + timedelta(minutes=30), []),
        (ActivityState.ACTIVE, NOW + HOUR, []),  # the window's last instant is still inside it
        (ActivityState.ACTIVE, NOW + HOUR + timedelta(seconds=1), ["ended"]),
        (ActivityState.CLEARED, NOW + HOUR + timedelta(seconds=1), ["ended"]),
        (ActivityState.PROPOSED, NOW + HOUR + timedelta(seconds=1), ["escalated", "ended"]),
        (ActivityState.COMPLETED, NOW + 2 * HOUR, []),
        (ActivityState.CANCELLED, NOW + 2 * HOUR, []),
    ],
)
def test_due(state: ActivityState, at: datetime, fired: list[str]) -> None:
    assert list(due(activity(state=state), at)) == fired


def test_due_ends_with_the_last_window() -> None:
    made = activity(volume(w=window(0, 1800)), volume(w=window(1800, 7200)), state=ActivityState.ACTIVE)
    assert list(due(made, NOW + HOUR + timedelta(seconds=1))) == []
    assert list(due(made, NOW + 2 * HOUR + timedelta(seconds=1))) == ["ended"]


@pytest.mark.parametrize(
    ("distance_m", "radius_m", "inside"),
    [
        (0.0, 0.0, True),
        (300.0, 100.0, True),
        (399.0, 100.0, True),
        (450.0, 100.0, False),  # its circle pokes 50 m out
        (499.0, 0.0, True),
        (500.5, 0.0, True),  # within the metre allowed for rounding of typed positions
        (502.0, 0.0, False),
        (900.0, 0.0, False),
        (0.0, 600.0, False),  # a circle wider than the notified one
    ],
)
@pytest.mark.parametrize("azimuth", [0.0, 135.0, 270.0])
def test_inside_notified_point_volume(distance_m: float, radius_m: float, inside: bool, azimuth: float) -> None:
    made = activity(volume(ORIGIN, 500.0))
    checked = pt(offset(ORIGIN, distance_m, azimuth))
    assert inside_notified(made, checked, radius_m, window(600, 1200)) is inside


@pytest.mark.parametrize(
    ("start_s", "end_s", "inside"),
    [(0, 3600, True), (600, 1200, True), (-1, 1200, False), (600, 3601, False), (4000, 5000, False)],
)
def test_inside_notified_needs_the_window_inside_too(start_s: float, end_s: float, inside: bool) -> None:
    made = activity(volume(ORIGIN, 500.0))
    assert inside_notified(made, pt(ORIGIN), 0.0, window(start_s, end_s)) is inside


def test_inside_notified_place_and_time_from_the_same_volume() -> None:
    """Volume A holds one place in the first hour, volume B another in the second: A's place in the second hour is outside."""
    far = offset(ORIGIN, 5000.0)
    made = activity(volume(ORIGIN, 500.0, window(0, 3600)), volume(far, 500.0, window(3600, 7200)))
    assert inside_notified(made, pt(ORIGIN), 0.0, window(600, 1200))
    assert inside_notified(made, pt(far), 0.0, window(4000, 5000))
    assert not inside_notified(made, pt(ORIGIN), 0.0, window(4000, 5000))
    assert not inside_notified(made, pt(far), 0.0, window(600, 1200))


def test_inside_notified_area_and_route_volumes() -> None:
    area = box(70.94, 34.54, 70.96, 34.56)
    route = LineString([(70.94, 34.60), (70.98, 34.60)])
    made = activity(Volume(area, 0.0, window()), Volume(route, 100.0, window()))
    assert inside_notified(made, Point(70.95, 34.55), 0.0, window())
    assert inside_notified(made, box(70.945, 34.545, 70.955, 34.555), 0.0, window())
    assert not inside_notified(made, box(70.955, 34.555, 70.965, 34.565), 0.0, window())  # half out
    beside = offset(LatLon(34.60, 70.96), 60.0, 0.0)
    assert inside_notified(made, pt(beside), 30.0, window())  # 90 m from the route's line, its half width is 100 m
    assert not inside_notified(made, pt(offset(LatLon(34.60, 70.96), 150.0, 0.0)), 0.0, window())
    assert not inside_notified(made, pt(LatLon(34.60, 70.99)), 0.0, window())  # beyond the route's end and its width


@pytest.mark.parametrize(
    ("distance_m", "uncertainty_m", "expected"),
    [
        (0.0, 0.0, 0.0),
        (100.0, 0.0, 0.0),  # inside the volume's own circle
        (1000.0, 0.0, 500.0),  # from the circle's edge
        (1900.0, 0.0, 1400.0),
        (1900.0, 200.0, 1200.0),  # its uncertainty brings it nearer
        (2100.0, 0.0, None),  # beyond radius 500 + buffer 1500
        (2100.0, 200.0, 1400.0),
        (2600.0, 200.0, None),
    ],
)
def test_reaches_point(distance_m: float, uncertainty_m: float, expected: float | None) -> None:
    made = activity(volume(ORIGIN, 500.0))
    got = reaches_point(made, 1500.0, offset(ORIGIN, distance_m, 60.0), uncertainty_m)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1.0)


def test_reaches_point_names_the_nearest_volume() -> None:
    made = activity(volume(ORIGIN, 0.0), volume(offset(ORIGIN, 3000.0), 0.0))
    assert reaches_point(made, 1500.0, offset(ORIGIN, 2000.0), 0.0) == pytest.approx(1000.0, abs=1.0)
    assert reaches_point(made, 1500.0, offset(ORIGIN, 1200.0), 0.0) == pytest.approx(1200.0, abs=1.0)
    assert reaches_point(made, 1500.0, offset(ORIGIN, 5000.0), 0.0) is None


def test_envelope_holds_every_buffered_volume_and_little_more() -> None:
    kind, radius, buffer = ActivityKind.FIRES, 300.0, 1500.0
    far = offset(ORIGIN, 8000.0, 45.0)
    made = envelope("west", kind, (volume(ORIGIN, radius), volume(far, radius)), buffer)
    w, s, e, n = made
    reach = radius + buffer
    for centre in (ORIGIN, far):
        for azimuth in (0.0, 90.0, 180.0, 270.0, 45.0, 225.0):
            edge = offset(centre, reach, azimuth)
            assert w <= edge.lon <= e and s <= edge.lat <= n, (centre, azimuth)
    # no more than 3 % (plus a few metres) beyond the buffered circles on any side
    slack = reach * 0.03 + 5.0
    assert w >= offset(ORIGIN, reach + slack, 270.0).lon
    assert s >= offset(ORIGIN, reach + slack, 180.0).lat
    assert e <= offset(far, reach + slack, 90.0).lon
    assert n <= offset(far, reach + slack, 0.0).lat
    single = envelope("west", kind, (volume(ORIGIN, radius),), buffer)
    assert (single[0], single[1]) == (w, s)
    assert single[2] < e and single[3] < n
