"""Probing: a party that maps another's hidden sites by asking many checks is noticed, and budgets slow it down.

The simulated prober is bravo, after alfa's hidden post. It knows only a box of about 8 by 8 km
that holds the post, and keeps the candidate places (a 25 m lattice) still consistent with its
answers: a hidden finding of alfa's means the post is within the check's reach, none that it
is not. It sweeps the box with fires checks (1500 m), then places each next check so that its
reach cuts the candidates in half. Its own candidates say how well it has placed the post.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from deconfliction.cli import app as cli_app
from deconfliction.clock import ManualClock
from deconfliction.geo import LatLon, LocalPlane
from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore
from tests.api.conftest import Api, iso, refusal
from tests.api.test_activities import look

POST = LatLon(34.5712, 71.0433)  # alfa's hidden post
BOX_CENTRE = LatLon(34.5600, 71.0350)  # the middle of what bravo knows: not the post
BOX_HALF_M = 4000.0
REACH_M = 1500.0 * 1.005  # a fires check's buffer, widened as the rules widen it (docs/rules.md)
ASKED = Callable[[LatLon], bool]  # check one place; True when alfa's hidden post is in the answer


def hit(answer: dict[str, Any]) -> bool:
    return {"party": "alfa", "disclosure": "hidden"} in answer["conflicts"]


class Prober:
    """bravo's side: the candidates still possible, and where to check next."""

    def __init__(self) -> None:
        self.plane = LocalPlane(BOX_CENTRE)
        steps = np.arange(-BOX_HALF_M, BOX_HALF_M + 1.0, 25.0)
        xs, ys = np.meshgrid(steps, steps)
        self.xy = np.column_stack((xs.ravel(), ys.ravel()))

    def width_m(self) -> float:
        """The diameter of the smallest circle around the candidates: how well bravo has placed the post."""
        return 2.0 * float(shapely.minimum_bounding_radius(shapely.multipoints(self.xy)))

    def learn(self, at_xy: np.ndarray, found: bool) -> None:
        inside = np.hypot(*(self.xy - at_xy).T) <= REACH_M
        self.xy = self.xy[inside if found else ~inside]

    def places(self) -> Iterator[np.ndarray]:
        """A sweep on a 2 km grid until the first hit, then checks whose reach halves the candidates."""
        grid = np.arange(-BOX_HALF_M + 1000.0, BOX_HALF_M, 2000.0)
        for y in grid:
            for x in grid:
                if np.hypot(*(self.xy - (x, y)).T).min() <= REACH_M:  # no use checking where nothing is left
                    yield np.array([x, y])
                    if self.found_once:
                        break
            if self.found_once:
                break
        while len(self.xy) > 1:
            centre = self.xy.mean(axis=0)
            spread = self.xy - centre
            _, vectors = np.linalg.eigh(spread.T @ spread)
            yield centre + REACH_M * vectors[:, -1]  # the reach's edge through the middle, across the longest spread

    found_once = False

    def run(self, ask: ASKED, noticed: Callable[[], bool], most: int = 200) -> tuple[float | None, float, int]:
        """Sweep until placed within 200 m; return bravo's width when alfa was first told, its width at the end, checks."""
        width_when_noticed: float | None = None
        checks = 0
        for xy in self.places():
            lon, lat = self.plane.unproject(shapely.Point(*xy)).coords[0]
            found = ask(LatLon(lat, lon))
            self.found_once |= found
            self.learn(xy, found)
            checks += 1
            if width_when_noticed is None and noticed():
                width_when_noticed = self.width_m()
            if self.width_m() < 200.0 or checks >= most:
                break
        return width_when_noticed, self.width_m(), checks


def where(p: LatLon) -> str:
    return f"{p.lat:.6f}, {p.lon:.6f}"


def test_a_sweep_is_noticed_before_it_places_the_post_within_a_kilometre(api: Api) -> None:
    api.asset("alfa", "post", disclosure="hidden", position=where(POST), name="Post 7")

    def ask(p: LatLon) -> bool:
        api.advance(1.0)  # within bravo's budget of one check a second
        return hit(api.check("bravo", position=where(p), kind="fires"))

    def noticed() -> bool:
        api.service.tick()
        return bool(api.ok("GET", "/v1/probes", "alfa", 200))

    prober = Prober()
    width_when_noticed, width_at_end, checks = prober.run(ask, noticed)
    assert width_at_end < 200.0, f"the sweep should succeed ({checks} checks, still {width_at_end:.0f} m)"
    assert width_when_noticed is not None and width_when_noticed >= 1000.0, width_when_noticed

    (first, *_) = reversed(api.ok("GET", "/v1/probes", "alfa", 200))
    assert (first["party"], first["asker"], first["id"], first["object"], first["name"]) == (
        "alfa",
        "bravo",
        "post",
        "site",
        "Post 7",
    )
    assert first["checks"] >= 1 and first["hits"] >= 1 and first["closest_m"] < REACH_M
    assert api.ok("GET", "/v1/probes", "alfa", 200, params={"asker": "charlie"}) == []

    # The asker is told nothing: not in its lists, not in its events, not in its answers.
    assert api.ok("GET", "/v1/probes", "bravo", 200) == []
    assert api.ok("GET", "/v1/probes", "bravo:viewer", 200) == []

    def told(party: str) -> set[str]:
        return {e["type"] for e in api.service.events(Caller(party, Role.LIAISON), 0, 10_000)[0]}

    assert "probe.suspected" not in told("bravo")
    assert "probe.suspected" in told("alfa")


def _quiet_service() -> tuple[Service, ManualClock, Caller]:
    """A service whose owners hear only of narrowing: the clustering sign is set out of reach."""
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    service = Service(MemoryStore(), clock, Settings(probe_checks=1_000_000))
    for party in ("alfa", "bravo"):
        service.create_party(ROOT, {"id": party, "name": party.title()})
    alfa = service.authenticate(service.create_token(ROOT, "alfa", "liaison"))
    service.register_asset(
        alfa, {"id": "post", "kind": "site", "name": "Post 7", "disclosure": "hidden", "position": where(POST)}
    )
    return service, clock, service.authenticate(service.create_token(ROOT, "bravo", "liaison"))


def test_narrowing_alone_is_noticed_before_a_kilometre() -> None:
    """The sign that needs no count: what the answers together have told bravo."""
    service, clock, bravo = _quiet_service()

    def ask(p: LatLon) -> bool:
        clock.advance_to(clock.now() + timedelta(seconds=1))
        return hit(service.check(bravo, {"position": where(p), "kind": "fires"}))

    def noticed() -> bool:
        service.tick()
        return bool(service.probes_seen(ROOT))

    width_when_noticed, width_at_end, _ = Prober().run(ask, noticed)
    assert width_at_end < 200.0
    assert width_when_noticed is not None and width_when_noticed >= 1000.0, width_when_noticed
    (probe,) = [p for p in service.probes_seen(ROOT) if p["signs"] == ["narrowing"]][-1:]
    assert probe["narrowed_to_m"] < 2000.0


def test_what_was_learnt_of_a_post_is_forgotten_when_it_moves_not_when_it_reports_in_place() -> None:
    service, clock, bravo = _quiet_service()
    alfa = service.authenticate(service.create_token(ROOT, "alfa", "liaison"))
    service.check(bravo, {"position": where(POST), "kind": "fires"})
    assert len(service.probes) == 1, "bravo's check near the hidden post starts a trail"
    clock.advance_to(clock.now() + timedelta(minutes=5))
    service.report(alfa, {"asset": "post", "position": where(POST), "time": iso(clock.now())})
    assert len(service.probes) == 1, "reported where it was: what bravo learnt still holds"
    clock.advance_to(clock.now() + timedelta(minutes=5))
    service.report(alfa, {"asset": "post", "position": where(LatLon(34.60, 71.10)), "time": iso(clock.now())})
    assert len(service.probes) == 0, "moved: forgotten at once, not after the window"


def _route(start: LatLon, bearing_deg: float, km: float, every_m: float) -> list[LatLon]:
    plane = LocalPlane(start)
    out = []
    for i in range(int(km * 1000 / every_m) + 1):
        d = i * every_m
        lon, lat = plane.unproject(
            shapely.Point(d * math.sin(math.radians(bearing_deg)), d * math.cos(math.radians(bearing_deg)))
        ).coords[0]
        out.append(LatLon(lat, lon))
    return out


def test_ordinary_traffic_is_not_reported(api: Api) -> None:
    """Routes checked waypoint by waypoint, corridors checked whole, and one's own activity checked again and again."""
    api.asset("alfa", "post", disclosure="hidden", position=where(POST))
    # A convoy route due north that passes 150 m west of the post, checked every kilometre, then again a day later
    # on another route 600 m east of it; fires planned along the way, checked every 2 km.
    plane = LocalPlane(POST)
    lon0, lat0 = plane.unproject(shapely.Point(-150.0, -12_000.0)).coords[0]
    lon1, lat1 = plane.unproject(shapely.Point(600.0, -12_000.0)).coords[0]
    for start, every, kind in ((LatLon(lat0, lon0), 1000.0, "ground"), (LatLon(lat1, lon1), 1000.0, "ground")):
        for p in _route(start, 0.0, 24.0, every):
            api.advance(2.0)
            api.check("bravo", position=where(p), kind=kind)
    for p in _route(LatLon(lat1, lon1), 0.0, 24.0, 2000.0):
        api.advance(2.0)
        api.check("bravo", position=where(p), kind="fires")
    # The corridor checked as one area.
    corridor = shapely.Polygon(
        [(lon0 - 0.001, lat0), (lon0 + 0.001, lat0), (lon0 + 0.001, lat0 + 0.2), (lon0 - 0.001, lat0 + 0.2)]
    )
    api.check("bravo", area=shapely.geometry.mapping(corridor), kind="ground")
    # bravo's own fire mission 1 km from the post, checked every ten seconds for ten minutes.
    near = plane.unproject(shapely.Point(-1000.0, 0.0)).coords[0]
    mission = {"position": f"{near[1]:.6f}, {near[0]:.6f}", "radius_m": 100, "kind": "fires"}
    for _ in range(60):
        api.advance(10.0)
        answer = api.check("bravo", **mission)
        assert hit(answer)  # it does conflict with the post, every time: that is what the check is for
    api.service.tick()
    assert api.ok("GET", "/v1/probes", "alfa", 200) == []


def test_a_party_beyond_its_budget_of_checks_is_told_when_to_ask_again(api: Api) -> None:
    """60 checks at once, then one a second; the budget is the party's, whichever of its tokens asks."""
    for i in range(60):
        api.check("bravo" if i % 2 else "bravo:viewer", position="34.5, 70.9", kind="ground")
    refused = api.post("/v1/checks", "bravo:viewer", json={"position": "34.5, 70.9", "kind": "ground"})
    error = refusal(refused, 429, "rate_limited", None)
    assert refused.headers["Retry-After"] == "1" and error["retry_after_s"] == 1.0
    assert "bravo has used its 60 checks" in error["message"]
    api.check("alfa", position="34.5, 71.1", kind="ground")  # another party's budget is its own
    api.advance(1.0)
    api.check("bravo", position="34.5, 70.9", kind="ground")
    refusal(api.post("/v1/checks", "bravo", json={"position": "34.5, 70.9", "kind": "ground"}), 429, "rate_limited")


@pytest.mark.parametrize("asker", ["Bravo!", ""])
def test_probes_filtered_by_a_malformed_asker_are_refused(api: Api, asker: str) -> None:
    refusal(api.get("/v1/probes", "alfa", params={"asker": asker}), 422, "invalid_input", "asker")


def test_proposals_tell_as_much_as_checks_and_are_watched_and_budgeted_alike(api: Api) -> None:
    """Who a proposal affects tells the proposer something too: fires missions around the post are noticed."""
    api.asset("alfa", "post", disclosure="hidden", position=where(POST))
    plane = LocalPlane(POST)
    for east_m, north_m in ((450.0, 1100.0), (-300.0, -1150.0), (1180.0, 200.0)):
        lon, lat = plane.unproject(shapely.Point(east_m, north_m)).coords[0]
        window = {"start": iso(api.clock.now()), "end": iso(api.clock.now() + timedelta(hours=1))}
        volume = {"position": f"{lat:.6f}, {lon:.6f}", "window": window}
        body = {"kind": "fires", "purpose": "fire mission", "volumes": [volume], "key": look(api, "bravo")}
        assert "alfa" in api.ok("POST", "/v1/activities", "bravo", 201, json=body)["affected"]
    api.service.tick()
    (probe,) = api.ok("GET", "/v1/probes", "alfa", 200)
    assert (probe["asker"], probe["id"], probe["signs"]) == ("bravo", "post", ["narrowing"])
    assert probe["hits"] == 2  # two missions' buffers met on the post: told then, not once more for the third
    for _ in range(57):  # proposals and checks spend one budget: 3 + 57 = 60
        api.check("bravo", position="34.5, 70.9", kind="ground")
    refusal(api.post("/v1/activities", "bravo", json=body), 429, "rate_limited")


def test_the_owner_reads_its_probes_from_the_command_line(api: Api) -> None:
    """``deconflict probes --as alfa`` prints what GET /v1/probes gives alfa; bravo, the asker, gets nothing."""
    api.asset("alfa", "post", disclosure="hidden", position=where(POST))
    plane = LocalPlane(POST)
    for east_m, north_m in ((450.0, 1100.0), (-300.0, -1150.0), (1180.0, 200.0)):
        lon, lat = plane.unproject(shapely.Point(east_m, north_m)).coords[0]
        api.check("bravo", position=f"{lat:.6f}, {lon:.6f}", kind="fires")
    api.service.tick()
    runner = CliRunner()
    told = runner.invoke(cli_app, ["probes", "--db", str(api.db), "--as", "alfa"])
    assert told.exit_code == 0, told.stderr
    assert json.loads(told.stdout) == api.ok("GET", "/v1/probes", "alfa", 200) != []
    asked = runner.invoke(cli_app, ["probes", "--db", str(api.db), "--as", "bravo", "--asker", "bravo"])
    assert (asked.exit_code, json.loads(asked.stdout)) == (0, [])
