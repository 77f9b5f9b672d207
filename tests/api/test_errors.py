"""Refusals: one shape for every one of them, a field that names what is wrong, and nothing changed.

Every refusal body is exactly ``{"error": {"code": str, "message": str, "field": str | None}}``
(pinned by ``refusal`` in conftest). The table below is sent against one shared picture: a
refusal changes nothing, and each case checks that the picture version did not move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from deconfliction.api.psi import router as psi_router
from deconfliction.api.routes import router
from deconfliction.api.stream import router as stream_router
from tests.api.conftest import ALFA_LAND, Api, add_parties, at, box, iso, refusal, running_api

SELF_CROSSING = {"type": "Polygon", "coordinates": [[[71.1, 34.5], [71.2, 34.6], [71.2, 34.5], [71.1, 34.6], [71.1, 34.5]]]}
AREA = box(71.1, 34.6, 71.2, 34.7)
LINE = {"type": "LineString", "coordinates": [[71.1, 34.6], [71.2, 34.7]]}
WINDOW = {"start": iso(at(0)), "end": iso(at(3600))}
NAIVE = "2026-01-01T00:00:00"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One picture for the whole refusal table: alfa's unit ``u1`` (reported at T0) and site ``s1``."""
    with running_api(tmp_path_factory.mktemp("errors") / "t.db") as api:
        add_parties(api)
        api.asset("alfa", "u1", "unit", position="34.6, 71.1")
        api.asset("alfa", "s1", "site", position="34.61, 71.1")
        api.aor("alfa", "east", ALFA_LAND)
        yield api


BELT = box(179.9, 10.0, -179.9, 10.1)
"""A box meant to straddle 180°, 22 km wide; read as written, a belt 11 km tall round the rest of the globe."""
ACROSS = "area.coordinates"


def case(who: str, method: str, path: str, body: Any, field: str | None, code: str = "invalid_input", *, id: str) -> Any:
    return pytest.param(who, method, path, body, field, code, id=id)


def report(**extra: Any) -> dict[str, Any]:
    return {"asset": "u1", "position": "34.6, 71.1", **extra}


def check(**extra: Any) -> dict[str, Any]:
    return {"position": "34.6, 71.1", "kind": "fires", **extra}


def zone(**extra: Any) -> dict[str, Any]:
    return {"id": "z9", "kind": "no_fire_area", "area": AREA, **extra}


def raw(text: str) -> bytes:
    """A body sent as it is: JSON with NaN or Infinity, which json.dumps would not write."""
    return text.encode()


REFUSALS = [
    # -- fields nobody asked for: named, never ignored
    case("alfa", "POST", "/v1/reports", report(colour="red"), "colour", id="unknown-field-report"),
    case("alfa", "POST", "/v1/assets", {"id": "a9", "kind": "site", "colour": "red"}, "colour", id="unknown-field-asset"),
    case(
        "alfa", "POST", "/v1/reports/batch", {"reports": [report(), report(extra=1)]}, "reports.1.extra", id="unknown-field-batch"
    ),
    case("alfa", "POST", "/v1/reports/batch", {"reports": [], "dry_run": True}, "dry_run", id="unknown-field-batch-top"),
    case("alfa", "POST", "/v1/checks", check(window={**WINDOW, "tz": "UTC"}), "window.tz", id="unknown-field-window"),
    case(
        "alfa",
        "POST",
        "/v1/aors",
        {"id": "a9", "area": AREA, "freshness_s": 60, "confirmed": True},
        "confirmed",
        id="unknown-field-aor",
    ),
    case("admin", "POST", "/v1/parties", {"id": "charlie", "name": "C", "motto": "x"}, "motto", id="unknown-field-party"),
    case("admin", "POST", "/v1/parties/alfa/tokens", {"role": "liaison", "party": "bravo"}, "party", id="unknown-field-token"),
    case("admin", "PUT", "/v1/territories/alfa", {"area": ALFA_LAND, "party": "bravo"}, "party", id="unknown-field-territory"),
    # -- missing fields
    case("alfa", "POST", "/v1/reports", {"asset": "u1"}, "position", id="missing-position"),
    case("alfa", "POST", "/v1/assets", {"id": "a9"}, "kind", id="missing-kind"),
    case("alfa", "POST", "/v1/checks", {"position": "34.6, 71.1"}, "kind", id="missing-check-kind"),
    case("alfa", "POST", "/v1/aors", {"id": "a9", "area": AREA}, "freshness_s", id="missing-freshness"),
    # -- wrong enums
    case("alfa", "POST", "/v1/assets", {"id": "a9", "kind": "vehicle"}, "kind", id="enum-asset-kind"),
    case("alfa", "POST", "/v1/zones", zone(kind="kill_box"), "kind", id="enum-zone-kind"),
    case("alfa", "POST", "/v1/checks", check(kind="artillery"), "kind", id="enum-check-kind"),
    case("alfa", "POST", "/v1/assets", {"id": "a9", "kind": "site", "disclosure": "secret"}, "disclosure", id="enum-disclosure"),
    case("admin", "POST", "/v1/parties/alfa/tokens", {"role": "superuser"}, "role", id="enum-role"),
    # -- times
    case("alfa", "POST", "/v1/reports", report(time=NAIVE), "time", id="naive-report-time"),
    case(
        "alfa",
        "POST",
        "/v1/assets",
        {"id": "a9", "kind": "unit", "position": "34.6, 71.1", "time": NAIVE},
        "time",
        id="naive-asset-time",
    ),
    case("alfa", "POST", "/v1/reports/batch", {"reports": [report(time=NAIVE)]}, "reports.0.time", id="naive-batch-time"),
    case(
        "alfa", "POST", "/v1/checks", check(window={"start": NAIVE, "end": iso(at(60))}), "window.start", id="naive-window-start"
    ),
    case("alfa", "POST", "/v1/zones", zone(window={"start": iso(at(0)), "end": NAIVE}), "window.end", id="naive-window-end"),
    case("alfa", "POST", "/v1/reports", report(time="yesterday"), "time", id="time-not-iso"),
    case(
        "alfa",
        "POST",
        "/v1/checks",
        check(window={"start": iso(at(60)), "end": iso(at(0))}),
        "window.end",
        id="check-window-backwards",
    ),
    case(
        "alfa",
        "POST",
        "/v1/zones",
        zone(window={"start": iso(at(60)), "end": iso(at(0))}),
        "window.end",
        id="zone-window-backwards",
    ),
    case(
        "alfa",
        "POST",
        "/v1/checks",
        check(window={"start": iso(at(-7200)), "end": iso(at(-3600))}),
        "window.end",
        id="check-window-past",
    ),
    case("alfa", "POST", "/v1/reports", report(time=iso(at(301))), "time", id="report-time-future"),
    # -- numbers that are not finite: sent raw, refused as input, never a 500
    case(
        "alfa",
        "POST",
        "/v1/reports",
        raw('{"asset":"u1","position":"34.5, 71.0","uncertainty_m": NaN}'),
        "uncertainty_m",
        id="nan-uncertainty",
    ),
    case(
        "alfa",
        "POST",
        "/v1/reports",
        raw('{"asset":"u1","position":"34.5, 71.0","uncertainty_m": Infinity}'),
        "uncertainty_m",
        id="inf-uncertainty",
    ),
    case(
        "alfa",
        "POST",
        "/v1/reports",
        raw('{"asset":"u1","position":"34.5, 71.0","stale_after_s": NaN}'),
        "stale_after_s",
        id="nan-stale-after",
    ),
    case(
        "alfa",
        "POST",
        "/v1/reports/batch",
        raw('{"reports":[{"asset":"u1","position":"34.5, 71.0","uncertainty_m":-Infinity}]}'),
        "reports.0.uncertainty_m",
        id="inf-batch",
    ),
    case(
        "alfa", "POST", "/v1/checks", raw('{"position":"34.6, 71.1","kind":"fires","radius_m":NaN}'), "radius_m", id="nan-radius"
    ),
    case(
        "alfa",
        "POST",
        "/v1/checks",
        raw('{"position":"34.6, 71.1","kind":"air","altitude_m":[0, NaN]}'),
        "altitude_m.1",
        id="nan-altitude",
    ),
    case(
        "alfa",
        "POST",
        "/v1/zones",
        raw(json.dumps(zone(kind="route", area=LINE))[:-1] + ', "width_m": NaN}'),
        "width_m",
        id="nan-width",
    ),
    case(
        "alfa",
        "POST",
        "/v1/aors",
        raw(f'{{"id":"a9","area":{json.dumps(AREA)},"freshness_s":Infinity}}'),
        "freshness_s",
        id="inf-freshness",
    ),
    case(
        "alfa",
        "POST",
        "/v1/checks",
        raw('{"kind":"fires","area":{"type":"Polygon","coordinates":[[[71.1,34.6],[NaN,34.6],[71.2,34.7],[71.1,34.6]]]}}'),
        "area.coordinates.0.1",
        id="nan-coordinate",
    ),
    case(
        "admin",
        "POST",
        "/v1/parties",
        raw('{"id":"charlie","name":"C","stale_after_s":NaN}'),
        "stale_after_s",
        id="nan-party-stale",
    ),
    # -- out of range
    case("alfa", "POST", "/v1/reports", report(uncertainty_m=-1), "uncertainty_m", id="negative-uncertainty"),
    case("alfa", "POST", "/v1/reports", report(uncertainty_m=1e7), "uncertainty_m", id="huge-uncertainty"),
    case("alfa", "POST", "/v1/reports", report(stale_after_s=-60), "stale_after_s", id="negative-stale-after"),
    case("alfa", "POST", "/v1/reports", report(stale_after_s=0), "stale_after_s", id="zero-stale-after"),
    case("alfa", "POST", "/v1/checks", check(radius_m=-1), "radius_m", id="negative-radius"),
    case("alfa", "POST", "/v1/checks", check(radius_m=1e9), "radius_m", id="huge-radius"),
    case("alfa", "POST", "/v1/zones", zone(kind="route", area=LINE, width_m=-10), "width_m", id="negative-width"),
    case("alfa", "POST", "/v1/aors", {"id": "a9", "area": AREA, "freshness_s": -60}, "freshness_s", id="negative-freshness"),
    case("alfa", "POST", "/v1/aors", {"id": "a9", "area": AREA, "freshness_s": 0}, "freshness_s", id="zero-freshness"),
    case("alfa", "POST", "/v1/checks", check(altitude_m=[500, 100]), "altitude_m", id="altitude-backwards"),
    case(
        "admin",
        "POST",
        "/v1/parties",
        {"id": "charlie", "name": "C", "stale_after_s": -1},
        "stale_after_s",
        id="negative-party-stale",
    ),
    # -- geometry
    case("alfa", "POST", "/v1/zones", zone(area=SELF_CROSSING), "area", id="self-crossing-zone"),
    case("alfa", "POST", "/v1/checks", {"kind": "fires", "area": SELF_CROSSING}, "area", id="self-crossing-check"),
    case("alfa", "POST", "/v1/aors", {"id": "a9", "area": SELF_CROSSING, "freshness_s": 60}, "area", id="self-crossing-aor"),
    case("admin", "PUT", "/v1/territories/alfa", {"area": SELF_CROSSING}, "area", id="self-crossing-territory"),
    # -- shapes meant to cross the antimeridian: read as written, each edge from 179.9° to -179.9° goes the
    # long way round the globe (a thin one would pass the area limit as a belt round the Earth, missing the
    # very place it was drawn for): refused, to be split at 180°
    case("alfa", "POST", "/v1/zones", zone(area=box(-179.5, 10.0, 179.5, 10.5)), ACROSS, id="antimeridian-the-long-way"),
    case("alfa", "POST", "/v1/zones", zone(area=BELT), ACROSS, id="antimeridian-thin-belt-zone"),
    case("alfa", "POST", "/v1/checks", {"kind": "fires", "area": BELT}, ACROSS, id="antimeridian-check"),
    case("admin", "PUT", "/v1/territories/alfa", {"area": BELT}, ACROSS, id="antimeridian-territory"),
    case(
        "alfa",
        "POST",
        "/v1/zones",
        zone(kind="route", width_m=100, area={"type": "LineString", "coordinates": [[179.9, 10.0], [-179.9, 10.0]]}),
        ACROSS,
        id="antimeridian-route",
    ),
    # -- areas past max_area_km2 (500,000 km²): a box of 10 degrees (about 1.1 million km² here)
    case("alfa", "POST", "/v1/zones", zone(area=box(65.0, 30.0, 75.0, 40.0)), "area", id="huge-zone"),
    case("alfa", "POST", "/v1/checks", {"kind": "fires", "area": box(65.0, 30.0, 75.0, 40.0)}, "area", id="huge-check"),
    case("alfa", "POST", "/v1/aors", {"id": "a9", "area": box(65.0, 30.0, 75.0, 40.0), "freshness_s": 60}, "area", id="huge-aor"),
    case(
        "alfa",
        "POST",
        "/v1/zones",
        zone(area={"type": "Polygon", "coordinates": [[[71.1, 34.6], [71.2, 34.6], [71.2, 34.7], [71.1, 34.7]]]}),
        "area.coordinates.0",
        id="ring-not-closed",
    ),
    case("alfa", "POST", "/v1/zones", zone(area=box(34.6, 71.1, 34.7, 95.0)), "area.coordinates.0.2", id="lat-out-of-range"),
    case("alfa", "POST", "/v1/zones", zone(area={"type": "Point", "coordinates": [71.1, 34.6]}), "area.type", id="point-as-area"),
    case("alfa", "POST", "/v1/zones", zone(area="POLYGON((71 34, 72 34, 72 35, 71 34))"), "area", id="wkt-not-geojson"),
    # -- a check asks about a position or an area, not both, not neither
    case("alfa", "POST", "/v1/checks", check(area=AREA), "position", id="position-and-area"),
    case("alfa", "POST", "/v1/checks", {"kind": "fires"}, "position", id="neither-position-nor-area"),
    case("alfa", "POST", "/v1/checks", {"kind": "fires", "area": AREA, "radius_m": 100}, "radius_m", id="radius-with-area"),
    # -- positions: never guessed
    case("alfa", "POST", "/v1/reports", report(position="34.6; 71.1"), "position", "invalid_position", id="position-semicolon"),
    case("alfa", "POST", "/v1/reports", report(position="34.6 71.1"), "position", "invalid_position", id="position-no-separator"),
    case("alfa", "POST", "/v1/reports", report(position="95, 71.1"), "position", "invalid_position", id="latitude-over-90"),
    case(
        "alfa",
        "POST",
        "/v1/reports",
        report(position="42S XD 8488 24985"),
        "position",
        "invalid_position",
        id="mgrs-unequal-digits",
    ),
    case("alfa", "POST", "/v1/reports", report(position=""), "position", "invalid_position", id="position-empty"),
    case(
        "alfa",
        "POST",
        "/v1/checks",
        check(position="34°61'00\"N 71°06'00\"E"),
        "position",
        "invalid_position",
        id="dms-minutes-over-60",
    ),
    case("alfa", "GET", "/v1/readback?position=somewhere", None, "position", "invalid_position", id="readback-garbage"),
    # -- ids and names
    case("alfa", "POST", "/v1/assets", {"id": "Post One", "kind": "site"}, "id", id="id-not-lowercase"),
    case("alfa", "POST", "/v1/assets", {"id": "a9", "kind": "site", "name": "x" * 201}, "name", id="name-too-long"),
    case("admin", "POST", "/v1/parties", {"id": "ALFA", "name": "Alfa"}, "id", id="party-id-upper"),
    # ids that look like others: a Cyrillic о, a fullwidth ｕ, a zero-width joiner, a ligature
    case("alfa", "POST", "/v1/assets", {"id": "p\u043est", "kind": "site"}, "id", id="id-cyrillic-o"),
    case("alfa", "POST", "/v1/reports", report(asset="\uff551"), "asset", "not_found", id="id-fullwidth-u"),
    case("alfa", "POST", "/v1/assets", {"id": "u\u200d1", "kind": "site"}, "id", id="id-zero-width-joiner"),
    case("alfa", "POST", "/v1/zones", zone(id="\ufb01re-line"), "id", id="id-ligature"),
    case("admin", "POST", "/v1/parties", {"id": "\u0430lfa", "name": "Alfa"}, "id", id="party-id-cyrillic-a"),
    # -- bodies that are not objects
    case("alfa", "POST", "/v1/reports", [report()], None, id="body-is-a-list"),
    case("alfa", "POST", "/v1/reports/batch", {"reports": {"asset": "u1"}}, "reports", id="batch-not-a-list"),
    # -- other statuses in the same shape
    case("alfa", "POST", "/v1/reports", report(asset="ghost"), "asset", "not_found", id="404-unknown-asset"),
    case("alfa", "POST", "/v1/assets", {"id": "u1", "kind": "unit"}, "id", "already_exists", id="409-duplicate"),
    case("alfa", "POST", "/v1/reports", report(time=iso(at(-60))), "time", "out_of_order", id="409-out-of-order"),
    case("alfa:viewer", "POST", "/v1/reports", report(), None, "forbidden", id="403-viewer"),
    case("alfa", "DELETE", "/v1/zones/none", None, "id", "not_found", id="404-zone"),
]

STATUS = {
    "invalid_input": 422,
    "invalid_position": 422,
    "not_found": 404,
    "already_exists": 409,
    "out_of_order": 409,
    "forbidden": 403,
}


@pytest.mark.parametrize(("who", "method", "path", "body", "field", "code"), REFUSALS)
def test_errors_refusal_shape_names_the_field(
    shared: Api, who: str, method: str, path: str, body: Any, field: str | None, code: str
) -> None:
    before = shared.ok("GET", "/v1/picture", "admin")
    if isinstance(body, bytes):
        response = shared.call(method, path, who, content=body, headers={"Content-Type": "application/json"})
    elif body is None:
        response = shared.call(method, path, who)
    else:
        response = shared.call(method, path, who, json=body)
    refusal(response, STATUS[code], code, field)
    assert shared.ok("GET", "/v1/picture", "admin") == before


def test_errors_unknown_field_message_says_so(shared: Api) -> None:
    error = refusal(shared.post("/v1/reports", "alfa", json=report(colour="red")), 422, "invalid_input", "colour")
    assert "unknown field" in error["message"]


def test_errors_position_refusal_says_what_is_accepted(shared: Api) -> None:
    error = refusal(shared.post("/v1/reports", "alfa", json=report(position="34.6; 71.1")), 422, "invalid_position", "position")
    assert "MGRS" in error["message"] and "34.6; 71.1" in error["message"]


def test_errors_batch_over_the_limit_names_reports(shared: Api) -> None:
    limit = shared.service.settings.max_batch
    body = {"reports": [report()] * (limit + 1)}
    error = refusal(shared.post("/v1/reports/batch", "alfa", json=body), 422, "invalid_input", "reports")
    assert str(limit) in error["message"]


# ---------------------------------------------------------------------------- OpenAPI


def test_openapi_lists_every_v1_route_with_the_error_body(shared: Api) -> None:
    doc = shared.ok("GET", "/openapi.json", None)
    routes = [*router.routes, *stream_router.routes, *psi_router.routes]
    served = {(method.lower(), route.path) for route in routes if isinstance(route, APIRoute) for method in route.methods or ()}
    documented = {(method, path) for path, ops in doc["paths"].items() if path.startswith("/v1") for method in ops}
    assert len(served) >= 20
    assert documented == served
    for method, path in sorted(documented):
        responses = doc["paths"][path][method]["responses"]
        for status in ("401", "403", "422"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message", "field"}


def test_openapi_request_bodies_forbid_unknown_fields(shared: Api) -> None:
    schemas = shared.ok("GET", "/openapi.json", None)["components"]["schemas"]
    for name in (
        "AssetIn",
        "ReportIn",
        "ReportBatchIn",
        "ZoneIn",
        "AorIn",
        "CheckIn",
        "PartyIn",
        "TokenIn",
        "TerritoryIn",
        "WindowIn",
    ):
        assert schemas[name].get("additionalProperties") is False, name


# ---------------------------------------------------------------------------- bugs found


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [pytest.param("GET", "/v1/nothing-here", 404, id="unknown-path"), pytest.param("PUT", "/v1/picture", 405, id="wrong-method")],
)
def test_errors_unknown_route_has_the_error_shape(shared: Api, method: str, path: str, status: int) -> None:
    refusal(shared.call(method, path, "alfa"), status)


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        pytest.param("alfa", "/v1/reports", report(uncertainty_m=None), id="report-uncertainty"),
        pytest.param("alfa", "/v1/reports", report(stale_after_s=None), id="report-stale-after"),
        pytest.param(
            "alfa",
            "/v1/assets",
            {"id": "n1", "kind": "unit", "position": "34.6, 71.1", "uncertainty_m": None},
            id="asset-uncertainty",
        ),
        pytest.param("alfa", "/v1/checks", check(radius_m=None), id="check-radius"),
        pytest.param("admin", "/v1/parties", {"id": "charlie", "name": "C", "stale_after_s": None}, id="party-stale-after"),
    ],
)
def test_errors_explicit_null_for_optional_field_means_not_given(api: Api, who: str, path: str, body: dict[str, Any]) -> None:
    api.asset("alfa", "u1", "unit")
    response = api.post(path, who, json=body)
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("who", "path", "body", "field"),
    [
        pytest.param("alfa", "/v1/reports", report(stale_after_s=1e12), "stale_after_s", id="report-stale-after"),
        pytest.param("alfa", "/v1/reports", report(stale_after_s=1e16), "stale_after_s", id="report-stale-after-timedelta"),
        pytest.param(
            "alfa",
            "/v1/checks",
            check(window={"start": "0001-01-01T00:00:00+14:00", "end": iso(at(60))}),
            "window.start",
            id="window-start-before-year-1-utc",
        ),
    ],
)
def test_errors_out_of_range_time_is_refused_not_500(
    api: Api, lenient: TestClient, who: str, path: str, body: dict[str, Any], field: str
) -> None:
    api.asset("alfa", "u1", "unit")
    refusal(lenient.post(path, json=body, headers=api.headers(who)), 422, "invalid_input", field)


def test_errors_durations_over_a_year_are_refused_up_front(api: Api, lenient: TestClient) -> None:
    """A promise longer than a year is refused before it can overflow date arithmetic later."""
    version = api.version()
    made = lenient.post("/v1/parties", json={"id": "charlie", "name": "C", "stale_after_s": 1e12}, headers=api.headers("admin"))
    refusal(made, 422, "invalid_input", "stale_after_s")
    body = {"id": "forever", "area": ALFA_LAND, "freshness_s": 1e12}
    refusal(lenient.post("/v1/aors", json=body, headers=api.headers("alfa")), 422, "invalid_input", "freshness_s")
    assert api.version() == version
    assert lenient.post("/v1/checks", json=check(), headers=api.headers("bravo")).status_code == 200


def test_errors_malformed_json_names_no_field(shared: Api) -> None:
    response = shared.post("/v1/reports", "alfa", content=b'{"asset":"u1",', headers={"Content-Type": "application/json"})
    error = refusal(response, 422, "invalid_input")
    assert error["field"] is None and "not valid JSON" in error["message"], error


def test_errors_malformed_json_is_a_422_in_the_shape(shared: Api) -> None:
    response = shared.post("/v1/reports", "alfa", content=b'{"asset":"u1",', headers={"Content-Type": "application/json"})
    refusal(response, 422, "invalid_input")


def test_errors_body_not_json_is_a_422_in_the_shape(shared: Api) -> None:
    response = shared.post("/v1/reports", "alfa", content=b"asset=u1", headers={"Content-Type": "text/plain"})
    refusal(response, 422, "invalid_input")


def _raw_post(api: Api, path: str, content: Any) -> Any:
    headers = {"Authorization": f"Bearer {api.token('alfa')}", "Content-Type": "application/json"}
    return api.client.post(path, content=content, headers=headers)


def test_errors_a_body_past_the_limit_is_413_and_changes_nothing(shared: Api, caplog: pytest.LogCaptureFixture) -> None:
    """By its Content-Length, and when it streams in without one (chunked): refused before the rest is read, and
    logged as a warning either way."""
    caplog.set_level(logging.INFO, logger="deconfliction")
    version = shared.version()
    huge = b'{"id": "x", "kind": "unit", "name": "' + b"a" * (9 * 2**20) + b'"}'
    refusal(_raw_post(shared, "/v1/assets", huge), 413, "too_large")
    chunks = (b"[" if i == 0 else b'"' + b"a" * 2**20 + b'",' for i in range(10))
    assert "at most 8388608 bytes" in refusal(_raw_post(shared, "/v1/reports", chunks), 413, "too_large")["message"]
    assert shared.version() == version
    logged = [r for r in caplog.records if "413 too_large" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.WARNING] * 2
    assert logged[0].getMessage().startswith("refused POST /v1/assets from ")


@pytest.mark.parametrize("path", ["/v1/assets", "/v1/reports", "/v1/zones", "/v1/checks"])
def test_errors_json_nested_past_reason_is_422_not_a_server_error(shared: Api, path: str) -> None:
    version = shared.version()
    deep = b"[" * 100_000 + b"]" * 100_000
    assert refusal(_raw_post(shared, path, deep), 422, "invalid_input", None)["message"].startswith(
        ("the body could not be read as JSON", "the body is not valid JSON")
    )
    assert shared.version() == version


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/events?cursor=12.0&limit=1", {}),
        ("/v1/events?limit=1", {"Last-Event-ID": "1e1"}),
        ("/v1/ledger/entries?start=0.0", {}),
    ],
)
def test_errors_a_whole_number_is_written_in_digits(shared: Api, path: str, headers: dict[str, str]) -> None:
    """Found by the long hostile walk: "12.0" was read as cursor 12. A number that is not plainly whole is refused."""
    response = shared.client.get(path, headers={"Authorization": f"Bearer {shared.token('alfa')}", **headers})
    assert "whole number" in refusal(response, 422, "invalid_input")["message"]
