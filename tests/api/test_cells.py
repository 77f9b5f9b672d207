"""``GET /v1/cells``: the outline of the H3 cells coarse assets are shown as, for a browser with no H3 library.

The route is arithmetic on the ids it is sent: it reads nothing stored, so it can say nothing
the caller did not already hold. Ids are checked exactly, and a request is capped.
"""

from __future__ import annotations

import h3
import pytest
import shapely

from deconfliction.api.cells import MAX_CELLS
from tests.api.conftest import Api

CELL = "872093028ffffff"  # the resolution-7 cell of 34.45 N, 70.85 E


def test_a_cell_is_answered_with_its_outline_as_geojson(api: Api) -> None:
    answer = api.ok("GET", "/v1/cells", "bravo", params={"ids": CELL})
    assert answer["type"] == "FeatureCollection"
    [feature] = answer["features"]
    assert feature["id"] == CELL and feature["properties"] == {"cell": CELL, "resolution": 7}
    ring = feature["geometry"]["coordinates"][0]
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 7 and ring[0] == ring[-1]
    outline = shapely.Polygon(ring)  # [lon, lat], as GeoJSON has it
    assert outline.contains(shapely.Point(70.85, 34.45))
    assert outline.area == pytest.approx(shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(CELL)]).area)


def test_many_cells_in_one_request_in_order_and_once_each(api: Api) -> None:
    other = h3.latlng_to_cell(34.6, 71.1, 7)
    answer = api.ok("GET", "/v1/cells", "bravo:viewer", params={"ids": f"{other}, {CELL},{other}"})
    assert [f["id"] for f in answer["features"]] == [other, CELL]


@pytest.mark.parametrize(
    ("ids", "reason"),
    [
        ("", "id 1 is empty"),
        (f"{CELL},,{CELL}", "id 2 is empty"),
        ("not-a-cell", "'not-a-cell' (id 1) is not an H3 cell id"),
        (CELL.upper(), "is not an H3 cell id: 15 lowercase hex digits"),
        (f"{CELL},872093028fffff", "(id 2) is not an H3 cell id"),  # 14 digits
        ("8f2093028ffffff", "is not an H3 cell id"),  # hex, but no cell
        (",".join([CELL] * (MAX_CELLS + 1)), f"at most {MAX_CELLS} in one request"),
    ],
)
def test_what_is_not_a_cell_id_is_refused_with_the_field_and_the_reason(api: Api, ids: str, reason: str) -> None:
    response = api.get("/v1/cells", "bravo", params={"ids": ids})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "ids" and error["code"] == "invalid_input"
    assert reason in error["message"]


def test_the_ids_are_required_and_so_is_a_token(api: Api) -> None:
    assert api.get("/v1/cells", "bravo").json()["error"]["field"] == "ids"
    assert api.get("/v1/cells", None, params={"ids": CELL}).status_code == 401
