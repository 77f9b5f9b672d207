"""The probe watch on its own: sightings in, signs out (the service's part is in tests/api/test_probes.py)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString

from deconfliction.engine.probes import MAX_REMEMBERED, Probe, ProbeWatch, Sighting, _Trail
from deconfliction.geo import LatLon

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POST = LatLon(34.6, 71.1)
REACH = 1500.0


def seen(east: float, north: float, *, hit: bool, at_s: float = 0.0, point: LatLon = POST, near: bool = True) -> Sighting:
    """bravo's fires check ``east``/``north`` metres from alfa's post, as the watch is given it."""
    shape = (east, north)
    distance = math.hypot(east, north)
    place = (round(north), round(east), round(REACH))
    at = T0 + timedelta(seconds=at_s)
    return Sighting("bravo", "alfa", "post", "site", "Post", point, at, hit, shape, REACH, distance, near, place)


def test_one_answer_alone_is_no_sign_however_close() -> None:
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    assert watch.observe([seen(0.0, 0.0, hit=True)]) == []
    assert watch.observe([seen(0.0, 0.0, hit=True, at_s=10)]) == [], "the same place again tells nothing new"


def test_answers_that_meet_are_a_sign_told_again_each_time_the_circle_halves() -> None:
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    assert watch.observe([seen(1200.0, 0.0, hit=True)]) == []
    (first,) = watch.observe([seen(-1200.0, 0.0, hit=True, at_s=1)])
    assert first.signs == ("narrowing",) and first.hits == 2 and first.narrowed_to_m is not None
    assert first.narrowed_to_m < 2000.0 and first.closest_m == 1200.0
    assert watch.observe([seen(0.0, 1000.0, hit=True, at_s=2)]) == [], "narrower, but not half as wide: told already"
    (again,) = watch.observe([seen(0.0, -1450.0, hit=True, at_s=3)])
    assert again.narrowed_to_m is not None and again.narrowed_to_m <= first.narrowed_to_m / 2 and again.hits == 4
    assert [p.signs for p in watch.take_due(T0)] == [("narrowing",), ("narrowing",)]
    assert watch.take_due(T0) == []


def test_misses_before_the_first_hit_narrow_it() -> None:
    """A sweep's misses count once something is found: the first hit's area less all the misses that cut it."""
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    misses = [
        seen(x, y, hit=False, at_s=i)
        for i, (x, y) in enumerate([(1800.0, -1000.0), (-1800.0, -1000.0), (0.0, 800.0), (0.0, -3000.0)])
    ]
    assert watch.observe(misses) == []
    (probe,) = watch.observe([seen(0.0, -1000.0, hit=True, at_s=5)])
    assert probe.signs == ("narrowing",) and probe.hits == 1 and probe.narrowed_to_m is not None
    assert probe.narrowed_to_m < 0.75 * 2 * REACH
    alone = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    assert alone.observe([seen(0.0, -1000.0, hit=True, at_s=5)]) == [], "the same hit without the misses: no sign"


def test_many_distinct_checks_near_are_a_sign_repeats_are_not() -> None:
    watch = ProbeWatch(alarm_m=1.0, checks=5, window_s=3600)  # narrowing out of reach
    assert watch.observe([seen(3000.0, 0.0, hit=False, at_s=i) for i in range(10)]) == [], "one place, ten times"
    found = watch.observe([seen(3000.0, 100.0 * i, hit=False, at_s=20 + i) for i in range(1, 5)])
    assert [(p.signs, p.checks) for p in found] == [(("clustering",), 5)]
    far = [seen(9000.0, 100.0 * i, hit=False, at_s=40 + i, near=False) for i in range(10)]
    assert watch.observe(far) == [], "checks that do not come near the post do not count"


def test_checks_older_than_the_window_are_not_counted() -> None:
    watch = ProbeWatch(alarm_m=1.0, checks=3, window_s=60)
    assert watch.observe([seen(3000.0, 100.0 * i, hit=False, at_s=100.0 * i) for i in range(5)]) == []


def test_trails_idle_for_a_window_are_forgotten_and_what_is_kept_is_bounded() -> None:
    """A node runs for months: what it remembers of askers' checks must not grow with them."""
    watch = ProbeWatch(alarm_m=1.0, checks=10_000, window_s=3600)
    watch.observe([seen(3000.0, float(i % 3000), hit=False, at_s=i) for i in range(5000)])
    ((trail,),) = (trails.values() for trails in watch._trails.values())
    assert trail.recent is not None and trail.missed_points is not None
    assert len(trail.recent) == 2 * MAX_REMEMBERED and len(trail.missed_points) == MAX_REMEMBERED
    watch.observe([seen(3000.0, 1.0, hit=False, at_s=9000)])  # much later: the checks of an hour before it are gone
    assert len(trail.recent) == 2, "one check: when and where"
    watch.take_due(T0 + timedelta(seconds=9000 + 3500))
    assert len(watch) == 1, "checked near within the window: kept"
    watch.take_due(T0 + timedelta(seconds=9000 + 3500 + 301))  # looked for again a twelfth of a window on
    assert len(watch) == 0, "idle for a whole window: forgotten"


def test_a_miss_asked_again_before_any_hit_is_kept_once_and_a_far_one_keeps_only_numbers() -> None:
    """Most trails hold a miss or two: a node keeps one per asker and hidden asset for hours, so they stay small."""
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    watch.observe([seen(3000.0, 0.0, hit=False, at_s=i, near=False) for i in range(50)])
    ((trail,),) = (trails.values() for trails in watch._trails.values())
    assert trail.missed_points == {(3000.0, 0.0, REACH): None}
    assert (trail.recent, trail.taken, trail.missed_shapes, trail.consistent) == (None, None, None, None)
    (probe,) = watch.observe([seen(1200.0, 0.0, hit=True, at_s=60), seen(-1200.0, 0.0, hit=True, at_s=61)])
    assert probe.signs == ("narrowing",) and probe.hits == 2
    assert trail.missed_points is None and trail.taken is not None and (3000.0, 0.0, REACH, False) in trail.taken


def test_a_unit_that_moved_starts_a_new_trail() -> None:
    """What was learnt of where it was is old news: two hits at two positions place nothing."""
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    assert watch.observe([seen(1200.0, 0.0, hit=True)]) == []
    moved = LatLon(34.7, 71.2)
    assert watch.observe([seen(-1200.0, 0.0, hit=True, at_s=60, point=moved)]) == []


def test_a_unit_reported_elsewhere_is_forgotten_at_once_and_one_reported_in_place_is_not() -> None:
    """A node would otherwise keep what was learnt of every unit that ever moved for a whole window."""
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    watch.observe([seen(1200.0, 0.0, hit=True)])
    watch.moved("alfa", "post", POST)
    assert len(watch) == 1, "reported where it was: what the asker learnt still holds"
    watch.moved("alfa", "post", LatLon(34.7, 71.2))
    assert len(watch) == 0
    watch.observe([seen(1200.0, 0.0, hit=True)])
    watch.moved("alfa", "post", None)
    assert len(watch) == 0, "withdrawn: nothing to keep"


def test_misses_of_any_shape_narrow_the_first_hit() -> None:
    """Misses are kept compactly (a point check as numbers); a line's miss counts as a point's does."""
    line = LineString([(-500.0, 800.0), (500.0, 800.0)])
    miss = Sighting("bravo", "alfa", "post", "site", "Post", POST, T0, False, line, REACH, 800.0, True, (1, 2, 3))
    points = [seen(x, y, hit=False, at_s=i) for i, (x, y) in enumerate([(1800.0, -1000.0), (-1800.0, -1000.0), (0.0, -3000.0)])]
    watch = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    assert watch.observe([miss, *points]) == []
    (probe,) = watch.observe([seen(0.0, -1000.0, hit=True, at_s=5)])
    assert probe.narrowed_to_m is not None and probe.narrowed_to_m < 0.75 * 2 * REACH
    without_line = ProbeWatch(alarm_m=2000.0, checks=20, window_s=3600)
    without_line.observe(points)
    assert without_line.observe([seen(0.0, -1000.0, hit=True, at_s=5)]) == [], "the line's miss is what narrowed it"


_METRES = st.floats(-2500.0, 2500.0)


@settings(max_examples=150, deadline=None)
@example(asset=(0.0, 0.0), places=[(0.0, 0.0), (7.028122186651695e-267, 0.0)], order=[0, 1])  # GEOS's flag, not a NaN
@given(
    asset=st.tuples(st.floats(-800.0, 800.0), st.floats(-800.0, 800.0)),
    places=st.lists(st.tuples(_METRES, _METRES), min_size=1, max_size=5),
    order=st.lists(st.integers(0, 4), max_size=14),
)
def test_an_answer_taken_again_leaves_the_trail_as_measuring_it_again_would(
    asset: tuple[float, float], places: list[tuple[float, float]], order: list[int]
) -> None:
    """A repeated point check is not measured again: the signs, the region, its width and the counts are what
    measuring every answer gives. The asset is somewhere near the post; the same check always gets the same answer."""
    asked = [places[i % len(places)] for i in order]
    hits = [math.dist(place, asset) <= REACH for place in asked]
    sightings = [seen(x, y, hit=hit, at_s=i) for i, ((x, y), hit) in enumerate(zip(asked, hits, strict=True))]
    quick, full = ProbeWatch(2000.0, 20, 3600), ProbeWatch(2000.0, 20, 3600)
    assert [p.as_json() for p in quick.observe(sightings)] == [p.as_json() for p in full_observe(full, sightings)]
    for a, b in zip(trails_of(quick), trails_of(full), strict=True):
        assert (a.hits, a.single_m, a.width is None) == (b.hits, b.single_m, b.width is None)
        if a.consistent is not None and b.consistent is not None and a.width is not None and b.width is not None:
            assert a.consistent.symmetric_difference(b.consistent).area < 1.0 and abs(a.width - b.width) < 0.01


def full_observe(watch: ProbeWatch, sightings: list[Sighting]) -> list[Probe]:
    """What the watch says when it measures every answer, repeats too."""
    with patch.object(_Trail, "_taken_before", lambda self, s: False):
        return watch.observe(sightings)


def trails_of(watch: ProbeWatch) -> list[_Trail]:
    return [trail for trails in watch._trails.values() for trail in trails.values()]
