"""``GET /v1/grid``: MGRS grid lines for a box, labelled, for a browser with no MGRS library.

Like ``/v1/cells`` it is arithmetic on what it is sent and reads nothing stored. The lines are
checked against the service's own MGRS reading: the 1 km easting line "XD 84" passes through
every grid reference whose easting starts with 84000, and the northing line "XD 24" through
those whose northing starts with 24000.
"""

from __future__ import annotations

import pytest
import shapely

from deconfliction.api.grid import MAX_LINES
from deconfliction.geo import parse_position
from tests.api.conftest import Api

BOX = "70.95,34.5,71.05,34.6"


def line(answer: dict, axis: str, label: str) -> shapely.LineString:  # type: ignore[type-arg]
    [found] = [f for f in answer["features"] if f["properties"]["axis"] == axis and f["properties"]["label"] == label]
    return shapely.LineString(found["geometry"]["coordinates"])


def test_the_1_km_lines_of_a_box_are_where_mgrs_puts_them(api: Api) -> None:
    answer = api.ok("GET", "/v1/grid", "bravo", params={"area": BOX, "spacing_m": 1000})
    assert answer["type"] == "FeatureCollection"
    assert answer["properties"] == {"zone": "42S", "spacing_m": 1000}
    axes = [f["properties"]["axis"] for f in answer["features"]]
    assert 8 <= axes.count("easting") <= 12 and 9 <= axes.count("northing") <= 13  # ~9.2 km by 11.1 km
    for reference, axis, label in (("42S XD 84000 24985", "easting", "XD 84"), ("42S XD 81685 24000", "northing", "XD 24")):
        point = parse_position(reference).point
        assert line(answer, axis, label).distance(shapely.Point(point.lon, point.lat)) < 1e-5  # about a metre
    for f in answer["features"]:
        lon, lat = f["properties"]["label_at"]
        assert 70.95 <= lon <= 71.05 and 34.5 <= lat <= 34.6
        assert f["properties"]["label_at"] == min(
            f["geometry"]["coordinates"], key=lambda c: c[1] if f["properties"]["axis"] == "easting" else c[0]
        )


def test_10_km_lines_say_one_digit(api: Api) -> None:
    answer = api.ok("GET", "/v1/grid", "bravo:viewer", params={"area": "70.5,34.2,71.5,35.0", "spacing_m": 10000})
    labels = {f["properties"]["label"] for f in answer["features"]}
    assert "XC 8" in labels  # easting 680 000 m, labelled at its south end, in square XC
    assert all(len(label) == 4 for label in labels), labels


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"area": BOX, "spacing_m": 500}, "spacing_m", "spacing_m is one of 1000, 10000, 100000"),
        ({"area": "60,30,75,40", "spacing_m": 1000}, "spacing_m", f"more than {MAX_LINES} lines"),
        ({"area": "71,34,70,35"}, "area", "west <= east"),
        ({"area": "a box"}, "area", "west,south,east,north"),
        ({"area": "10,84.5,11,85"}, "area", "between 80° S and 84° N"),
        ({}, "area", ""),
    ],
)
def test_what_cannot_be_drawn_is_refused_with_the_field(api: Api, params: dict, field: str, reason: str) -> None:  # type: ignore[type-arg]
    response = api.get("/v1/grid", "bravo", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and reason in error["message"]


def test_a_token_is_required(api: Api) -> None:
    assert api.get("/v1/grid", None, params={"area": BOX}).status_code == 401
