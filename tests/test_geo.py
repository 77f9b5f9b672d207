"""Tests for ``deconfliction.geo``: position parsing, read-back, the local plane, envelopes, GeoJSON.

Expected points are checked with ``geo.geodesic_m`` (metres on WGS 84), so a test states
how far off a reading may be, not how many decimals it happens to print.
"""

from __future__ import annotations

import functools
import json
import math
import re
from decimal import Decimal

import mgrs
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
from shapely.geometry import LineString, MultiPolygon, Polygon

from deconfliction import geo
from deconfliction.disclosure import show_point
from deconfliction.errors import InvalidInput, InvalidPosition
from deconfliction.geo import PLANE_LATITUDE_LIMIT, LatLon, LocalPlane
from tests.fuzz.invariants import holds_for

GEOD = Geod(ellps="WGS84")
BANDS = "CDEFGHJKLMNPQRSTUVWX"  # MGRS/UTM latitude bands, 8° each from 80°S

# Property tests: enough examples to find edge cases, few enough to keep the file fast.
# No deadline: the first call of a test builds pyproj transformers, which takes a while.
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KANDAHAR = LatLon(34.55, 71.015)  # the service's running example (near Jalalabad, really)
LUSAKA = LatLon(-15.4, 30.42)
GREENWICH = LatLon(51.4779, -0.0015)

lats = st.floats(min_value=-79.9, max_value=83.9, allow_nan=False)
lons = st.floats(min_value=-179.9, max_value=179.9, allow_nan=False)


# ---------------------------------------------------------------------------- helpers


def assert_near(actual: LatLon, expected: LatLon, tolerance_m: float) -> None:
    distance = geo.geodesic_m(actual, expected)
    assert distance <= tolerance_m, f"{actual} is {distance:.3f} m from {expected} (allowed {tolerance_m} m)"


def refused(text: object, *fragments: str, field: str = "position") -> InvalidPosition:
    """Parse ``text``, insist it is refused as an InvalidPosition naming every fragment."""
    with pytest.raises(InvalidPosition) as info:
        geo.parse_position(text, field=field)
    err = info.value
    assert isinstance(err, InvalidInput)
    assert err.code == "invalid_position"
    assert err.status == 422
    assert err.field == field
    for fragment in fragments:
        assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
    return err


def geojson_refused(obj: object, field_path: str, *fragments: str, allowed: tuple[str, ...] = ("Polygon", "MultiPolygon")):
    with pytest.raises(InvalidInput) as info:
        geo.parse_geojson(obj, "area", allowed)
    err = info.value
    assert type(err) is InvalidInput  # a geometry fault is not a position fault
    assert err.field == field_path
    for fragment in fragments:
        assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
    return err


@functools.cache
def _to_utm(zone: int, south: bool) -> Transformer:
    return Transformer.from_crs(4326, (32700 if south else 32600) + zone, always_xy=True)


def utm_zone(lon: float) -> int:
    return min(int((lon + 180.0) // 6) + 1, 60)


def band_of(lat: float) -> str:
    return BANDS[min(int((lat + 80.0) // 8), len(BANDS) - 1)]


def utm_string(point: LatLon, letter: str) -> str:
    """The point as 'ZZL easting northing' in whole metres, in its standard (longitude) zone."""
    zone = utm_zone(point.lon)
    easting, northing = _to_utm(zone, point.lat < 0).transform(point.lon, point.lat)
    return f"{zone:02d}{letter} {easting:.0f} {northing:.0f}"


def plain_decimal(x: float) -> str:
    """The shortest exact decimal for ``x`` without an exponent (repr gives '1e-05')."""
    return f"{Decimal(repr(x)):f}"


def plane_distance(plane: LocalPlane, a: LatLon, b: LatLon) -> float:
    x, y = plane.xy(np.array([a.lon, b.lon]), np.array([a.lat, b.lat]))
    return float(math.hypot(x[1] - x[0], y[1] - y[0]))


def destination(start: LatLon, azimuth: float, distance_m: float) -> LatLon:
    lon, lat, _ = GEOD.fwd(start.lon, start.lat, azimuth, distance_m)
    return LatLon(lat, lon)


def square(lon: float, lat: float, size: float = 1.0) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def circle_ring(n_positions: int) -> list[list[float]]:
    """A closed ring of exactly ``n_positions`` positions (the last repeats the first)."""
    k = n_positions - 1
    ring = [[0.1 * math.cos(2 * math.pi * i / k), 0.1 * math.sin(2 * math.pi * i / k)] for i in range(k)]
    return [*ring, ring[0]]


# ---------------------------------------------------------------------------- 1. notations


@pytest.mark.parametrize(
    ("text", "expected", "notation"),
    [
        pytest.param("34.5500, 71.0150", KANDAHAR, "decimal", id="decimal"),
        pytest.param("-15.4, 30.42", LUSAKA, "decimal", id="decimal-negative"),
        pytest.param("  34.55 ,71.015 ", KANDAHAR, "decimal", id="decimal-loose-spacing"),
        pytest.param("+34.55, +71.015", KANDAHAR, "decimal", id="decimal-plus-signs"),
        pytest.param("34.55N 71.015E", KANDAHAR, "dms", id="hemisphere-suffix"),
        pytest.param("N34.55 E71.015", KANDAHAR, "dms", id="hemisphere-prefix"),
        pytest.param("34.55 n, 71.015 e", KANDAHAR, "dms", id="hemisphere-lowercase-comma"),
        pytest.param("71.015E 34.55N", KANDAHAR, "dms", id="hemisphere-lon-first"),
        pytest.param("15.4S 30.42E", LUSAKA, "dms", id="hemisphere-south"),
        pytest.param("34°33'00\"N 71°00'54\"E", KANDAHAR, "dms", id="dms-marks"),
        pytest.param("34º33′00″N 71º00′54″E", KANDAHAR, "dms", id="dms-typographic-marks"),
        pytest.param("34°33'00''N 71°00'54''E", KANDAHAR, "dms", id="dms-double-apostrophe"),
        pytest.param("34 33 00 N 71 00 54 E", KANDAHAR, "dms", id="dms-spaces"),
        pytest.param("34°33'N 71°00.9'E", KANDAHAR, "dms", id="dms-decimal-minutes"),
        pytest.param("15°24'00\"S 30°25'12\"E", LUSAKA, "dms", id="dms-south"),
        pytest.param("42S XD 84886 24985", KANDAHAR, "mgrs", id="mgrs-spaced"),
        pytest.param("42SXD8488624985", KANDAHAR, "mgrs", id="mgrs-compact"),
        pytest.param("42sxd 84886 24985", KANDAHAR, "mgrs", id="mgrs-lowercase"),
        pytest.param("36L TH 23072 95774", LUSAKA, "mgrs", id="mgrs-south"),
        pytest.param("30U YC 08213 07235", GREENWICH, "mgrs", id="mgrs-west-of-greenwich"),
        pytest.param("42N 684887 3824986", KANDAHAR, "utm", id="utm-hemisphere"),
        pytest.param("42N 684887mE 3824986mN", KANDAHAR, "utm", id="utm-metre-suffixes"),
        pytest.param("36L 223072 8295774", LUSAKA, "utm", id="utm-south-band"),
    ],
)
def test_parse_position_reads_every_notation(text: str, expected: LatLon, notation: str) -> None:
    parsed = geo.parse_position(text)
    assert parsed.notation == notation
    assert_near(parsed.point, expected, 2.0)


def test_parse_position_decimal_is_exact_and_has_no_precision_penalty() -> None:
    parsed = geo.parse_position("-15.4, 30.42")
    assert parsed == geo.ParsedPosition(LatLon(-15.4, 30.42), "decimal", 0.0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("90, 180", id="north-pole-antimeridian"),
        pytest.param("-90, -180", id="south-pole-antimeridian"),
        pytest.param("0, 0", id="null-island"),
    ],
)
def test_parse_position_accepts_range_limits(text: str) -> None:
    lat, lon = (float(v) for v in text.split(","))
    assert geo.parse_position(text).point == LatLon(lat, lon)


def test_parse_position_utm_n_in_band_n_is_one_place_not_ambiguous() -> None:
    # Band N and the northern hemisphere give the same reading: no ambiguity to refuse.
    parsed = geo.parse_position("33N 500000 100000")
    assert parsed.notation == "utm"
    assert parsed.point.lat == pytest.approx(0.9047, abs=1e-4)
    assert parsed.point.lon == pytest.approx(15.0, abs=1e-9)


def test_parse_position_utm_s_outside_band_s_is_the_southern_hemisphere() -> None:
    # 9,000,000 m north is not in band S (32-40°N), so "S" can only mean south.
    parsed = geo.parse_position("33S 500000 9000000")
    assert parsed.point.lat == pytest.approx(-9.0466, abs=1e-4)
    assert parsed.point.lon == pytest.approx(15.0, abs=1e-9)


# ---------------------------------------------------------------------------- 2. MGRS precision


@pytest.mark.parametrize(
    ("coarse", "centre", "precision_m"),
    [
        pytest.param("42SXD82", "42SXD8500025000", 5000 * math.sqrt(2), id="10km"),
        pytest.param("42SXD8424", "42SXD8450024500", 500 * math.sqrt(2), id="1km"),
        pytest.param("42S XD 848 249", "42SXD8485024950", 50 * math.sqrt(2), id="100m"),
        pytest.param("42SXD84882498", "42SXD8488524985", 5 * math.sqrt(2), id="10m"),
    ],
)
def test_parse_position_mgrs_coarse_reference_is_the_centre_of_its_square(coarse: str, centre: str, precision_m: float) -> None:
    parsed = geo.parse_position(coarse)
    lat, lon = mgrs.MGRS().toLatLon(centre)  # the 1 m square at the coarse square's centre
    assert parsed.notation == "mgrs"
    assert_near(parsed.point, LatLon(lat, lon), 0.75)  # mgrs reads that 1 m square at its own centre
    assert parsed.precision_m == pytest.approx(precision_m)


def test_parse_position_mgrs_1km_is_not_read_as_the_south_west_corner() -> None:
    parsed = geo.parse_position("42SXD8424")
    corner = geo.parse_position("42SXD8400024000").point
    # The centre is half a diagonal (~707 m, a bit more or less with the grid's scale) away.
    assert geo.geodesic_m(parsed.point, corner) == pytest.approx(707.1, rel=0.002)
    assert parsed.precision_m == pytest.approx(707.1, abs=0.1)


def test_parse_position_mgrs_1m_precision() -> None:
    assert geo.parse_position("42SXD8488624985").precision_m == pytest.approx(math.sqrt(2) / 2)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("42SXD", id="0-digits"),
        pytest.param("42S XD", id="0-digits-spaced"),
        pytest.param("42SXD848862498512", id="6-digits-compact"),
        pytest.param("42S XD 848860 249850", id="6-digits-spaced"),
    ],
)
def test_parse_position_mgrs_refuses_digit_counts_outside_1_to_5(text: str) -> None:
    refused(text, "1 to 5 digits")


# ---------------------------------------------------------------------------- 3. rejections


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        # decimal
        pytest.param("91, 10", ("latitude 91", "-90 to 90"), id="lat-over-90"),
        pytest.param("-90.0001, 10", ("latitude -90.0001",), id="lat-under-minus-90"),
        pytest.param("34.55, 181", ("longitude 181", "-180 to 180"), id="lon-over-180"),
        pytest.param("34.55", ("cannot read", "'34.55'"), id="single-number"),
        pytest.param("34.55 71.015", ("cannot read",), id="pair-without-comma-or-letters"),
        pytest.param("1e1, 2", ("hemisphere letter",), id="exponent-e-is-east"),
        pytest.param("NaN, 1", ("cannot read",), id="nan"),
        pytest.param("", ("empty",), id="empty"),
        pytest.param(" \t\n ", ("empty",), id="whitespace"),
        # MGRS
        pytest.param("42S XD 8488 24985", ("unequal digit counts", "'8488'", "'24985'"), id="mgrs-unequal-digits"),
        pytest.param("42SXD848862498", ("cannot be split",), id="mgrs-odd-digit-count"),
        pytest.param("42SXI8488624985", ("'XI'", "no square uses"), id="mgrs-square-letter-I"),
        pytest.param("42SOD8488624985", ("'OD'", "no square uses"), id="mgrs-square-letter-O"),
        pytest.param("42SXW8488624985", ("'XW'", "no square uses"), id="mgrs-row-letter-W"),
        pytest.param("42RXD8488624985", ("not a valid reference", "42S XD", "not 42R XD"), id="mgrs-band-contradicts-place"),
        pytest.param("42IXD8488624985", ("latitude band 'I'",), id="mgrs-band-I"),
        pytest.param("42AXD8488624985", ("latitude band 'A'",), id="mgrs-band-A-polar"),
        pytest.param("0SXD8488624985", ("zone 0", "1 to 60"), id="mgrs-zone-0"),
        pytest.param("61SXD8488624985", ("zone 61", "1 to 60"), id="mgrs-zone-61"),
        pytest.param("42SAD8488624985", ("names no place",), id="mgrs-column-not-in-zone"),
        # UTM
        pytest.param("33S 500000 3800000", ("ambiguous", "latitude band S", "southern hemisphere"), id="utm-S-ambiguous"),
        pytest.param("0N 500000 3800000", ("UTM zone 0",), id="utm-zone-0"),
        pytest.param("61N 500000 3800000", ("UTM zone 61",), id="utm-zone-61"),
        pytest.param("42N 99999 3824986", ("easting 99999", "100000 to 900000"), id="utm-easting-too-small"),
        pytest.param("42N 900000 3824986", ("easting 900000",), id="utm-easting-too-large"),
        pytest.param("42N 684887 10000001", ("northing", "0 to 10000000"), id="utm-northing-too-large"),
        pytest.param("42T 684887 3824986", ("outside latitude band T",), id="utm-northing-outside-band"),
        pytest.param("33M 500000 9000000", ("outside latitude band M",), id="utm-south-outside-band"),
        pytest.param("42N 500000 9900000", ("outside latitude band N",), id="utm-north-beyond-84"),
        pytest.param("42I 684887 3824986", ("neither a latitude band",), id="utm-letter-I"),
        # degrees, minutes, seconds
        pytest.param("34°60'00\"N 71°00'54\"E", ("minutes must be under 60",), id="minutes-60"),
        pytest.param("34°33'60\"N 71°00'54\"E", ("seconds must be under 60",), id="seconds-60"),
        pytest.param("34 33 75.5 N 71 00 54 E", ("seconds must be under 60", "75.5"), id="seconds-over-60"),
        pytest.param("34 33.5 00 N 71 00 54 E", ("only the last part", "33.5"), id="decimal-minutes-then-seconds"),
        pytest.param("34.5 30 N 71 E", ("only the last part", "34.5"), id="decimal-degrees-then-minutes"),
        pytest.param("34.55N 71.015N", ("two latitudes",), id="two-latitudes"),
        pytest.param("71.015E 71.015W", ("two longitudes",), id="two-longitudes"),
        pytest.param("-34.55N 71.015E", ("unexpected '-'",), id="minus-with-hemisphere"),
        pytest.param("34.55N -71.015E", ("unexpected '-'",), id="minus-with-hemisphere-lon"),
        pytest.param("34.55N", ("exactly one latitude and one longitude",), id="latitude-only"),
        pytest.param("34.55N 71.015", ("needs a hemisphere letter",), id="longitude-without-letter"),
        pytest.param("34'33°N 71E", ("not in the place of degrees",), id="marks-out-of-order"),
        pytest.param('34 33" N 71 E', ("not in the place of minutes",), id="seconds-mark-on-minutes"),
        pytest.param("34 33 00 00 N 71 E", ("degrees, optional minutes and optional seconds",), id="four-parts"),
        pytest.param("95N 10E", ("latitude 95",), id="dms-lat-over-90"),
        pytest.param("34N 190E", ("longitude 190",), id="dms-lon-over-180"),
        pytest.param("34.55N 71.015E !", ("unexpected '!'",), id="trailing-garbage"),
        # garbage
        pytest.param("hello world", ("cannot read", "MGRS", "UTM"), id="garbage-words"),
        pytest.param("Kandahar", ("cannot read",), id="place-name"),
        pytest.param("34.55, 71.015, 120", ("cannot read",), id="three-numbers"),
    ],
)
def test_parse_position_refuses_with_a_precise_reason(text: str, fragments: tuple[str, ...]) -> None:
    refused(text, *fragments)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(34.5, id="float"),
        pytest.param(b"34.55, 71.015", id="bytes"),
        pytest.param(["34.55", "71.015"], id="list"),
    ],
)
def test_parse_position_refuses_non_strings(value: object) -> None:
    refused(value, "must be a string")


def test_parse_position_error_names_the_field_it_is_given() -> None:
    err = refused("91, 10", "latitude 91", field="reports.3.position")
    assert err.to_dict() == {
        "code": "invalid_position",
        "message": "latitude 91.0 is outside -90 to 90",
        "field": "reports.3.position",
    }


# ---------------------------------------------------------------------------- 4. properties


def _near_mgrs_edge(lat: float, lon: float) -> bool:
    """Within 2 m of a latitude band edge (every 8°) or a zone edge (every 6°, and at 3°, 9°,
    21° and 33° for the Norway and Svalbard zones: all multiples of 3°).

    There a 1 m reference truncates across the edge and is refused; that is a known bug,
    pinned by test_parse_position_reads_back_to_mgrs_at_a_zone_or_band_edge below.
    """
    lat_slack = 2.0 / 110_574.0
    lon_slack = 2.0 / (111_320.0 * math.cos(math.radians(lat)))
    return abs(lat - 8.0 * round(lat / 8.0)) < lat_slack or abs(lon - 3.0 * round(lon / 3.0)) < lon_slack


@PROPERTY
@given(lat=lats, lon=lons)
def test_parse_position_reads_back_to_mgrs_within_1_5_m(lat: float, lon: float) -> None:
    assume(not _near_mgrs_edge(lat, lon))
    point = LatLon(lat, lon)
    reference = geo.to_mgrs(point)
    assert reference is not None
    parsed = geo.parse_position(reference)
    assert parsed.notation == "mgrs"
    # 1 m truncation: the reading is at most a 1 m square's diagonal (x grid scale) away.
    assert_near(parsed.point, point, 1.5)


@PROPERTY
@given(lat=st.floats(min_value=0.0, max_value=83.9), lon=lons)
def test_parse_position_reads_back_utm_northern_hemisphere_form_within_1_m(lat: float, lon: float) -> None:
    point = LatLon(lat, lon)
    text = utm_string(point, "N")
    parsed = geo.parse_position(text)
    assert parsed.notation == "utm"
    assert_near(parsed.point, point, 1.0)


def _near_band_edge(lat: float) -> bool:
    # Within ~1 m of a band edge, rounding to whole metres can honestly cross the edge,
    # and then the band letter is rightly refused as contradicting the place.
    return abs(lat / 8.0 - round(lat / 8.0)) * 8.0 < 2e-5


@PROPERTY
@given(
    lat=st.floats(min_value=-79.9, max_value=-1e-4).filter(lambda v: not _near_band_edge(v)),
    lon=lons,
)
def test_parse_position_reads_back_utm_southern_band_letter_form_within_1_m(lat: float, lon: float) -> None:
    point = LatLon(lat, lon)
    letter = band_of(lat)
    assert letter in "CDEFGHJKLM"
    parsed = geo.parse_position(utm_string(point, letter))
    assert parsed.notation == "utm"
    assert_near(parsed.point, point, 1.0)


@PROPERTY
@given(lat=st.floats(min_value=-90.0, max_value=90.0), lon=st.floats(min_value=-180.0, max_value=180.0))
def test_parse_position_reads_back_decimal_exactly(lat: float, lon: float) -> None:
    parsed = geo.parse_position(f"{plain_decimal(lat)}, {plain_decimal(lon)}")
    assert parsed == geo.ParsedPosition(LatLon(lat, lon), "decimal", 0.0)


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_parse_position_refuses_arbitrary_text_only_with_invalid_position(text: str) -> None:
    holds_for(text)  # refused with InvalidPosition, or read as a place that reads back the same (tests/fuzz/invariants.py)


_POSITION_ALPHABET = st.sampled_from([*"0123456789 NSEWXDZIO.,-+°'\"", "''", "″", "′", "º", "٣", "４"])


@settings(max_examples=300, deadline=None)
@given(text=st.lists(_POSITION_ALPHABET, max_size=24).map("".join))
def test_parse_position_refuses_position_like_text_only_with_invalid_position(text: str) -> None:
    # st.text() rarely builds anything close to a position; this alphabet does. atheris goes further: tests/fuzz.
    holds_for(text)


# ---------------------------------------------------------------------------- 5. LocalPlane


@PROPERTY
@given(
    lat=st.floats(min_value=-80.0, max_value=80.0),
    lon=st.floats(min_value=-180.0, max_value=180.0),
    azimuth=st.floats(min_value=0.0, max_value=360.0),
    distance_m=st.floats(min_value=1.0, max_value=20_000.0),
)
def test_local_plane_distance_from_origin_is_covered_by_safety_factor(
    lat: float, lon: float, azimuth: float, distance_m: float
) -> None:
    origin = LatLon(lat, lon)
    target = destination(origin, azimuth, distance_m)
    ratio = plane_distance(LocalPlane(origin), origin, target) / geo.geodesic_m(origin, target)
    # A plane distance too long could turn a conflict into a clear; the factor covers it.
    assert 1 / geo.SAFETY_FACTOR < ratio < geo.SAFETY_FACTOR


@PROPERTY
@given(
    lat=st.floats(min_value=-78.0, max_value=78.0),
    lon=st.floats(min_value=-180.0, max_value=180.0),
    azimuth=st.floats(min_value=0.0, max_value=360.0),
    distance_m=st.floats(min_value=1.0, max_value=20_000.0),
)
def test_local_plane_distance_from_origin_within_0_3_percent_up_to_78_degrees(
    lat: float, lon: float, azimuth: float, distance_m: float
) -> None:
    origin = LatLon(lat, lon)
    target = destination(origin, azimuth, distance_m)
    ratio = plane_distance(LocalPlane(origin), origin, target) / geo.geodesic_m(origin, target)
    assert ratio == pytest.approx(1.0, rel=0.003)


TWO_POINTS = {
    "lon": st.floats(min_value=-179.0, max_value=179.0),
    "extent_m": st.floats(min_value=100.0, max_value=50_000.0),
    "az_a": st.floats(min_value=0.0, max_value=360.0),
    "az_b": st.floats(min_value=0.0, max_value=360.0),
    "fa": st.floats(min_value=0.0, max_value=1.0),
    "fb": st.floats(min_value=0.0, max_value=1.0),
}
"""Two points within ``extent_m`` of an origin at ``lon``: at azimuths ``az_a``, ``az_b`` and those shares of the extent."""


@PROPERTY
@given(lat=st.floats(min_value=-80.0, max_value=80.0), **TWO_POINTS)
def test_local_plane_distance_between_any_two_points_is_within_its_error_bound(
    lat: float, lon: float, extent_m: float, az_a: float, az_b: float, fa: float, fb: float
) -> None:
    """What the checks rely on: any two points within the extent, not only from the origin."""
    origin = LatLon(lat, lon)
    a, b = destination(origin, az_a, fa * extent_m), destination(origin, az_b, fb * extent_m)
    true = geo.geodesic_m(a, b)
    assume(true > 1.0)
    plane = LocalPlane(origin)
    assert abs(plane_distance(plane, a, b) / true - 1) <= plane.error_bound(extent_m)


@PROPERTY
@given(lat=st.floats(min_value=80.0, max_value=PLANE_LATITUDE_LIMIT), south=st.booleans(), **TWO_POINTS)
def test_near_a_pole_the_bound_holds_up_to_its_limit_and_is_infinite_past_it(
    lat: float, south: bool, lon: float, extent_m: float, az_a: float, az_b: float, fa: float, fb: float
) -> None:
    """Past 80° the meridians close in fast: the bound grows with them, and where the extent reaches past
    the plane's limit no bound is claimed, so what is measured there is always found."""
    origin = LatLon(-lat if south else lat, lon)
    plane = LocalPlane(origin)
    if not plane.holds(extent_m):
        assert plane.error_bound(extent_m) == math.inf
        return
    a, b = destination(origin, az_a, fa * extent_m), destination(origin, az_b, fb * extent_m)
    true = geo.geodesic_m(a, b)
    assume(true > 1.0)
    assert abs(plane_distance(plane, a, b) / true - 1) <= plane.error_bound(extent_m)


def test_the_bound_of_many_extents_is_each_ones_bound() -> None:
    plane = LocalPlane(LatLon(89.0, 20.0))
    extents = np.array([100.0, 20_000.0, 50_000.0, 60_000.0])
    assert plane.error_bound(extents).tolist() == [plane.error_bound(float(e)) for e in extents]
    assert plane.error_bound(60_000.0) == math.inf  # 89° + 0.54°: past the limit


def test_local_plane_distance_from_origin_at_80_degrees_is_within_its_error_bound() -> None:
    # 0.345 % here: more than the 0.3 % that holds below 78°, within the bound the checks use.
    origin = LatLon(80.0, 10.0)
    target = destination(origin, 54.0, 20_000.0)
    plane = LocalPlane(origin)
    ratio = plane_distance(plane, origin, target) / geo.geodesic_m(origin, target)
    assert abs(ratio - 1) <= plane.error_bound(20_000.0)


def test_local_plane_distance_between_shapes_away_from_origin_is_within_its_error_bound() -> None:
    # 0.55 % too long here, more than SAFETY_FACTOR alone: the checks widen by error_bound.
    origin = LatLon(60.0, 10.0)
    a = destination(origin, 0.0, 20_000.0)  # 20 km north of the origin
    b = destination(a, 90.0, 1_000.0)  # 1 km east of that
    plane = LocalPlane(origin)
    ratio = plane_distance(plane, a, b) / geo.geodesic_m(a, b)
    assert ratio - 1 > geo.SAFETY_FACTOR - 1
    assert abs(ratio - 1) <= plane.error_bound(21_000.0)


def test_local_plane_origin_is_zero_and_axes_are_east_and_north() -> None:
    plane = LocalPlane(KANDAHAR)
    x, y = plane.xy(np.array([71.015, 71.025, 71.015]), np.array([34.55, 34.55, 34.56]))
    assert (x[0], y[0]) == (0.0, 0.0)
    assert x[1] > 0 and y[1] == 0.0  # east is +x
    assert x[2] == 0.0 and y[2] > 0  # north is +y
    # Metres per degree match the ellipsoid there: ~110,932 m north-south, ~91,785 m east-west.
    metres_per_degree_north = GEOD.inv(71.015, 34.5495, 71.015, 34.5505)[2] / 0.001
    metres_per_degree_east = GEOD.inv(71.0145, 34.55, 71.0155, 34.55)[2] / 0.001
    assert plane.ky == pytest.approx(metres_per_degree_north, rel=1e-6)
    assert plane.kx == pytest.approx(metres_per_degree_east, rel=1e-6)
    assert plane.ky == pytest.approx(110_932, abs=1)


@given(st.floats(-90, 90), st.floats(0, 500_000))
def test_the_one_latitude_helpers_give_what_the_array_ones_give(lat: float, margin_m: float) -> None:
    """A check's plane and envelopes use the plain-float twins; segment distances and change areas the arrays."""
    kx, ky = geo.metres_per_degree(np.array([lat]))
    assert geo.metres_per_degree_at(lat) == pytest.approx((kx[0], ky[0]), rel=1e-12, abs=1e-9)
    dlat, dlon = geo.degree_margins(np.array([lat]), margin_m)
    assert geo.degree_margins_at(lat, margin_m) == pytest.approx((dlat[0], dlon[0]), rel=1e-12)


def test_a_box_past_180_is_read_as_its_two_parts_one_each_side() -> None:
    """What every search does with the box around a buffer beside the antimeridian."""
    east_past, west_past = geo.wrapped((179.9, 1.0, 180.2, 2.0)), geo.wrapped((-180.2, 1.0, -179.9, 2.0))
    assert [pytest.approx(part) for part in east_past] == [(179.9, 1.0, 180.0, 2.0), (-180.0, 1.0, -179.8, 2.0)]
    assert [pytest.approx(part) for part in west_past] == [(179.8, 1.0, 180.0, 2.0), (-180.0, 1.0, -179.9, 2.0)]
    assert geo.wrapped((10.0, 1.0, 11.0, 2.0)) == ((10.0, 1.0, 11.0, 2.0),)
    assert geo.wrapped((-180.5, 1.0, 180.5, 2.0)) == ((-180.0, 1.0, 180.0, 2.0),), "the whole band of latitude"
    inside = geo.in_envelope(
        np.array([179.95, -179.85, -179.7, 179.95]), np.array([1.5, 1.5, 1.5, 2.5]), (179.9, 1.0, 180.2, 2.0)
    )
    assert inside.tolist() == [True, True, False, False]
    assert geo.wrapped_box((179.9, 1.0, 180.2, 2.0)).area == pytest.approx(0.3)


def test_local_plane_xy_wraps_across_the_antimeridian() -> None:
    plane = LocalPlane(LatLon(-16.5, 179.99))
    x, _ = plane.xy(np.array([-179.99]), np.array([-16.5]))
    assert x[0] == pytest.approx(0.02 * plane.kx)  # 0.02° east, not 359.98° west


@PROPERTY
@given(
    lat=st.floats(min_value=-80.0, max_value=80.0),
    lon=st.floats(min_value=-179.0, max_value=179.0),
    offsets=st.lists(
        st.tuples(st.floats(min_value=-0.2, max_value=0.2), st.floats(min_value=-0.2, max_value=0.2)),
        min_size=3,
        max_size=12,
    ),
)
def test_local_plane_project_unproject_round_trips_a_polygon(lat: float, lon: float, offsets: list[tuple[float, float]]) -> None:
    ring = [(lon + dx, lat + dy) for dx, dy in offsets]
    polygon = Polygon([*ring, ring[0]])
    plane = LocalPlane(LatLon(lat, lon))
    projected = plane.project(polygon)
    back = plane.unproject(projected)
    assert back.geom_type == "Polygon"
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(polygon), rtol=0, atol=1e-9)
    # And the plane really is in metres: 0.2° is kilometres, not degrees.
    assert np.abs(shapely.get_coordinates(projected)).max() <= 0.2 * 111_700


def test_local_plane_unproject_round_trips_across_the_antimeridian() -> None:
    plane = LocalPlane(LatLon(-16.5, 179.999))
    polygon = Polygon([(-179.99, -16.5), (-179.98, -16.5), (-179.98, -16.49), (-179.99, -16.5)])
    back = plane.unproject(plane.project(polygon))
    np.testing.assert_allclose(shapely.get_coordinates(back), shapely.get_coordinates(polygon), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------- 6. degrees_envelope


def _inside_longitudes(lon: np.ndarray, minx: float, maxx: float) -> np.ndarray:
    """Longitude containment that knows -179.9 and 180.1 are the same meridian."""
    return np.any([(minx <= lon + k) & (lon + k <= maxx) for k in (-360.0, 0.0, 360.0)], axis=0)


@PROPERTY
@given(
    # 89.5° is 55 km from the pole, so no circle here reaches it: near a pole the envelope is
    # too narrow, see the xfail below.
    lat=st.floats(min_value=-89.5, max_value=89.5),
    lon=st.floats(min_value=-180.0, max_value=180.0),
    margin_m=st.floats(min_value=1.0, max_value=50_000.0),
    fractions=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=5),
)
def test_degrees_envelope_holds_every_point_within_the_margin(
    lat: float, lon: float, margin_m: float, fractions: list[float]
) -> None:
    minx, miny, maxx, maxy = geo.degrees_envelope((lon, lat, lon, lat), margin_m)
    azimuths = np.arange(0.0, 360.0, 5.0)
    for fraction in [1.0, *fractions]:
        n = len(azimuths)
        lon2, lat2, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), azimuths, np.full(n, margin_m * fraction))
        assert np.all((miny <= lat2) & (lat2 <= maxy)), (lat2.min(), lat2.max(), miny, maxy)
        assert np.all(_inside_longitudes(lon2, minx, maxx)), (lon2, minx, maxx)


@PROPERTY
@given(
    lat=st.floats(min_value=-85.0, max_value=85.0),
    lon=st.floats(min_value=-179.0, max_value=179.0),
    width=st.floats(min_value=0.0, max_value=1.0),
    height=st.floats(min_value=0.0, max_value=1.0),
    margin_m=st.floats(min_value=1.0, max_value=50_000.0),
    azimuth=st.floats(min_value=0.0, max_value=360.0),
)
def test_degrees_envelope_holds_points_within_the_margin_of_a_box_corner(
    lat: float, lon: float, width: float, height: float, margin_m: float, azimuth: float
) -> None:
    bounds = (lon, lat, lon + width, min(lat + height, 89.0))
    minx, miny, maxx, maxy = geo.degrees_envelope(bounds, margin_m)
    for corner_lon, corner_lat in ((bounds[0], bounds[1]), (bounds[2], bounds[3])):
        lon2, lat2, _ = GEOD.fwd(corner_lon, corner_lat, azimuth, margin_m)
        assert miny <= lat2 <= maxy
        assert _inside_longitudes(np.array([lon2]), minx, maxx)[0]


@pytest.mark.parametrize(
    ("lat", "margin_m"),
    [
        pytest.param(89.9, 3_142.0, id="lat-89.9"),
        pytest.param(89.8, 22_400.0, id="circle-over-the-pole"),
        pytest.param(90.0, 1_000.0, id="at-the-pole"),
    ],
)
def test_degrees_envelope_holds_every_point_within_the_margin_near_a_pole(lat: float, margin_m: float) -> None:
    minx, miny, maxx, maxy = geo.degrees_envelope((0.0, lat, 0.0, lat), margin_m)
    azimuths = np.arange(0.0, 360.0, 1.0)
    n = len(azimuths)
    lon2, lat2, _ = GEOD.fwd(np.zeros(n), np.full(n, lat), azimuths, np.full(n, margin_m))
    assert np.all((miny <= lat2) & (lat2 <= maxy))
    outside = lon2[~_inside_longitudes(lon2, minx, maxx)]
    assert outside.size == 0, f"{outside.size} points outside lon {minx:.3f}..{maxx:.3f}, e.g. {outside[:3]}"


def test_degrees_envelope_with_zero_margin_is_the_bounds() -> None:
    assert geo.degrees_envelope((71.0, 34.0, 71.5, 34.5), 0.0) == (71.0, 34.0, 71.5, 34.5)


def test_degrees_envelope_is_tight_enough_to_be_useful() -> None:
    minx, miny, maxx, maxy = geo.degrees_envelope((71.015, 34.55, 71.015, 34.55), 1_000.0)
    # 1 km is ~0.009° of latitude and ~0.011° of longitude here; allow the 1 % padding and a bit.
    assert 34.55 - miny == pytest.approx(1_000 / 110_574 * 1.01)
    assert 0.0109 < 71.015 - minx < 0.0112
    assert maxx - 71.015 == pytest.approx(71.015 - minx)
    assert maxy - 34.55 == pytest.approx(34.55 - miny)


def test_degrees_envelope_near_the_pole_covers_every_longitude_and_stops_at_90() -> None:
    minx, miny, maxx, maxy = geo.degrees_envelope((10.0, 89.8, 10.0, 89.8), 50_000.0)
    assert maxy == 90.0
    assert miny == pytest.approx(89.8 - 50_000 / 110_574 * 1.01)
    assert maxx - minx >= 360.0


# ---------------------------------------------------------------------------- 7. to_mgrs


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        pytest.param(KANDAHAR, "42S XD 84886 24985", id="kandahar"),
        pytest.param(LUSAKA, "36L TH 23072 95774", id="south"),
        pytest.param(LatLon(5.0, -177.0), "01N EF 00000 52664", id="zone-1-zero-padded"),
    ],
)
def test_to_mgrs_formats_with_spaces(point: LatLon, expected: str) -> None:
    assert geo.to_mgrs(point) == expected


@pytest.mark.parametrize(
    ("point", "hemisphere_letters"),
    [
        pytest.param(LatLon(85.0, 10.0), "YZ", id="north-85"),
        pytest.param(LatLon(90.0, 0.0), "YZ", id="north-pole"),
        pytest.param(LatLon(-85.0, -10.0), "AB", id="south-85"),
    ],
)
def test_to_mgrs_formats_polar_ups_references(point: LatLon, hemisphere_letters: str) -> None:
    reference = geo.to_mgrs(point)
    assert reference is not None
    assert re.fullmatch(rf"[{hemisphere_letters}] [A-Z]{{2}} \d{{5}} \d{{5}}", reference), reference


def test_to_mgrs_polar_reference_is_the_place() -> None:
    reference = geo.to_mgrs(LatLon(85.0, 10.0))
    assert reference == "Z AB 96454 52981"
    lat, lon = mgrs.MGRS().toLatLon(reference.replace(" ", ""))
    assert_near(LatLon(lat, lon), LatLon(85.0, 10.0), 1.5)


def test_to_mgrs_returns_none_where_mgrs_is_undefined() -> None:
    assert geo.to_mgrs(LatLon(91.0, 0.0)) is None


# ---------------------------------------------------------------------------- 8. parse_geojson


def test_parse_geojson_accepts_a_polygon() -> None:
    geom = geo.parse_geojson({"type": "Polygon", "coordinates": [square(71.0, 34.0)]}, "area", ("Polygon",))
    assert isinstance(geom, Polygon)
    assert geom.area == pytest.approx(1.0)
    assert geom.bounds == (71.0, 34.0, 72.0, 35.0)  # lon, lat order kept


def test_parse_geojson_accepts_a_polygon_with_a_hole() -> None:
    hole = [[71.2, 34.2], [71.2, 34.4], [71.4, 34.4], [71.4, 34.2], [71.2, 34.2]]
    geom = geo.parse_geojson({"type": "Polygon", "coordinates": [square(71.0, 34.0), hole]}, "area", ("Polygon",))
    assert geom.area == pytest.approx(0.96)


def test_parse_geojson_accepts_a_multipolygon() -> None:
    obj = {"type": "MultiPolygon", "coordinates": [[square(0.0, 0.0)], [square(5.0, 5.0, 2.0)]]}
    geom = geo.parse_geojson(obj, "area", ("Polygon", "MultiPolygon"))
    assert isinstance(geom, MultiPolygon)
    assert [g.area for g in geom.geoms] == pytest.approx([1.0, 4.0])


def test_parse_geojson_accepts_a_linestring() -> None:
    geom = geo.parse_geojson({"type": "LineString", "coordinates": [[71.0, 34.0], [71.1, 34.1]]}, "route", ("LineString",))
    assert isinstance(geom, LineString)
    assert list(geom.coords) == [(71.0, 34.0), (71.1, 34.1)]


def test_parse_geojson_accepts_altitude_as_third_value() -> None:
    ring = [[0, 0, 100], [1, 0, 100], [1, 1, 100], [0, 0, 100]]
    assert geo.parse_geojson({"type": "Polygon", "coordinates": [ring]}, "area", ("Polygon",)).has_z


def test_parse_geojson_round_trips_through_to_geojson() -> None:
    obj = {"type": "Polygon", "coordinates": [square(71.0, 34.0)]}
    back = geo.to_geojson(geo.parse_geojson(obj, "area", ("Polygon",)))
    assert back["type"] == "Polygon"
    assert [list(map(list, ring)) for ring in back["coordinates"]] == obj["coordinates"]


def test_parse_geojson_accepts_exactly_max_vertices() -> None:
    geom = geo.parse_geojson({"type": "Polygon", "coordinates": [circle_ring(geo.MAX_VERTICES)]}, "area", ("Polygon",))
    assert len(geom.exterior.coords) == geo.MAX_VERTICES


@pytest.mark.parametrize(
    ("obj", "field_path", "fragments"),
    [
        pytest.param(
            {"type": "Polygon", "coordinates": [square(0, 0)[:-1]]},
            "area.coordinates.0",
            ("not closed",),
            id="unclosed-ring",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
            "area.coordinates.0",
            ("at least 4 positions",),
            id="ring-of-3",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [square(0, 0), [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4]]]},
            "area.coordinates.1",
            ("at least 4 positions",),
            id="short-hole",
        ),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [[square(0, 0)], [square(5, 5)[:-1]]]},
            "area.coordinates.1.0",
            ("not closed",),
            id="multipolygon-unclosed-second",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "area",
            ("not valid", "Self-intersection"),
            id="bow-tie",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [square(0, 0), [[5, 5], [6, 5], [6, 6], [5, 5]]]},
            "area",
            ("Hole lies outside shell",),
            id="hole-outside-shell",
        ),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [[square(0, 0)], [square(0.5, 0.5)]]},
            "area",
            ("MultiPolygon is not valid",),
            id="overlapping-multipolygon",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [0, 0], [0, 0], [0, 0]]]},
            "area",
            ("Too few points",),
            id="degenerate-ring",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 91], [0, 0]]]},
            "area.coordinates.0.2",
            ("latitude 91", "GeoJSON is lon, lat"),
            id="lat-out-of-range",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [1, 1], [0, 0]]]},
            "area.coordinates.0.1",
            ("longitude 181", "GeoJSON is lon, lat"),
            id="lon-out-of-range",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [float("nan"), 0], [1, 1], [0, 0]]]},
            "area.coordinates.0.1",
            ("not a finite number",),
            id="nan",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, float("inf")], [0, 0]]]},
            "area.coordinates.0.2",
            ("not a finite number",),
            id="inf",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [True, 0], [1, 1], [0, 0]]]},
            "area.coordinates.0.1",
            ("not a finite number",),
            id="bool",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], ["1", 0], [1, 1], [0, 0]]]},
            "area.coordinates.0.1",
            ("not a finite number",),
            id="string-coordinate",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0, 1, 2], [1, 0], [1, 1], [0, 0]]]},
            "area.coordinates.0.0",
            ("[lon, lat] or [lon, lat, alt]",),
            id="four-values",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0], [1, 0], [1, 1], [0]]]},
            "area.coordinates.0.0",
            ("[lon, lat] or [lon, lat, alt]",),
            id="one-value",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[(0, 0), (1, 0), (1, 1), (0, 0)]]},
            "area.coordinates.0.0",
            ("[lon, lat]",),
            id="tuples-not-arrays",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [square(0, 0)[0]]},
            "area.coordinates.0.0",
            ("[lon, lat]",),
            id="too-shallow",
        ),
        pytest.param({"type": "Polygon", "coordinates": []}, "area.coordinates", ("non-empty array",), id="empty-coordinates"),
        pytest.param({"type": "Polygon"}, "area.coordinates", ("non-empty array",), id="missing-coordinates"),
        pytest.param(
            {"type": "Polygon", "coordinates": ["ring"]}, "area.coordinates.0", ("non-empty array",), id="ring-is-a-string"
        ),
        pytest.param(
            {"type": "Point", "coordinates": [0, 0]},
            "area.type",
            ("'Point' is not allowed", "Polygon or MultiPolygon"),
            id="point",
        ),
        pytest.param(
            {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            "area.type",
            ("'LineString' is not allowed",),
            id="linestring-where-area-needed",
        ),
        pytest.param({"type": "Circle", "coordinates": [0, 0]}, "area.type", ("'Circle'",), id="unknown-type"),
        pytest.param({"coordinates": [square(0, 0)]}, "area.type", ("None",), id="missing-type"),
        pytest.param(
            {"type": "Polygon", "coordinates": [circle_ring(geo.MAX_VERTICES + 1)]},
            "area.coordinates",
            (f"{geo.MAX_VERTICES + 1} vertices", f"{geo.MAX_VERTICES} allowed"),
            id="too-many-vertices",
        ),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [[circle_ring(geo.MAX_VERTICES // 2)]] * 2 + [[square(5, 5)]]},
            "area.coordinates",
            ("more than the",),
            id="too-many-vertices-across-polygons",
        ),
        pytest.param(None, "area", ("GeoJSON geometry object is required",), id="none"),
        pytest.param([square(0, 0)], "area", ("GeoJSON geometry object is required",), id="bare-array"),
        pytest.param('{"type": "Polygon"}', "area", ("GeoJSON geometry object is required",), id="json-text"),
    ],
)
def test_parse_geojson_refuses_with_field_and_reason(obj: object, field_path: str, fragments: tuple[str, ...]) -> None:
    geojson_refused(obj, field_path, *fragments)


def test_parse_geojson_linestring_needs_two_positions() -> None:
    geojson_refused({"type": "LineString", "coordinates": [[0, 0]]}, "area.coordinates", "at least 2", allowed=("LineString",))


def test_parse_geojson_linestring_of_one_repeated_point_is_refused() -> None:
    geojson_refused({"type": "LineString", "coordinates": [[0, 0], [0, 0]]}, "area", "Too few points", allowed=("LineString",))


def test_parse_geojson_allowed_list_narrows_the_message() -> None:
    err = geojson_refused({"type": "Polygon", "coordinates": [square(0, 0)]}, "area.type", allowed=("LineString",))
    assert err.message == "geometry type 'Polygon' is not allowed here; use LineString"


@pytest.mark.parametrize("kind", [pytest.param(["Polygon"], id="list"), pytest.param({}, id="object")])
def test_parse_geojson_refuses_unhashable_type(kind: object) -> None:
    geojson_refused({"type": kind, "coordinates": [square(0, 0)]}, "area.type", "not allowed")


def test_parse_geojson_refuses_huge_integer_coordinate() -> None:
    geojson_refused(
        {"type": "Polygon", "coordinates": [[[0, 0], [10**400, 0], [1, 1], [0, 0]]]},
        "area.coordinates.0.1",
        "not a finite number",
    )


# ---------------------------------------------------------------------------- open bugs in parse_position


@pytest.mark.parametrize("text", [pytest.param("34,55N 71,015E", id="suffix"), pytest.param("N34,55 E71,015", id="prefix")])
def test_parse_position_refuses_decimal_comma_in_hemisphere_form(text: str) -> None:
    refused(text)


@pytest.mark.parametrize(
    ("point", "coarse"),
    [
        pytest.param(LatLon(40.0005, 69.0), "42TWK0027", id="band-S-T-edge-1km"),
        pytest.param(LatLon(40.0005, 69.0), "42TWK02", id="band-S-T-edge-10km"),
        pytest.param(LatLon(34.55, 71.999), "42SYD7527", id="zone-42-43-edge-1km"),
    ],
)
def test_parse_position_reads_truncated_mgrs_at_a_band_or_zone_edge(point: LatLon, coarse: str) -> None:
    full = geo.to_mgrs(point)
    assert full is not None
    head, e, n = full.replace(" ", "")[:5], full[-11:-6], full[-5:]
    digits = len(coarse) - 5
    assert coarse == head + e[: digits // 2] + n[: digits // 2]  # it IS the truncation
    parsed = geo.parse_position(coarse)
    assert_near(parsed.point, point, parsed.precision_m * 1.001)


def test_parse_position_mgrs_1m_reference_is_the_centre_of_its_square() -> None:
    # mgrs's own toLatLon already reads a 1 m reference at its square's centre.
    parsed = geo.parse_position("42SXD8488624985")
    lat, lon = mgrs.MGRS().toLatLon("42SXD8488624985", inDegrees=True)
    assert geo.geodesic_m(parsed.point, LatLon(lat, lon)) < 0.01
    assert parsed.precision_m == pytest.approx(math.sqrt(2) / 2)


@pytest.mark.parametrize(
    ("point", "reference"),
    [
        pytest.param(LatLon(2.0, 0.0), "31N AC 66223 21366", id="zone-30-31-edge"),
        pytest.param(LatLon(32.000001, 69.0), "42S WA 00000 40435", id="band-R-S-edge"),
    ],
)
def test_parse_position_reads_back_to_mgrs_at_a_zone_or_band_edge(point: LatLon, reference: str) -> None:
    assert geo.to_mgrs(point) == reference
    assert_near(geo.parse_position(reference).point, point, 1.5)


def test_a_line_that_turns_back_on_itself_lies_inside_its_buffer() -> None:
    """GEOS alone loses part of this buffer (collinear segments in opposite directions); ``buffered`` must not."""
    from shapely.geometry import LineString

    from deconfliction.geo import buffered

    line = LineString([(1809.1, 448.3), (-2539.3, 448.3), (-1669.6, 448.3), (1809.1, -1279.4), (1809.1, 448.3)])
    grown = buffered(line, 900.0)
    assert all(grown.contains(line.interpolate(i / 100, normalized=True)) for i in range(101))


def test_parse_geojson_holds_an_area_to_its_cap_on_the_ellipsoid() -> None:
    """A 0.1° box at 34.6° N is about 102 km²: taken under a cap of 103 km², refused under 101, naming the area."""
    small = {"type": "Polygon", "coordinates": [[[71.1, 34.6], [71.2, 34.6], [71.2, 34.7], [71.1, 34.7], [71.1, 34.6]]]}
    assert 101 < geo.area_km2(geo.parse_geojson(small, "area", ("Polygon",))) < 103
    assert geo.parse_geojson(small, "area", ("Polygon",), max_area_km2=103).area > 0
    with pytest.raises(InvalidInput, match=r"covers 10\d km², more than the 101 km² allowed") as refused:
        geo.parse_geojson(small, "area", ("Polygon",), max_area_km2=101)
    assert refused.value.field == "area"


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        pytest.param("S0.3W0.0000000080802", "30M ZE 33974 66795", id="a-millimetre-sliver-west-of-the-meridian"),
        pytest.param("S0.3000208W0.0000000080", "30M ZE 33974 66792", id="a-sliver-mgrs-names-in-the-next-zone"),
        pytest.param("56, 3", "32V JH 26049 22336", id="on-the-edge-of-norways-32V"),
        pytest.param("S0.000000021W0.0000004", None, id="mgrs-cannot-read-its-own-reference-here"),
    ],
)
def test_an_mgrs_square_that_barely_touches_its_zone_reads_back(text: str, reference: str | None) -> None:
    """Found by atheris: a place on or just inside a zone's edge, in a square whose centre lies in the next
    zone (once in a square whose part in its zone is thinner than the millimetre by which mgrs and PROJ
    disagree on where the zone ends). The reference the read-back writes must be one the parser takes, at the
    same place; where mgrs writes one it cannot read (2 mm south of the equator), the read-back gives none."""
    assert geo.to_mgrs(geo.parse_position(text).point) == reference
    holds_for(text)


def test_a_place_a_hair_from_the_meridian_or_the_equator_reads_back_without_a_sign() -> None:
    """Rounded to the read-back's seven decimals, 0.9 mm west of the meridian is 0, not -0."""
    shown = show_point(geo.parse_position("S0.00000001W0.0000000080").point)
    assert json.dumps([shown["lat"], shown["lon"]]) == "[0.0, 0.0]"
