"""Writes over HTTP: assets, reports (single and batched), zones, AORs, and what a refusal leaves behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import mgrs
import pytest
from pyproj import Geod

from tests.api.conftest import T0, Api, at, box, iso, refusal

WGS84 = Geod(ellps="WGS84")


def mgrs_of(lat: float, lon: float) -> str:
    """The 1 m MGRS reference of a point, by the mgrs package, without spaces."""
    return str(mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=5))


def to_meridian_m(lat: float, lon: float, meridian: float = 71.0) -> float:
    return float(WGS84.inv(lon, lat, meridian, lat)[2])


def assert_readback(shown: dict[str, Any], lat: float, lon: float, territory: str | None) -> None:
    """The canonical read-back of a point near the border meridian: lat/lon, MGRS, side and distance."""
    assert shown["position"]["lat"] == pytest.approx(lat, abs=2e-5)
    assert shown["position"]["lon"] == pytest.approx(lon, abs=2e-5)
    assert shown["position"]["mgrs"].replace(" ", "") == mgrs_of(shown["position"]["lat"], shown["position"]["lon"])
    assert shown["border"]["territory"] == territory
    assert shown["border"]["distance_m"] == pytest.approx(to_meridian_m(lat, lon), rel=0.005)


def positions(api: Api, who: str = "alfa") -> dict[str, Any]:
    """{asset id: its position read-back, or None} of ``who``'s own assets."""
    return {a["id"]: a.get("position") for a in api.ok("GET", "/v1/assets", who) if a["party"] == who.split(":")[0]}


# ---------------------------------------------------------------------------- assets


@pytest.mark.parametrize("kind", ["unit", "site"])
def test_asset_registered_without_position_has_none(api: Api, kind: str) -> None:
    made = api.asset("alfa", "p1", kind, name="Post One")
    assert made == {"party": "alfa", "id": "p1", "kind": kind, "name": "Post One", "disclosure": "exact"}
    assert api.ok("GET", "/v1/assets/alfa/p1", "alfa") == made
    assert api.ok("GET", "/v1/picture", "alfa")["positions"] == 0


def test_asset_name_defaults_to_id(api: Api) -> None:
    assert api.asset("alfa", "p1")["name"] == "p1"


@pytest.mark.parametrize(
    ("kind", "extra", "stale_at"),
    [
        pytest.param("site", {}, None, id="site-never-stale"),
        pytest.param("unit", {}, iso(at(1800)), id="unit-party-default"),
        pytest.param("unit", {"stale_after_s": 600}, iso(at(600)), id="unit-given-stale-after"),
        pytest.param("unit", {"time": iso(at(-120))}, iso(at(1680)), id="unit-stale-from-its-time"),
    ],
)
def test_asset_registered_with_position_reads_it_back(api: Api, kind: str, extra: dict[str, Any], stale_at: str | None) -> None:
    made = api.asset("alfa", "p1", kind, position="34.6, 71.1", uncertainty_m=30, **extra)
    assert_readback(made, 34.6, 71.1, "alfa")
    assert made["uncertainty_m"] == 30
    assert made["notation"] == "decimal"
    assert made["stale"] is False
    assert made["time"].replace("+00:00", "Z") == extra.get("time", iso(T0))
    assert (made["stale_at"] and made["stale_at"].replace("+00:00", "Z")) == stale_at
    assert api.ok("GET", "/v1/assets/alfa/p1", "alfa") == made


def test_asset_party_stale_default_applies_to_its_units(api: Api) -> None:
    api.party("charlie", stale_after_s=900)
    made = api.asset("charlie", "u1", "unit", position="34.6, 70.8")
    assert made["stale_at"] == at(900).isoformat()


def test_asset_unit_goes_stale_when_its_report_ages(api: Api) -> None:
    api.asset("alfa", "u1", "unit", position="34.6, 71.1", stale_after_s=600)
    api.asset("alfa", "s1", "site", position="34.61, 71.1")
    api.advance(600)
    shown = {a["id"]: a["stale"] for a in api.ok("GET", "/v1/assets", "alfa")}
    assert shown == {"u1": True, "s1": False}


# ---------------------------------------------------------------------------- reports


@pytest.mark.parametrize(
    ("position", "notation", "lat", "lon"),
    [
        pytest.param("34.6000, 71.1000", "decimal", 34.6, 71.1, id="decimal"),
        pytest.param("34°36'00\"N 71°06'00\"E", "dms", 34.6, 71.1, id="dms"),
        pytest.param("34.6N 71.1E", "dms", 34.6, 71.1, id="hemisphere-decimal"),
    ],
)
def test_report_reads_back_canonical_position(api: Api, position: str, notation: str, lat: float, lon: float) -> None:
    api.asset("alfa", "u1", "unit")
    version = api.version()
    shown = api.report("alfa", "u1", position, uncertainty_m=50)
    assert shown["asset"] == "u1"
    assert shown["notation"] == notation
    assert shown["uncertainty_m"] == 50
    assert_readback(shown, lat, lon, "alfa")
    assert shown["picture_version"] > version
    assert shown["picture_version"] == api.version()


def test_report_in_mgrs_reads_back_the_same_mgrs(api: Api) -> None:
    api.asset("alfa", "u1", "unit")
    shown = api.report("alfa", "u1", "42S XD 84886 24985")
    lat, lon = mgrs.MGRS().toLatLon("42SXD8488624985")
    assert shown["notation"] == "mgrs"
    assert shown["position"]["mgrs"] == "42S XD 84886 24985"
    assert_readback(shown, lat, lon, "alfa")
    assert 0 < shown["uncertainty_m"] <= 1.0  # a 1 m square claims no more than its half-diagonal


def test_report_in_other_territory_reads_back_that_side(api: Api) -> None:
    """A unit of alfa's reported west of the meridian: the read-back says bravo's side at once."""
    api.asset("alfa", "u1", "unit")
    assert_readback(api.report("alfa", "u1", "34.6, 70.98"), 34.6, 70.98, "bravo")


def test_report_moves_the_asset(api: Api) -> None:
    api.asset("alfa", "u1", "unit", position="34.6, 71.1")
    api.advance(60)
    api.report("alfa", "u1", "34.65, 71.12", stale_after_s=300)
    shown = api.ok("GET", "/v1/assets/alfa/u1", "bravo")
    assert (shown["position"]["lat"], shown["position"]["lon"]) == (34.65, 71.12)
    assert shown["time"] == at(60).isoformat()
    assert shown["stale_at"] == at(360).isoformat()


def test_report_batch_takes_all_and_reads_each_back(api: Api) -> None:
    api.asset("alfa", "u1", "unit")
    api.asset("alfa", "u2", "unit")
    api.asset("alfa", "s1", "site")
    version = api.version()
    batch = [
        {"asset": "u1", "position": "34.6, 71.1", "time": iso(at(-60))},
        {"asset": "u2", "position": "34.7, 70.95", "stale_after_s": 120},
        {"asset": "s1", "position": "34.5, 71.05", "uncertainty_m": 10},
        {"asset": "u1", "position": "34.61, 71.1"},
    ]
    answer = api.ok("POST", "/v1/reports/batch", "alfa", 201, json={"reports": batch})
    assert set(answer) == {"reports"}
    shown = answer["reports"]
    assert [r["asset"] for r in shown] == ["u1", "u2", "s1", "u1"]
    assert_readback(shown[0], 34.6, 71.1, "alfa")
    assert_readback(shown[1], 34.7, 70.95, "bravo")
    assert_readback(shown[2], 34.5, 71.05, "alfa")
    assert [r["stale_at"] for r in shown] == [at(1740).isoformat(), at(120).isoformat(), None, at(1800).isoformat()]
    assert shown[2]["uncertainty_m"] == 10
    assert api.version() > version
    held = positions(api)
    assert (held["u1"]["lat"], held["u2"]["lon"], held["s1"]["lon"]) == (34.61, 70.95, 71.05)


def test_report_of_unknown_asset_is_404(api: Api) -> None:
    refusal(api.post("/v1/reports", "alfa", json={"asset": "ghost", "position": "34.6, 71.1"}), 404, "not_found", "asset")


def test_report_for_another_partys_asset_is_404_whether_it_exists_or_not(api: Api) -> None:
    """The refusal must not tell bravo whether alfa has an asset of that id (it may be hidden)."""
    probe = {"asset": "volcano", "position": "34.55, 71.015"}
    before = api.post("/v1/reports", "bravo", json=probe)
    api.asset("alfa", "volcano", "site", position="34.5512, 71.0146", disclosure="hidden")
    after = api.post("/v1/reports", "bravo", json=probe)
    refusal(before, 404, "not_found", "asset")
    refusal(after, 404, "not_found", "asset")
    assert after.json() == before.json()
    assert positions(api)["volcano"]["lat"] == 34.5512


@pytest.mark.parametrize(
    "path",
    [pytest.param("/v1/reports", id="single"), pytest.param("/v1/reports/batch", id="batch")],
)
def test_report_older_than_held_is_out_of_order(api: Api, path: str) -> None:
    api.asset("alfa", "u1", "unit", position="34.6, 71.1", time=iso(at(-60)))
    older = {"asset": "u1", "position": "34.7, 71.1", "time": iso(at(-61))}
    body = older if path == "/v1/reports" else {"reports": [older]}
    version = api.version()
    error = refusal(api.post(path, "alfa", json=body), 409, "out_of_order", "time" if path == "/v1/reports" else "reports.0.time")
    assert "newer" in error["message"]
    assert api.version() == version
    assert positions(api)["u1"]["lat"] == 34.6


def test_report_same_time_as_held_is_taken(api: Api) -> None:
    api.asset("alfa", "u1", "unit", position="34.6, 71.1")
    assert api.report("alfa", "u1", "34.7, 71.1", time=iso(T0))["position"]["lat"] == 34.7


def test_report_batch_out_of_order_within_itself_is_refused(api: Api) -> None:
    api.asset("alfa", "u1", "unit")
    batch = [
        {"asset": "u1", "position": "34.6, 71.1", "time": iso(at(-10))},
        {"asset": "u1", "position": "34.7, 71.1", "time": iso(at(-20))},
    ]
    refusal(api.post("/v1/reports/batch", "alfa", json={"reports": batch}), 409, "out_of_order", "reports.1.time")
    assert positions(api)["u1"] is None


@pytest.mark.parametrize(
    ("ahead_s", "taken"),
    [
        pytest.param(299, True, id="within-skew"),
        pytest.param(300, True, id="at-skew"),
        pytest.param(301, False, id="beyond-skew"),
        pytest.param(86400, False, id="a-day-ahead"),
    ],
)
def test_report_time_in_the_future(api: Api, ahead_s: float, taken: bool) -> None:
    api.asset("alfa", "u1", "unit")
    response = api.post("/v1/reports", "alfa", json={"asset": "u1", "position": "34.6, 71.1", "time": iso(at(ahead_s))})
    if taken:
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["time"] == at(ahead_s).isoformat() and answer["clock_ahead_s"] == ahead_s, "accepted, and marked"
        life = datetime.fromisoformat(answer["stale_at"]) - api.clock.now()
        assert life == timedelta(seconds=1800), "its life runs from the server's clock: a fast clock buys no freshness"
    else:
        error = refusal(response, 422, "invalid_input", "time")
        assert "ahead" in error["message"]
        assert positions(api)["u1"] is None


def test_report_time_with_offset_is_stored_in_utc(api: Api) -> None:
    api.asset("alfa", "u1", "unit")
    shown = api.report("alfa", "u1", "34.6, 71.1", time="2026-01-01T04:29:00+04:30")
    assert shown["time"] == at(-60).isoformat()


# ---------------------------------------------------------------------------- a refusal changes nothing


BAD_THIRD_REPORT = [
    pytest.param({"asset": "u3", "position": "34.6; 71.1"}, 422, "reports.2.position", id="malformed-position"),
    pytest.param({"asset": "u3", "position": "95.0, 71.1"}, 422, "reports.2.position", id="latitude-out-of-range"),
    pytest.param({"asset": "u3", "position": 34.6}, 422, "reports.2.position", id="position-not-text"),
    pytest.param({"asset": "u3", "position": "34.6, 71.1", "uncertainty_m": -1}, 422, "reports.2.uncertainty_m", id="negative"),
    pytest.param({"asset": "u3", "position": "34.6, 71.1", "time": iso(at(900))}, 422, "reports.2.time", id="future"),
    pytest.param({"asset": "u3", "position": "34.6, 71.1", "colour": "red"}, 422, "reports.2.colour", id="unknown-field"),
    pytest.param({"asset": "ghost", "position": "34.6, 71.1"}, 404, "reports.2.asset", id="unknown-asset"),
    pytest.param({"asset": "u3", "position": "34.6, 71.1", "time": iso(at(-3600))}, 409, "reports.2.time", id="out-of-order"),
]


@pytest.mark.parametrize(("bad", "status", "field"), BAD_THIRD_REPORT)
def test_report_batch_with_one_bad_report_takes_none(api: Api, bad: dict[str, Any], status: int, field: str) -> None:
    for asset in ("u1", "u2", "u3"):
        api.asset("alfa", asset, "unit", position="34.5, 71.2", time=iso(at(-600)))
    before = api.ok("GET", "/v1/picture", "alfa")
    assets_before = api.ok("GET", "/v1/assets", "alfa")
    batch = [{"asset": "u1", "position": "34.6, 71.1"}, {"asset": "u2", "position": "34.7, 71.1"}, bad]
    refusal(api.post("/v1/reports/batch", "alfa", json={"reports": batch}), status, field=field)
    assert api.ok("GET", "/v1/picture", "alfa") == before
    assert api.ok("GET", "/v1/assets", "alfa") == assets_before
    assert {p["lat"] for p in positions(api).values() if p} == {34.5}
    # ...and the same good reports, without the bad one, are then taken
    assert len(api.ok("POST", "/v1/reports/batch", "alfa", 201, json={"reports": batch[:2]})["reports"]) == 2
    assert positions(api)["u2"]["lat"] == 34.7


def test_report_batch_refused_survives_a_restart_unchanged(api: Api) -> None:
    """Nothing of a refused batch reached the store: a service rebuilt from the file agrees."""
    from deconfliction.service import Service
    from deconfliction.stores import open_store

    api.asset("alfa", "u1", "unit", position="34.5, 71.2")
    batch = [{"asset": "u1", "position": "34.6, 71.1"}, {"asset": "u1", "position": "bogus"}]
    refusal(api.post("/v1/reports/batch", "alfa", json={"reports": batch}), 422, "invalid_position", "reports.1.position")
    store = open_store(api.db)
    try:
        rebuilt = Service(store, api.clock)
        assert rebuilt.picture.reports[("alfa", "u1")].point.lat == 34.5
    finally:
        store.close()


# ---------------------------------------------------------------------------- zones


NFA = box(71.05, 34.48, 71.08, 34.51)
ROUTE = {"type": "LineString", "coordinates": [[70.88, 34.70], [70.95, 34.68], [71.02, 34.69], [71.10, 34.70]]}


@pytest.mark.parametrize(
    ("kind", "area", "extra"),
    [
        pytest.param("operating_area", box(71.1, 34.6, 71.2, 34.7), {}, id="operating-area"),
        pytest.param("protected_area", box(71.1, 34.6, 71.11, 34.61), {"altitude_m": [0, 500]}, id="protected-area"),
        pytest.param("no_fire_area", NFA, {"window": {"start": iso(T0), "end": iso(at(3600))}}, id="no-fire-area"),
        pytest.param("route", ROUTE, {"width_m": 200}, id="route"),
        pytest.param(
            "protected_area",
            {"type": "MultiPolygon", "coordinates": [box(71.1, 34.6, 71.11, 34.61)["coordinates"], NFA["coordinates"]]},
            {},
            id="multipolygon",
        ),
    ],
)
def test_zone_declared_of_each_kind(api: Api, kind: str, area: dict[str, Any], extra: dict[str, Any]) -> None:
    version = api.version()
    made = api.zone("alfa", "z1", kind, area, name="Zone One", **extra)
    assert made["party"] == "alfa" and made["id"] == "z1" and made["kind"] == kind and made["name"] == "Zone One"
    assert made["area"] == area
    assert made["disclosure"] == "exact"
    assert made["altitude_m"] == extra.get("altitude_m")
    window = extra.get("window")
    assert made["window"] == (window and {"start": T0.isoformat(), "end": at(3600).isoformat()})
    assert made.get("width_m") == extra.get("width_m")
    assert made["picture_version"] > version
    listed = api.ok("GET", "/v1/zones", "bravo")
    assert listed == [{k: v for k, v in made.items() if k != "picture_version"}]


@pytest.mark.parametrize(
    ("kind", "area", "extra", "field"),
    [
        pytest.param("route", ROUTE, {}, "width_m", id="route-without-width"),
        pytest.param("route", ROUTE, {"width_m": 0}, "width_m", id="route-zero-width"),
        pytest.param("route", ROUTE, {"width_m": -5}, "width_m", id="route-negative-width"),
        pytest.param("route", NFA, {"width_m": 200}, "area.type", id="route-as-polygon"),
        pytest.param("no_fire_area", ROUTE, {}, "area.type", id="area-as-line"),
        pytest.param("no_fire_area", NFA, {"width_m": 100}, "width_m", id="width-for-area"),
        pytest.param("no_fire_area", NFA, {"altitude_m": [500, 100]}, "altitude_m", id="altitude-upside-down"),
    ],
)
def test_zone_refused_declarations(api: Api, kind: str, area: dict[str, Any], extra: dict[str, Any], field: str) -> None:
    body = {"id": "z1", "kind": kind, "area": area, **extra}
    refusal(api.post("/v1/zones", "alfa", json=body), 422, field=field)
    assert api.ok("GET", "/v1/zones", "alfa") == []


def test_zone_withdrawn_is_gone(api: Api) -> None:
    api.zone("alfa", "z1", "no_fire_area", NFA)
    assert api.ok("DELETE", "/v1/zones/z1", "alfa")["withdrawn"] == "z1"
    assert api.ok("GET", "/v1/zones", "alfa") == []
    refusal(api.delete("/v1/zones/z1", "alfa"), 404, "not_found", "id")


# ---------------------------------------------------------------------------- AORs


def test_aor_lapsed_until_confirmed_then_lapses_again(api: Api) -> None:
    area = box(71.0, 34.4, 71.15, 34.75)
    declared = api.ok("POST", "/v1/aors", "alfa", 201, json={"id": "east", "area": area, "freshness_s": 3600})
    assert declared["status"] == "lapsed"
    assert declared["confirmed_at"] is None and declared["fresh_until"] is None
    assert declared["area"] == area and declared["freshness_s"] == 3600
    api.advance(60)
    confirmed = api.ok("POST", "/v1/aors/east/confirm", "alfa", 200)
    assert confirmed["status"] == "fresh"
    assert confirmed["confirmed_at"] == at(60).isoformat()
    assert confirmed["fresh_until"] == at(3660).isoformat()
    assert confirmed["picture_version"] > declared["picture_version"]
    api.clock.advance_to(at(3659))
    assert [a["status"] for a in api.ok("GET", "/v1/aors", "bravo")] == ["fresh"]
    api.clock.advance_to(at(3660))
    assert [a["status"] for a in api.ok("GET", "/v1/aors", "bravo")] == ["lapsed"]
    # confirming again renews it
    api.advance(10)
    assert api.ok("POST", "/v1/aors/east/confirm", "alfa", 200)["fresh_until"] == at(3670 + 3600).isoformat()


def test_aor_confirm_unknown_is_404(api: Api) -> None:
    refusal(api.post("/v1/aors/nowhere/confirm", "alfa"), 404, "not_found", "aor")


# ---------------------------------------------------------------------------- duplicates


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        pytest.param("admin", "/v1/parties", {"id": "alfa", "name": "Another Alfa"}, id="party"),
        pytest.param("alfa", "/v1/assets", {"id": "p1", "kind": "unit"}, id="asset"),
        pytest.param("alfa", "/v1/zones", {"id": "z1", "kind": "protected_area", "area": NFA}, id="zone"),
        pytest.param("alfa", "/v1/aors", {"id": "a1", "area": NFA, "freshness_s": 60}, id="aor"),
    ],
)
def test_duplicate_id_is_409(api: Api, who: str, path: str, body: dict[str, Any]) -> None:
    api.asset("alfa", "p1", "site", position="34.6, 71.1")
    api.zone("alfa", "z1", "no_fire_area", box(71.1, 34.6, 71.2, 34.7))
    api.aor("alfa", "a1", box(71.0, 34.6, 71.2, 34.8), confirm=False)
    version = api.version()
    seen = [api.ok("GET", p, "alfa") for p in ("/v1/parties", "/v1/assets", "/v1/zones", "/v1/aors")]
    refusal(api.post(path, who, json=body), 409, "already_exists", "id")
    assert api.version() == version
    assert [api.ok("GET", p, "alfa") for p in ("/v1/parties", "/v1/assets", "/v1/zones", "/v1/aors")] == seen


def test_duplicate_id_in_another_party_is_allowed(api: Api) -> None:
    api.zone("alfa", "z1", "no_fire_area", NFA)
    api.zone("bravo", "z1", "no_fire_area", box(70.9, 34.6, 70.95, 34.65))
    assert sorted((z["party"], z["id"]) for z in api.ok("GET", "/v1/zones", "alfa")) == [("alfa", "z1"), ("bravo", "z1")]


# ---------------------------------------------------------------------------- withdrawals


def test_asset_withdrawn_is_gone_and_its_position_no_longer_conflicts(api: Api) -> None:
    api.asset("alfa", "p1", "site", position="34.6, 71.1")
    assert api.check("bravo", position="34.6, 71.1", kind="ground")["status"] == "conflict"
    assert api.ok("DELETE", "/v1/assets/p1", "alfa")["withdrawn"] == "p1"
    assert api.ok("GET", "/v1/assets", "alfa") == []
    refusal(api.get("/v1/assets/alfa/p1", "alfa"), 404, "not_found")
    assert api.check("bravo", position="34.6, 71.1", kind="ground")["conflicts"] == []


def test_asset_position_withdrawn_keeps_the_asset(api: Api) -> None:
    api.asset("alfa", "p1", "site", position="34.6, 71.1")
    api.ok("DELETE", "/v1/assets/p1/position", "alfa")
    shown = api.ok("GET", "/v1/assets/alfa/p1", "alfa")
    assert shown["id"] == "p1" and "position" not in shown
    assert api.check("bravo", position="34.6, 71.1", kind="ground")["conflicts"] == []


def test_writes_site_refuses_a_stale_time(api: Api) -> None:
    """A site holds its position until moved: a stale time for it is a mistake, not a setting."""
    api.asset("alfa", "post", position="34.6, 71.1")
    version = api.version()
    response = api.post("/v1/reports", "alfa", json={"asset": "post", "position": "34.61, 71.1", "stale_after_s": 600})
    refusal(response, 422, "invalid_input", "stale_after_s")
    assert api.version() == version
