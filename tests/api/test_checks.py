"""Checks end to end over HTTP: conflict, unknown or clear, and why."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyproj import Geod

from deconfliction.app import _route_path
from tests.api.conftest import ALFA_LAND, BRAVO_LAND, Api, at, box, iso, refusal

WGS84 = Geod(ellps="WGS84")
SITE = (34.6, 71.1)  # alfa's border post, 9 km east of the meridian


def offset(lat: float, lon: float, metres: float, bearing: float = 0.0) -> str:
    """The position ``metres`` from (lat, lon) along ``bearing`` (degrees from north), as text."""
    lon2, lat2, _ = WGS84.fwd(lon, lat, bearing, metres)
    return f"{lat2:.7f}, {lon2:.7f}"


def found(answer: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(c["party"], c.get("id")) for c in answer["conflicts"]]


@pytest.fixture
def covered(api: Api) -> Api:
    """Both parties vouch for all their land (fresh for an hour); alfa has a site at SITE."""
    api.aor("alfa", "alfa-all", ALFA_LAND, freshness_s=3600)
    api.aor("bravo", "bravo-all", BRAVO_LAND, freshness_s=3600)
    api.asset("alfa", "post", "site", position=f"{SITE[0]}, {SITE[1]}", name="Post Volcano")
    return api


# ---------------------------------------------------------------------------- assets in the buffer


@pytest.mark.parametrize(
    ("kind", "metres", "status"),
    [
        pytest.param("fires", 1000, "conflict", id="fires-1000m"),
        pytest.param("fires", 1450, "conflict", id="fires-1450m"),
        pytest.param("fires", 1600, "clear", id="fires-1600m"),
        pytest.param("air", 900, "conflict", id="air-900m"),
        pytest.param("air", 1100, "clear", id="air-1100m"),
        pytest.param("ground", 150, "conflict", id="ground-150m"),
        pytest.param("ground", 250, "clear", id="ground-250m"),
        pytest.param("other", 50, "conflict", id="other-50m"),
        pytest.param("other", 150, "clear", id="other-150m"),
    ],
)
def test_check_another_partys_site_within_the_kinds_buffer(covered: Api, kind: str, metres: float, status: str) -> None:
    answer = covered.check("bravo", position=offset(*SITE, metres, 45), kind=kind)
    assert answer["status"] == status
    assert answer["buffer_m"] == {"fires": 1500, "air": 1000, "ground": 200, "other": 100}[kind]
    assert answer["gaps"] == []
    if status == "conflict":
        (conflict,) = answer["conflicts"]
        assert conflict["party"] == "alfa" and conflict["id"] == "post" and conflict["object"] == "site"
        assert conflict["name"] == "Post Volcano" and conflict["disclosure"] == "exact"
        assert conflict["distance_m"] == pytest.approx(metres, abs=2)
        assert (conflict["position"]["lat"], conflict["position"]["lon"]) == SITE
    else:
        assert answer["conflicts"] == []


def test_check_answer_has_the_readback_and_the_window(covered: Api) -> None:
    answer = covered.check("bravo", position="34.7, 70.9", kind="fires")
    assert answer["kind"] == "fires"
    assert answer["position"]["lat"] == 34.7 and answer["position"]["lon"] == 70.9
    assert answer["position"]["mgrs"].startswith("42S ")
    assert answer["border"]["territory"] == "bravo"
    assert answer["border"]["distance_m"] == pytest.approx(WGS84.inv(70.9, 34.7, 71.0, 34.7)[2], rel=0.005)
    assert answer["asked_at"] == at(0).isoformat()
    assert answer["window"] == {"start": at(0).isoformat(), "end": at(0).isoformat()}


def test_check_uncertainty_widens_an_asset(covered: Api) -> None:
    covered.asset("alfa", "vague", "site", position=offset(*SITE, 5000, 180), uncertainty_m=600)
    near_vague = offset(*SITE, 5000 + 1900, 180)
    assert found(covered.check("bravo", position=near_vague, kind="fires")) == [("alfa", "vague")]


def test_check_radius_widens_the_question(covered: Api) -> None:
    where = offset(*SITE, 2500, 90)
    assert covered.check("bravo", position=where, kind="fires")["status"] == "clear"
    answer = covered.check("bravo", position=where, radius_m=1000, kind="fires")
    assert found(answer) == [("alfa", "post")]
    assert answer["conflicts"][0]["distance_m"] == pytest.approx(1500, abs=2)


def test_check_conflicts_are_sorted_nearest_first(covered: Api) -> None:
    covered.asset("alfa", "near", "site", position=offset(*SITE, 300, 0))
    covered.asset("bravo", "far", "site", position=offset(*SITE, 1200, 0))
    answer = covered.check("bravo", position=offset(*SITE, 400, 0), kind="fires")
    assert found(answer) == [("alfa", "near"), ("alfa", "post"), ("bravo", "far")]
    distances = [c["distance_m"] for c in answer["conflicts"]]
    assert distances == sorted(distances)


def test_check_own_unit_counts_as_conflict(covered: Api) -> None:
    """A target grid equal to the requester's own position (Kandahar 2001) is a conflict."""
    covered.asset("bravo", "tf-alpha", "unit", position="34.545, 70.98", uncertainty_m=50)
    answer = covered.check("bravo", position="34.545, 70.98", kind="fires")
    assert answer["status"] == "conflict"
    (conflict,) = answer["conflicts"]
    assert (conflict["party"], conflict["id"], conflict["object"]) == ("bravo", "tf-alpha", "unit")
    assert conflict["distance_m"] == 0


def test_check_stale_unit_is_unknown_not_clear(covered: Api) -> None:
    covered.asset("bravo", "patrol", "unit", position="34.7, 70.9", stale_after_s=600)
    assert covered.check("alfa", position="34.7, 70.9", kind="fires")["status"] == "conflict"
    covered.clock.advance_to(at(600))
    answer = covered.check("alfa", position="34.7, 70.9", kind="fires")
    assert answer["status"] == "unknown"
    assert answer["conflicts"] == []
    (gap,) = answer["gaps"]
    assert gap["party"] == "bravo" and gap["reason"] == "stale_asset" and gap["since"] == at(600).isoformat()
    assert gap["asset"]["id"] == "patrol"


# ---------------------------------------------------------------------------- who vouches for the area


def test_check_far_from_everything_in_fresh_aors_is_clear(covered: Api) -> None:
    for who, where in (("bravo", "34.8, 71.2"), ("alfa", "34.4, 70.8"), ("bravo", "34.6, 71.0")):
        answer = covered.check(who, position=where, kind="fires")
        assert (answer["status"], answer["conflicts"], answer["gaps"]) == ("clear", [], []), where


def test_check_in_another_territory_outside_its_aor_is_unknown(api: Api) -> None:
    api.aor("alfa", "north", box(71.0, 34.7, 71.3, 34.9))
    assert api.check("bravo", position="34.8, 71.2", kind="fires")["status"] == "clear"
    answer = api.check("bravo", position="34.5, 71.2", kind="fires")
    assert answer["status"] == "unknown"
    assert answer["conflicts"] == []
    assert answer["gaps"] == [{"party": "alfa", "reason": "no_aor", "since": None}]


def test_check_in_own_territory_needs_no_own_aor(api: Api) -> None:
    """A party is not a gap in its own land; only the other parties' pictures are."""
    assert api.check("bravo", position="34.5, 70.8", kind="ground")["status"] == "clear"


def test_check_buffer_across_the_border_needs_the_neighbours_aor(api: Api) -> None:
    api.aor("bravo", "bravo-all", BRAVO_LAND)
    at_border = offset(34.6, 71.0, 1000, 270)  # 1 km west of the meridian: the fires buffer reaches alfa's land
    answer = api.check("bravo", position=at_border, kind="fires")
    assert answer["status"] == "unknown"
    assert [g["party"] for g in answer["gaps"]] == ["alfa"]
    assert api.check("bravo", position=at_border, kind="ground")["status"] == "clear"


def test_check_with_lapsed_aor_is_unknown(covered: Api) -> None:
    where = "34.8, 71.2"
    assert covered.check("bravo", position=where, kind="fires")["status"] == "clear"
    covered.clock.advance_to(at(3600))
    answer = covered.check("bravo", position=where, kind="fires")
    assert answer["status"] == "unknown"
    assert answer["gaps"] == [{"party": "alfa", "reason": "aor_lapsed", "since": at(3600).isoformat(), "aor": "alfa-all"}]
    covered.ok("POST", "/v1/aors/alfa-all/confirm", "alfa")
    assert covered.check("bravo", position=where, kind="fires")["status"] == "clear"


def test_check_with_never_confirmed_aor_is_unknown(api: Api) -> None:
    api.aor("alfa", "east", ALFA_LAND, confirm=False)
    answer = api.check("bravo", position="34.8, 71.2", kind="ground")
    assert answer["status"] == "unknown"
    assert answer["gaps"] == [{"party": "alfa", "reason": "aor_lapsed", "since": None, "aor": "east"}]


# ---------------------------------------------------------------------------- zones


NFA = box(71.15, 34.75, 71.2, 34.8)
INSIDE_NFA = "34.775, 71.175"


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param("fires", "conflict", id="fires"),
        pytest.param("air", "conflict", id="air"),
        pytest.param("ground", "clear", id="ground"),
        pytest.param("other", "clear", id="other"),
    ],
)
def test_check_no_fire_area_binds_fires_and_air_only(covered: Api, kind: str, status: str) -> None:
    covered.zone("alfa", "village", "no_fire_area", NFA, name="Village")
    answer = covered.check("bravo", position=INSIDE_NFA, kind=kind)
    assert answer["status"] == status
    if status == "conflict":
        assert answer["conflicts"] == [
            {
                "party": "alfa",
                "object": "no_fire_area",
                "id": "village",
                "name": "Village",
                "disclosure": "exact",
                "distance_m": 0.0,
            }
        ]


def test_check_operating_area_is_not_a_conflict(covered: Api) -> None:
    covered.zone("alfa", "ops", "operating_area", NFA)
    assert covered.check("bravo", position=INSIDE_NFA, kind="fires")["status"] == "clear"


@pytest.mark.parametrize("kind", ["fires", "ground", "other"])
def test_check_protected_area_binds_every_kind(covered: Api, kind: str) -> None:
    covered.zone("alfa", "hospital", "protected_area", NFA)
    assert found(covered.check("bravo", position=INSIDE_NFA, kind=kind)) == [("alfa", "hospital")]


def test_check_route_is_its_line_widened(covered: Api) -> None:
    line = {"type": "LineString", "coordinates": [[71.15, 34.8], [71.25, 34.8]]}
    covered.zone("alfa", "convoy", "route", line, width_m=400)
    assert found(covered.check("bravo", position=offset(34.8, 71.2, 150 + 190, 0), kind="ground")) == [("alfa", "convoy")]
    assert covered.check("bravo", position=offset(34.8, 71.2, 200 + 220, 0), kind="ground")["status"] == "clear"


@pytest.mark.parametrize(
    ("window", "status"),
    [
        pytest.param(None, "clear", id="now-before-the-zone"),
        pytest.param((600, 3599), "clear", id="ends-before"),
        pytest.param((600, 3600), "conflict", id="touches-start"),
        pytest.param((5000, 6000), "conflict", id="inside"),
        pytest.param((7200, 9000), "conflict", id="touches-end"),
        pytest.param((7201, 9000), "clear", id="starts-after"),
    ],
)
def test_check_zone_window_must_overlap_the_check_window(covered: Api, window: tuple[int, int] | None, status: str) -> None:
    covered.zone("alfa", "strike-free", "protected_area", NFA, window={"start": iso(at(3600)), "end": iso(at(7200))})
    body: dict[str, Any] = {"position": INSIDE_NFA, "kind": "fires"}
    if window is not None:
        body["window"] = {"start": iso(at(window[0])), "end": iso(at(window[1]))}
    assert covered.check("bravo", **body)["status"] == status


@pytest.mark.parametrize(
    ("altitude", "status"),
    [
        pytest.param(None, "conflict", id="no-band-asked"),
        pytest.param([400, 900], "conflict", id="overlapping"),
        pytest.param([600, 3000], "clear", id="above"),
    ],
)
def test_check_zone_altitude_band(covered: Api, altitude: list[float] | None, status: str) -> None:
    covered.zone("alfa", "low", "protected_area", NFA, altitude_m=[0, 500])
    body: dict[str, Any] = {"position": INSIDE_NFA, "kind": "air"}
    if altitude is not None:
        body["altitude_m"] = altitude
    assert covered.check("bravo", **body)["status"] == status


def test_check_withdrawn_zone_no_longer_binds(covered: Api) -> None:
    covered.zone("alfa", "village", "no_fire_area", NFA)
    covered.ok("DELETE", "/v1/zones/village", "alfa")
    assert covered.check("bravo", position=INSIDE_NFA, kind="fires")["status"] == "clear"


# ---------------------------------------------------------------------------- area checks


def test_check_area_containing_a_site_is_a_conflict(covered: Api) -> None:
    area = box(71.09, 34.59, 71.11, 34.61)
    answer = covered.check("bravo", area=area, kind="ground")
    assert found(answer) == [("alfa", "post")]
    assert answer["conflicts"][0]["distance_m"] == 0
    assert answer["position"]["lat"] == pytest.approx(34.6, abs=1e-6)  # read back at the area's centroid
    assert answer["border"]["territory"] == "alfa"


def test_check_area_near_a_site_is_a_conflict_within_the_buffer(covered: Api) -> None:
    area = box(71.111, 34.59, 71.13, 34.61)  # its west edge ~1 km east of the site
    assert found(covered.check("bravo", area=area, kind="fires")) == [("alfa", "post")]
    assert covered.check("bravo", area=area, kind="ground")["status"] == "clear"


def test_check_area_across_the_border_needs_both_aors(api: Api) -> None:
    area = box(70.95, 34.5, 71.05, 34.55)
    api.aor("bravo", "bravo-all", BRAVO_LAND)
    answer = api.check("bravo", area=area, kind="other")
    assert answer["status"] == "unknown" and [g["party"] for g in answer["gaps"]] == ["alfa"]
    api.aor("alfa", "alfa-all", ALFA_LAND)
    assert api.check("bravo", area=area, kind="other")["status"] == "clear"


def test_check_multipolygon_area(covered: Api) -> None:
    area = {
        "type": "MultiPolygon",
        "coordinates": [box(70.8, 34.4, 70.81, 34.41)["coordinates"], box(71.09, 34.59, 71.11, 34.61)["coordinates"]],
    }
    assert found(covered.check("bravo", area=area, kind="ground")) == [("alfa", "post")]


# ---------------------------------------------------------------------------- the record


def test_check_is_recorded_with_the_picture_version(covered: Api) -> None:
    first = covered.check("bravo", position="34.8, 71.2", kind="fires")
    second = covered.check("bravo:viewer", position="34.8, 71.2", kind="fires")
    assert isinstance(first["record"], int) and isinstance(second["record"], int)
    assert second["record"] > first["record"] > 0
    assert first["picture_version"] == second["picture_version"] == covered.version()
    covered.report("alfa", "post", "34.61, 71.1")
    third = covered.check("alfa:auditor", position="34.8, 71.2", kind="fires")
    assert third["picture_version"] > second["picture_version"]
    assert third["picture_version"] == covered.version()
    assert third["record"] > second["record"]


def test_check_changes_no_picture(covered: Api) -> None:
    before = covered.ok("GET", "/v1/picture", "alfa")
    for _ in range(3):
        covered.check("bravo", position="34.6, 71.1", kind="fires")
    assert covered.ok("GET", "/v1/picture", "alfa") == before


def test_check_refusal_is_not_recorded(covered: Api) -> None:
    first = covered.check("bravo", position="34.8, 71.2", kind="fires")
    refusal(covered.post("/v1/checks", "bravo", json={"position": "nowhere", "kind": "fires"}), 422, "invalid_position")
    second = covered.check("bravo", position="34.8, 71.2", kind="fires")
    assert second["record"] == first["record"] + 1


# ---------------------------------------------------------------------------- across the antimeridian


def test_a_check_beside_the_antimeridian_sees_what_lies_across_it(bare_api: Api) -> None:
    """Fiji's islands lie either side of 180°: bravo's check 560 m west of the line reaches alfa's post 60 m east
    of it, and a look widened by the fires buffer lists it."""
    api = bare_api
    api.party("alfa")
    api.party("bravo")
    api.ok("PUT", "/v1/territories/alfa", "admin", 200, json={"area": box(-180.0, -17.0, -179.0, -16.0)})
    api.ok("PUT", "/v1/territories/bravo", "admin", 200, json={"area": box(179.0, -17.0, 180.0, -16.0)})
    api.aor("alfa", "alfa-all", box(-180.0, -17.0, -179.0, -16.0))
    api.aor("bravo", "bravo-all", box(179.0, -17.0, 180.0, -16.0))
    api.asset("alfa", "post", "site", position="-16.5, -179.9995", name="Post Taveuni")
    answer = api.check("bravo", position="-16.5, 179.99475", kind="fires")
    assert answer["status"] == "conflict" and found(answer) == [("alfa", "post")]
    assert answer["conflicts"][0]["distance_m"] == pytest.approx(WGS84.inv(179.99475, -16.5, -179.9995, -16.5)[2], rel=0.003)
    assert answer["border"]["territory"] == "bravo"
    look = api.ok("GET", "/v1/picture?area=179.99,-16.51,179.999,-16.49&kind=fires", "bravo", 200)
    assert [a["id"] for a in look["assets"]] == ["post"] and [a["party"] for a in look["aors"]] == ["alfa", "bravo"]


def test_a_check_reaching_within_56_km_of_a_pole_is_refused_and_spends_nothing(api: Api) -> None:
    """The local plane's error bound is not known to hold there: no answer rather than a wrong one; a party's
    budget of 60 checks is not spent by refusals."""
    before = api.ok("GET", "/v1/picture", "admin", 200)["picture_version"]
    for _ in range(61):
        error = refusal(api.post("/v1/checks", "bravo", json={"position": "89.6, 10.0", "kind": "fires"}), 422, "invalid_input")
        assert error["field"] == "position" and "89.5°" in error["message"]
    refusal(api.post("/v1/checks", "bravo", json={"area": box(10.0, 89.45, 10.5, 89.55), "kind": "fires"}), 422, field="area")
    assert api.check("bravo", position="89.0, 10.0", kind="fires")["status"] == "clear", "61 km from the pole: answered"
    assert api.ok("GET", "/v1/picture", "admin", 200)["picture_version"] == before


# ---------------------------------------------------------------------------- the route as served
# POST /v1/checks is answered ahead of the router (deconfliction.app.HotRoute); these hold that it answers there
# as any other route does, refusals and failures included.


def test_a_check_past_the_body_limit_is_413_logged_and_not_recorded(covered: Api, caplog: pytest.LogCaptureFixture) -> None:
    """By its Content-Length, and streamed in without one."""
    caplog.set_level(logging.INFO, logger="deconfliction")
    size = len(covered.service.store.tree)
    padded = b'{"kind": "fires", "position": "34.6, 71.1' + b" " * (9 * 2**20) + b'"}'
    headers = {**covered.headers("alfa"), "Content-Type": "application/json"}
    for content in (padded, (padded[i : i + 2**20] for i in range(0, len(padded), 2**20))):
        refusal(covered.client.post("/v1/checks", content=content, headers=headers), 413, "too_large")
    assert len(covered.service.store.tree) == size
    logged = [r.getMessage() for r in caplog.records if "413 too_large" in r.getMessage()]
    assert len(logged) == 2 and all(m.startswith("refused POST /v1/checks from ") for m in logged), logged


def test_a_check_that_fails_unexpectedly_is_a_500_not_a_dropped_connection(
    covered: Api, lenient: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> dict[str, Any]:
        raise RuntimeError("a fault in the service")

    monkeypatch.setattr(covered.service, "check_async", broken)
    answered = lenient.post("/v1/checks", json={"kind": "fires", "position": "34.6, 71.1"}, headers=covered.headers("alfa"))
    assert answered.status_code == 500


def test_a_check_is_answered_below_a_root_path_as_the_router_reads_it(covered: Api) -> None:
    """An app mounted under a prefix (ASGI's root_path) sees its own paths with or without the prefix in front."""
    body = {"kind": "fires", "position": f"{SITE[0]}, {SITE[1]}"}
    with TestClient(covered.app, root_path="/deconfliction") as client:
        for path in ("/v1/checks", "/deconfliction/v1/checks"):
            answered = client.post(path, json=body, headers=covered.headers("alfa"))
            assert answered.status_code == 200 and answered.json()["status"] == "conflict", (path, answered.text)
        refusal(client.post("/deconfliction/v1/checksum", json=body, headers=covered.headers("alfa")), 404, "not_found")


@pytest.mark.parametrize(
    ("path", "root_path", "route"),
    [
        ("/v1/checks", "", "/v1/checks"),
        ("/v1/checks", "/deconfliction", "/v1/checks"),  # the prefix already taken off (a proxy's rewrite)
        ("/deconfliction/v1/checks", "/deconfliction", "/v1/checks"),  # as ASGI servers give it
        ("/deconflictionx/v1/checks", "/deconfliction", "/deconflictionx/v1/checks"),  # not below the root path
    ],
)
def test_the_hot_route_reads_a_path_below_the_root_path_as_the_router_does(path: str, root_path: str, route: str) -> None:
    """The path the hot route matches is the router's (Starlette's get_route_path), so no check misses it."""
    from starlette._utils import get_route_path

    scope = {"type": "http", "path": path, "root_path": root_path}
    assert _route_path(scope) == get_route_path(scope) == route


def test_only_a_post_to_checks_is_a_check(covered: Api) -> None:
    refusal(covered.client.get("/v1/checks", headers=covered.headers("alfa")), 405, "method_not_allowed")
