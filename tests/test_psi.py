"""The private cross-check: cell covers, the PSI exchange, the owner's limits, and the exchange between two nodes.

What matters, and is asserted here:

- the cell cover is conservative: any point within a buffered place lies in one of the
  owner's cells (property tests, measured with pyproj's geodesic), and whatever the
  engine's own check finds in conflict with a party's places meets them in cells too;
- the exchange finds a meeting when an activity touches a buffered place, none when it is far;
- the owner's reply does not hold its cells in the clear, every session has its own key,
  a session answers once, and the owner learns only the (padded) size of the asker's set;
- the owner rate-limits each asker and refuses malformed requests before they count;
- the exchange over HTTP, in process and between two real processes on loopback.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon
from typer.testing import CliRunner

from deconfliction import psi
from deconfliction.api.psi import PsiNode, PsiSettings, ask_remote
from deconfliction.api.psi import router as psi_router
from deconfliction.app import create_app
from deconfliction.cli import app as cli_app
from deconfliction.clock import ManualClock
from deconfliction.errors import Busy, InvalidInput, InvalidState, RateLimited
from deconfliction.model import CheckKind
from deconfliction.service import ROOT, Service
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore, open_store

GEOD = Geod(ellps="WGS84")
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SITE = (34.55, 71.02)  # lat, lon of alfa's hidden post in the tests below
FIRES_M = 1500.0


def moved(lat: float, lon: float, azimuth: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lon) along ``azimuth``, on the WGS 84 ellipsoid; (lat, lon)."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, distance_m)
    return lat2, lon2


def cell(lat: float, lon: float, resolution: int = psi.DEFAULT_RESOLUTION) -> str:
    return str(h3.latlng_to_cell(lat, lon, resolution))


# ---------------------------------------------------------------------------- the cover is conservative

offsets = st.lists(st.tuples(st.floats(-180, 180), st.one_of(st.just(1.0), st.floats(0, 1))), min_size=1, max_size=25)


@PROPERTY
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-179.9, 179.9),
    radius=st.one_of(st.just(0.0), st.floats(0, 3000)),
    buffer=st.one_of(st.just(0.0), st.sampled_from([100.0, 200.0, 1000.0, 1500.0]), st.floats(0, 2000)),
    resolution=st.sampled_from([8, 9, 10]),
    points=offsets,
)
def test_every_point_within_a_buffered_point_place_is_in_its_cells(
    lat: float, lon: float, radius: float, buffer: float, resolution: int, points: list[tuple[float, float]]
) -> None:
    cells = psi.cover([psi.Place(Point(lon, lat), radius)], resolution, buffer)
    for azimuth, fraction in points:
        p = moved(lat, lon, azimuth, fraction * (radius + buffer))
        assert cell(*p, resolution) in cells, (p, radius, buffer)


@PROPERTY
@given(
    lat=st.floats(-75, 75),
    lon=st.floats(-170, 170),
    corners=st.lists(st.tuples(st.floats(-0.04, 0.04), st.floats(-0.04, 0.04)), min_size=3, max_size=6),
    route=st.booleans(),
    width=st.floats(1, 400),
    buffer=st.one_of(st.just(0.0), st.floats(0, 2000)),
    resolution=st.sampled_from([8, 9, 10]),
    points=st.lists(st.tuples(st.floats(0, 1), st.floats(-180, 180), st.floats(0, 1)), min_size=1, max_size=25),
)
def test_every_point_within_a_buffered_area_or_route_is_in_its_cells(
    lat: float,
    lon: float,
    corners: list[tuple[float, float]],
    route: bool,
    width: float,
    buffer: float,
    resolution: int,
    points: list[tuple[float, float, float]],
) -> None:
    coords = [(lon + dx, lat + dy) for dx, dy in corners]
    if route:
        shape, radius = LineString(coords), width / 2
    else:
        shape, radius = Polygon(coords).convex_hull, 0.0
        if shape.geom_type != "Polygon" or shape.area == 0:
            return
    cells = psi.cover([psi.Place(shape, radius)], resolution, buffer)
    line = shape if route else shape.exterior
    for along, azimuth, fraction in points:
        on = line.interpolate(along, normalized=True)  # a point on the route or on the area's edge, then moved out
        p = moved(on.y, on.x, azimuth, fraction * (radius + buffer))
        assert cell(*p, resolution) in cells, (p, radius, buffer)
    inside = shape.representative_point()
    assert cell(inside.y, inside.x, resolution) in cells


def test_the_cover_is_not_much_wider_than_the_place() -> None:
    """Conservative, but by about a cell: the cover's cells all lie within the reach plus one cell."""
    reach = 10.0 + FIRES_M
    cells = psi.cover([psi.Place(Point(SITE[1], SITE[0]), 10.0)], 9, FIRES_M)
    edge = h3.average_hexagon_edge_length(9, "m")
    farthest = max(h3.great_circle_distance(SITE, h3.cell_to_latlng(c), unit="m") for c in cells)
    assert reach < farthest <= reach + 1.5 * edge
    expected = 3.14159 * reach**2 / h3.average_hexagon_area(9, "m^2")
    assert expected < len(cells) < 1.5 * expected


def test_a_cover_refuses_what_it_cannot_vouch_for() -> None:
    with pytest.raises(InvalidInput) as near_pole:
        psi.cover([psi.Place(Point(0.0, 80.0)), psi.Place(Point(0.0, 88.0))], 9)
    assert near_pole.value.field == "places.1.geometry"
    across = Polygon([(179.9, 10.0), (179.99, 10.0), (179.99, 10.1), (179.9, 10.1)])
    with pytest.raises(InvalidInput, match="antimeridian"):
        psi.cover([psi.Place(across)], 9, 5000.0)
    with pytest.raises(InvalidInput, match="cells"):
        psi.cover([psi.Place(Point(71.0, 34.5), 150_000.0)], 11)
    with pytest.raises(InvalidInput) as bad:
        psi.cover([], 13)
    assert bad.value.field == "resolution"


def test_whatever_the_engine_finds_in_conflict_meets_in_cells() -> None:
    """The engine's check and the cells agree one way: a conflict with alfa's places is a meeting (the reverse may not hold)."""
    service = Service(MemoryStore(), ManualClock(T0), Settings(check_rate_per_min=0))  # hundreds of checks at one instant
    for party in ("alfa", "bravo"):
        service.create_party(ROOT, {"id": party, "name": party.title()})
    alfa = service.authenticate(service.create_token(ROOT, "alfa", "liaison"))
    bravo = service.authenticate(service.create_token(ROOT, "bravo", "viewer"))
    service.register_asset(alfa, {"id": "post", "kind": "site", "disclosure": "hidden", "position": "34.55, 71.02"})
    service.register_asset(alfa, {"id": "qrf", "kind": "unit", "position": "34.60, 71.10", "uncertainty_m": 300})
    nfa = [[71.05, 34.50], [71.07, 34.50], [71.07, 34.52], [71.05, 34.52], [71.05, 34.50]]
    service.declare_zone(alfa, {"id": "nfa", "kind": "no_fire_area", "area": {"type": "Polygon", "coordinates": [nfa]}})
    road = {"type": "LineString", "coordinates": [[70.95, 34.45], [71.0, 34.48]]}
    service.declare_zone(alfa, {"id": "road", "kind": "route", "area": road, "width_m": 60})
    places = psi.picture_places(service.picture, "alfa", T0)
    assert len(places) == 4
    rnd = random.Random(6)
    conflicts = 0
    for kind in (CheckKind.FIRES, CheckKind.GROUND):
        owner = psi.place_cells(places, kind, service.settings.buffer_m(kind))
        for _ in range(150):
            lat, lon = rnd.uniform(34.42, 34.65), rnd.uniform(70.92, 71.15)
            radius = rnd.choice([0.0, 50.0, 400.0])
            answer = service.check(bravo, {"position": f"{lat:.6f}, {lon:.6f}", "radius_m": radius, "kind": kind.value})
            asker = psi.activity_cells([psi.Place(Point(lon, lat), radius)])
            if any(c["party"] == "alfa" for c in answer["conflicts"]):
                conflicts += 1
                assert asker & owner, (lat, lon, radius, kind)
    assert conflicts > 20  # the sample did reach the places


def test_places_are_read_from_geojson_and_from_activities() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [71.02, 34.55]}, "properties": {"radius_m": 20}},
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [71.03, 34.56]},
                "properties": {"object": "asset", "id": "x", "uncertainty_m": 50},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[71, 34], [71.1, 34], [71.1, 34.1], [71, 34]]]},
                "properties": {"object": "zone", "kind": "no_fire_area", "id": "nfa"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[71, 34], [71.1, 34], [71.1, 34.1], [71, 34]]]},
                "properties": {"object": "aor", "id": "east"},
            },
        ],
    }
    places = psi.read_places(collection)
    assert [p.radius_m for p in places] == [20.0, 50.0, 0.0]
    assert not places[2].applies(CheckKind.GROUND) and places[2].applies(CheckKind.FIRES)
    activity = {"kind": "fires", "volumes": [{"position": "42S XD 84698 25204", "radius_m": 150, "window": {}}]}
    (volume,) = psi.read_places(activity)
    assert volume.radius_m == pytest.approx(150 + 0.5 * 2**0.5)  # plus the 1 m MGRS square's half-diagonal
    with pytest.raises(InvalidInput) as no_width:
        psi.read_places({"type": "LineString", "coordinates": [[71, 34], [71.1, 34.1]]})
    assert no_width.value.field == "width_m"
    with pytest.raises(InvalidInput) as bad_radius:
        psi.read_places({"volumes": [{"position": "34.5, 71.0", "radius_m": -5}]})
    assert bad_radius.value.field == "volumes.0.radius_m"


# ---------------------------------------------------------------------------- the exchange


def site_cells(kind_buffer_m: float = FIRES_M) -> frozenset[str]:
    return psi.place_cells([psi.Place(Point(SITE[1], SITE[0]), 10.0)], CheckKind.FIRES, kind_buffer_m)


def activity_at(distance_m: float, radius_m: float = 50.0) -> frozenset[str]:
    lat, lon = moved(*SITE, 60.0, distance_m)
    return psi.activity_cells([psi.Place(Point(lon, lat), radius_m)])


def test_an_activity_that_touches_a_buffered_place_meets_it() -> None:
    owner = site_cells()
    touching = psi.exchange(owner, activity_at(10.0 + FIRES_M + 40.0))  # the activity's edge 10 m inside the buffer
    assert touching.meeting.meets and touching.meeting.cells_met >= 1
    assert touching.meeting.cells_met == len(owner & activity_at(10.0 + FIRES_M + 40.0))


def test_an_activity_far_from_every_place_meets_none() -> None:
    far = psi.exchange(site_cells(), activity_at(5000.0, 400.0))
    assert not far.meeting.meets and far.meeting.cells_met == 0
    assert far.meeting.asker_cells == len(activity_at(5000.0, 400.0))


def test_the_owner_reply_holds_no_cell_in_the_clear() -> None:
    owner, asker = site_cells(), activity_at(500.0)
    session = psi.Asker(asker)
    request = session.request()
    reply = psi.Owner(owner).answer(request)
    sent = reply.setup + reply.response
    for c in owner:
        number = h3.str_to_int(c)
        for form in (c.encode(), c.upper().encode(), number.to_bytes(8, "big"), number.to_bytes(8, "little")):
            assert form not in sent
    for c in asker:  # nor do the asker's own cells travel in the clear
        assert c.encode() not in request and h3.str_to_int(c).to_bytes(8, "big") not in request
    assert session.meeting(reply.setup, reply.response).cells_met == len(owner & asker)


def test_every_session_has_a_fresh_key_and_answers_once() -> None:
    owner, asker = site_cells(), activity_at(500.0)
    session = psi.Asker(asker, pad=False)
    first, second = psi.Owner(owner, pad=False), psi.Owner(owner, pad=False)
    one, two = first.answer(session.request()), second.answer(session.request())
    assert one.setup != two.setup and one.response != two.response  # same sets, same request: other keys
    assert session.meeting(one.setup, one.response).cells_met == len(owner & asker) > 0
    # A response is worth nothing against another session's setup: answers cannot be pooled.
    assert session.meeting(one.setup, two.response).cells_met == 0
    with pytest.raises(InvalidState) as again:
        first.answer(session.request())
    assert again.value.field == "request"


def test_both_sides_learn_only_size_buckets_of_the_other() -> None:
    owner, asker = site_cells(), activity_at(500.0)
    session = psi.Asker(asker)
    reply = psi.Owner(owner).answer(session.request())
    assert reply.asker_cells == psi.padded_size(len(asker)) == session.sent_cells > len(asker)
    assert reply.owner_cells == psi.padded_size(len(owner))
    assert session.meeting(reply.setup, reply.response).cells_met == len(owner & asker)  # the dummies meet nothing
    assert [psi.padded_size(n) for n in (1, 64, 65, 1000, 1024, 1025, 10_000)] == [64, 64, 91, 1024, 1024, 1449, 11586]


def test_malformed_requests_are_refused_naming_the_request() -> None:
    owner = psi.Owner(site_cells())
    with pytest.raises(InvalidInput, match="not a serialised") as garbage:
        psi.parse_request(b"\xff\xff\xff")
    assert garbage.value.field == "request"
    revealing = psi.openmined.Request()
    revealing.reveal_intersection = True
    revealing.encrypted_elements.extend(psi.openmined.Request.FromString(psi.Asker(["x"]).request()).encrypted_elements)
    with pytest.raises(InvalidInput, match="which cells"):
        owner.answer(revealing.SerializeToString())
    not_points = psi.openmined.Request()
    not_points.encrypted_elements.extend([b"\x02" + b"\xff" * 32])
    with pytest.raises(InvalidInput, match="curve point"):
        psi.Owner(site_cells()).answer(not_points.SerializeToString())
    with pytest.raises(InvalidInput, match="more than the 64"):
        psi.parse_request(psi.Asker(activity_at(0.0, 3000.0)).request(), max_cells=64)


# ---------------------------------------------------------------------------- the owner's limits


def test_the_owner_rate_limits_each_asker() -> None:
    clock = ManualClock(T0)
    desk = psi.OwnerDesk(lambda kind: site_cells(), limits=psi.Limits(rate_per_hour=60, burst=2), clock=clock)
    request = psi.Asker(activity_at(500.0), pad=False).request()
    for _ in range(2):
        desk.answer("bravo", CheckKind.FIRES, request)
    with pytest.raises(InvalidInput):  # a malformed request is refused before it counts...
        desk.answer("bravo", CheckKind.FIRES, b"\x00junk")
    with pytest.raises(RateLimited) as limited:  # ...but a third good one within the minute does not pass
        desk.answer("bravo", CheckKind.FIRES, request)
    assert limited.value.status == 429 and limited.value.retry_after_s == pytest.approx(60.0)
    assert "bravo" in limited.value.message and "60 s" in limited.value.message
    desk.answer("charlie", CheckKind.FIRES, request)  # another asker has its own bucket
    clock.advance_to(T0 + timedelta(seconds=30))
    with pytest.raises(RateLimited) as still:
        desk.answer("bravo", CheckKind.FIRES, request)
    assert still.value.retry_after_s == pytest.approx(30.0)
    clock.advance_to(T0 + timedelta(seconds=60))
    desk.answer("bravo", CheckKind.FIRES, request)


def test_the_owner_answers_a_bounded_number_of_sessions_at_once() -> None:
    release, entered = threading.Event(), threading.Event()

    def slow_cells(kind: CheckKind) -> frozenset[str]:
        entered.set()
        release.wait(5)
        return site_cells()

    desk = psi.OwnerDesk(slow_cells, limits=psi.Limits(max_concurrent=1))
    request = psi.Asker(activity_at(500.0), pad=False).request()
    worker = threading.Thread(target=desk.answer, args=("bravo", CheckKind.FIRES, request))
    worker.start()
    try:
        assert entered.wait(5)
        with pytest.raises(Busy):
            desk.answer("charlie", CheckKind.FIRES, request)
    finally:
        release.set()
        worker.join(5)
    desk.answer("charlie", CheckKind.FIRES, request)  # the refusal did not cost charlie a session


# ---------------------------------------------------------------------------- over HTTP, in process


def owner_service(store: Any, clock: ManualClock | None = None) -> tuple[Service, str]:
    """alfa with a hidden post (and a zone), bravo with a viewer token; returns the service and bravo's token."""
    service = Service(store, clock)
    for party in ("alfa", "bravo"):
        service.create_party(ROOT, {"id": party, "name": party.title()})
    alfa = service.authenticate(service.create_token(ROOT, "alfa", "liaison"))
    position = f"{SITE[0]}, {SITE[1]}"
    service.register_asset(
        alfa, {"id": "post", "kind": "site", "disclosure": "hidden", "position": position, "uncertainty_m": 10}
    )
    ring = [[71.2, 34.7], [71.22, 34.7], [71.22, 34.72], [71.2, 34.7]]
    service.declare_zone(alfa, {"id": "camp", "kind": "protected_area", "area": {"type": "Polygon", "coordinates": [ring]}})
    return service, service.create_token(ROOT, "bravo", "viewer")


@dataclass
class Node:
    app: FastAPI
    client: TestClient
    service: Service
    clock: ManualClock
    bravo: str

    def ask(self, distance_m: float, radius_m: float = 50.0, kind: str = "fires") -> dict[str, Any]:
        return ask_remote("http://testserver", self.bravo, lambda r: activity_at(distance_m, radius_m), kind, http=self.client)  # type: ignore[arg-type]


def with_psi(app: FastAPI) -> FastAPI:
    """The app with the PSI routes: app.py includes them; until it does, the tests add them."""
    if not any(getattr(route, "path", "").startswith("/v1/psi") for route in app.routes):
        app.include_router(psi_router)
    return app


@pytest.fixture
def node(fresh_db: str) -> Iterator[Node]:
    clock = ManualClock(T0)
    store = open_store(fresh_db)
    service, bravo = owner_service(store, clock)
    app = with_psi(create_app(service))
    app.state.psi = PsiNode(service, PsiSettings(party="alfa", burst=3, rate_per_hour=6))
    with TestClient(app) as client:
        yield Node(app, client, service, clock, bravo)
    store.close()


def test_http_exchange_finds_the_hidden_post_without_showing_it(node: Node) -> None:
    near = node.ask(10.0 + FIRES_M + 40.0)
    assert near["meets"] and near["cells_met"] >= 1 and near["kind"] == "fires" and near["buffer_m"] == FIRES_M
    assert near["bytes_sent"] > 0 and near["bytes_received"] > near["bytes_sent"]
    far = node.ask(5000.0, 400.0)
    assert not far["meets"] and far["cells_met"] == 0
    assert not node.ask(10.0 + FIRES_M + 40.0, kind="patrol")["meets"]  # a patrol keeps only the ground buffer
    offer = node.client.get("/v1/psi", headers={"Authorization": f"Bearer {node.bravo}"}).json()
    assert offer["party"] == "alfa" and offer["resolution"] == 9 and offer["limits"]["burst"] == 3


def test_http_answer_holds_no_position_or_cell(node: Node) -> None:
    request = psi.Asker(activity_at(200.0)).request()
    body = {"kind": "fires", "resolution": 9, "request": base64.b64encode(request).decode()}
    response = node.client.post("/v1/psi/sessions", json=body, headers={"Authorization": f"Bearer {node.bravo}"})
    assert response.status_code == 200, response.text
    text = response.text
    assert "34.55" not in text and "71.02" not in text  # (base64 has no '.')
    answer = response.json()
    sent = base64.b64decode(answer["setup"]) + base64.b64decode(answer["response"])
    assert not any(c.encode() in sent or c in text for c in site_cells())
    assert answer["asker_cells"] == psi.padded_size(len(activity_at(200.0)))


def refusal(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    return error


def test_http_refusals_name_what_is_wrong(node: Node) -> None:
    request = base64.b64encode(psi.Asker(activity_at(200.0)).request()).decode()
    bravo = {"Authorization": f"Bearer {node.bravo}"}
    post = node.client.post
    refusal(post("/v1/psi/sessions", json={"kind": "fires", "resolution": 9, "request": request}), 401, "unauthenticated")
    admin = {"Authorization": f"Bearer {node.service.create_token(ROOT, None, 'admin')}"}
    refusal(
        post("/v1/psi/sessions", json={"kind": "fires", "resolution": 9, "request": request}, headers=admin), 403, "forbidden"
    )
    wrong = post("/v1/psi/sessions", json={"kind": "fires", "resolution": 8, "request": request}, headers=bravo)
    assert "resolution 9" in refusal(wrong, 422, "invalid_input", "resolution")["message"]
    refusal(
        post("/v1/psi/sessions", json={"kind": "fires", "resolution": 9, "request": "%%%"}, headers=bravo),
        422,
        "invalid_input",
        "request",
    )
    refusal(
        post("/v1/psi/sessions", json={"kind": "naval", "resolution": 9, "request": request}, headers=bravo),
        422,
        "invalid_input",
        "kind",
    )


def test_http_rate_limit_says_when_to_come_back(node: Node) -> None:
    for _ in range(3):
        node.ask(5000.0)
    request = base64.b64encode(psi.Asker(activity_at(200.0)).request()).decode()
    response = node.client.post(
        "/v1/psi/sessions",
        json={"kind": "fires", "resolution": 9, "request": request},
        headers={"Authorization": f"Bearer {node.bravo}"},
    )
    error = refusal(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "600" and error["retry_after_s"] == 600.0
    node.clock.advance_to(T0 + timedelta(minutes=10))
    assert node.ask(10.0 + FIRES_M + 40.0)["meets"]


def test_a_node_offers_nothing_unless_told_what(fresh_db: str) -> None:
    store = open_store(fresh_db)
    service, bravo = owner_service(store)
    app = with_psi(create_app(service))
    app.state.psi = PsiNode(service, PsiSettings())
    with TestClient(app) as client:
        request = base64.b64encode(psi.Asker(activity_at(200.0)).request()).decode()
        response = client.post(
            "/v1/psi/sessions",
            json={"kind": "fires", "resolution": 9, "request": request},
            headers={"Authorization": f"Bearer {bravo}"},
        )
        assert "DECONFLICT_PSI_PARTY" in refusal(response, 503, "psi_not_offered")["message"]
    store.close()


def test_a_node_offers_places_or_cells_from_a_file(tmp_path: Path, fresh_db: str) -> None:
    store = open_store(fresh_db)
    service, bravo = owner_service(store)
    places = tmp_path / "places.json"
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [SITE[1], SITE[0]]},
        "properties": {"radius_m": 10},
    }
    places.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({"resolution": 9, "cells": {"fires": sorted(site_cells())}}))
    for path in (places, cells):
        app = with_psi(create_app(service))
        app.state.psi = PsiNode(service, PsiSettings(places=str(path)))
        with TestClient(app) as client:
            ask = lambda d: ask_remote("http://testserver", bravo, lambda r: activity_at(d), "fires", http=client)  # type: ignore[arg-type]  # noqa: E731
            assert ask(10.0 + FIRES_M + 40.0)["meets"] and not ask(5000.0)["meets"]
    store.close()


def test_psi_settings_come_from_the_environment_with_precise_errors() -> None:
    made = PsiSettings.from_env({"DECONFLICT_PSI_PARTY": "alfa", "DECONFLICT_PSI_BURST": "4", "DECONFLICT_PSI_PAD": "no"})
    assert (made.party, made.burst, made.pad, made.resolution) == ("alfa", 4, False, 9)
    with pytest.raises(InvalidInput) as bad:
        PsiSettings.from_env({"DECONFLICT_PSI_BURST": "many"})
    assert bad.value.field == "DECONFLICT_PSI_BURST"
    with pytest.raises(InvalidInput) as zero:
        PsiSettings.from_env({"DECONFLICT_PSI_BURST": "0"})
    assert zero.value.field == "DECONFLICT_PSI_BURST"
    with pytest.raises(InvalidInput) as res:
        PsiSettings.from_env({"DECONFLICT_PSI_RESOLUTION": "15"})
    assert res.value.field == "DECONFLICT_PSI_RESOLUTION"


def test_psi_bench_prints_time_and_bytes() -> None:
    result = CliRunner().invoke(
        cli_app, ["psi", "bench", "--owner-cells", "300", "--asker-cells", "40", "--met", "7", "--repeat", "1", "--no-http"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["owner_cells"], figures["asker_cells"]) == (300, 40)
    assert figures["in_process"]["cells_met"] == 7
    assert figures["in_process"]["request_bytes"] == 40 * (psi.ELEMENT_BYTES + 2)
    assert figures["in_process"]["total_s"] > 0


# ---------------------------------------------------------------------------- between two processes on loopback

DECONFLICT = Path(sys.executable).parent / "deconflict"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def owner_node(tmp_path: Path, fresh_db: str) -> Iterator[tuple[str, str]]:
    """``deconflict serve`` in its own process, offering alfa's places from its store; yields (url, bravo's token)."""
    db = fresh_db
    store = open_store(db)
    _, bravo = owner_service(store)
    store.close()
    port, log = free_port(), tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECONFLICT_")}
    env["DECONFLICT_PSI_PARTY"] = "alfa"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DECONFLICT), "serve", "--db", str(db), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the owner node did not answer /healthz:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, bravo
    finally:
        process.kill()
        process.wait(10)


def test_psi_ask_between_two_processes(owner_node: tuple[str, str], tmp_path: Path) -> None:
    """The asker (this process, through the CLI) and the owner (a deconflict serve process) over loopback."""
    url, bravo = owner_node
    runner = CliRunner()
    outcomes = {}
    for name, distance, radius in (("near", 10.0 + FIRES_M + 40.0, 50.0), ("far", 5000.0, 400.0)):
        lat, lon = moved(*SITE, 60.0, distance)
        activity = tmp_path / f"{name}.json"
        volume = {"position": f"{lat:.6f}, {lon:.6f}", "radius_m": radius, "window": {"start": "2026-01-01T00:00:00Z"}}
        activity.write_text(json.dumps({"kind": "fires", "purpose": "test", "volumes": [volume]}))
        result = runner.invoke(cli_app, ["psi", "ask", "--server", url, "--token", bravo, "--activity", str(activity)])
        assert result.exit_code == 0, result.output
        outcomes[name] = json.loads(result.stdout)
    assert outcomes["near"]["meets"] and outcomes["near"]["cells_met"] >= 1
    assert not outcomes["far"]["meets"] and outcomes["far"]["cells_met"] == 0
    for answer in outcomes.values():
        assert set(answer) >= {"meets", "cells_met", "asker_cells", "elapsed_s", "bytes_sent", "bytes_received"}
    refused = runner.invoke(
        cli_app, ["psi", "ask", "--server", url, "--token", "wrong", "--activity", str(tmp_path / "far.json")]
    )
    assert refused.exit_code == 2 and "unauthenticated" in refused.stderr


def test_a_route_that_turns_back_on_itself_is_covered_along_all_its_length() -> None:
    """Found by the property above: GEOS loses part of the buffer of a line whose segments run back over each other."""
    route = LineString([(0.0, 0.0), (-0.0390625, 0.0), (-0.03125, 0.0), (0.0, -0.015625), (0.0, 0.0)])
    for resolution in (8, 9, 10):
        cells = psi.cover([psi.Place(route, 0.5)], resolution, 857.0)
        on = [route.interpolate(i / 200, normalized=True) for i in range(201)]
        assert all(cell(p.y, p.x, resolution) in cells for p in on)


def test_each_session_is_recorded_with_its_sizes_only_for_the_two_sides(node: Node) -> None:
    """Investigators can see who asked whom and when; the record holds the set sizes, never cells or keys."""
    request = psi.Asker(activity_at(200.0)).request()
    body = {"kind": "fires", "resolution": 9, "request": base64.b64encode(request).decode()}
    answer = node.client.post("/v1/psi/sessions", json=body, headers={"Authorization": f"Bearer {node.bravo}"}).json()
    (entry,) = node.service.store.events(answer["record"] - 1, 1)
    assert (entry.type, entry.party) == ("psi.answered", "bravo")
    sizes = {k: entry.data[k] for k in ("asker", "owner", "session", "kind", "asker_cells")}
    assert sizes == {"asker": "bravo", "owner": "alfa", "session": answer["session"], "kind": "fires", "asker_cells": 64}
    assert set(entry.data) == {*sizes, "owner_cells"} and entry.data["owner_cells"] >= psi.PAD_MINIMUM
    node.service.create_party(ROOT, {"id": "charlie", "name": "Charlie"})
    charlie = node.service.create_token(ROOT, "charlie", "viewer")

    def entries(token: str) -> str:
        span = {"start": answer["record"] - 1, "end": answer["record"]}
        return node.client.get("/v1/ledger/entries", params=span, headers={"Authorization": f"Bearer {token}"}).text

    assert '"owner_cells"' in entries(node.bravo)  # the asker reads its own session's record
    assert '"owner_cells"' not in entries(charlie) and "psi.answered" in entries(charlie)  # others: that it took place


def test_a_partys_private_cross_checks_spend_one_budget_across_the_nodes(fresh_db: str) -> None:
    """Two nodes on one store (or two workers of one server) offering alfa's places: bravo's three asked on
    either spend the same budget of three, each node told of the other's by its records."""
    clock = ManualClock(T0)
    service_a, bravo = owner_service(open_store(fresh_db), clock)
    service_b = Service(open_store(fresh_db), clock)
    settings = PsiSettings(party="alfa", burst=3, rate_per_hour=6)
    apps = [with_psi(create_app(service, owns_store=True)) for service in (service_a, service_b)]
    for app, service in zip(apps, (service_a, service_b), strict=True):
        app.state.psi = PsiNode(service, settings)
    request = base64.b64encode(psi.Asker(activity_at(200.0)).request()).decode()
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        on_a, on_b = Node(apps[0], a, service_a, clock, bravo), Node(apps[1], b, service_b, clock, bravo)
        on_a.ask(5000.0)
        on_a.ask(5000.0)
        service_b.catch_up()
        on_b.ask(5000.0)  # the third: B had one left
        for node in (on_a, on_b):
            node.service.catch_up()
            response = node.client.post(
                "/v1/psi/sessions",
                json={"kind": "fires", "resolution": 9, "request": request},
                headers={"Authorization": f"Bearer {bravo}"},
            )
            refusal(response, 429, "rate_limited")
