"""Planned activities over HTTP: who they affect, how answers and time move them, and proof of a current picture.

The picture is the one of ``api`` (conftest): alfa's land east of the meridian 71.0 E, bravo's
west of it, no AORs, the clock at T0. Alfa's usual firing point ``FP`` lies 18 km inside its
own land, so that a fires activity there (buffer 1500 m) affects nobody unless a test puts
something of bravo's near it. A careful client looks at the area first and proposes with the
key it got (``look``); tests that are about keys build theirs on purpose.

Every refusal is checked for status, code and field, and against a record of what every
party sees (``unchanged``): a refused request has changed nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pyproj import Geod

from deconfliction.app import create_app
from deconfliction.clock import ManualClock
from deconfliction.service import ROOT, Service
from deconfliction.stores import SQLiteStore, open_store
from tests.api.conftest import ALFA_LAND, BRAVO_LAND, T0, Api, Response, add_parties, at, box, iso, refusal, running_api

WGS84 = Geod(ellps="WGS84")
FP = (34.6, 71.2)  # alfa's firing point, 18 km east of the border
FP_TEXT = f"{FP[0]}, {FP[1]}"
THEATRE = "70.5,34.0,71.5,35.2"  # a box around everything these tests place
STALE_FIELDS = {"code", "message", "field", "key", "area", "changed"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offset(lat: float, lon: float, metres: float, bearing: float = 0.0) -> str:
    """The position ``metres`` from (lat, lon) along ``bearing`` (degrees from north), as text."""
    lon2, lat2, _ = WGS84.fwd(lon, lat, bearing, metres)
    return f"{lat2:.7f}, {lon2:.7f}"


def window(start_s: float = 0, end_s: float = 3600) -> dict[str, str]:
    return {"start": iso(at(start_s)), "end": iso(at(end_s))}


def point(position: str = FP_TEXT, radius_m: float = 0, start_s: float = 0, end_s: float = 3600) -> dict[str, Any]:
    """A volume: a position with a radius over a window (seconds after T0)."""
    return {"position": position, "radius_m": radius_m, "window": window(start_s, end_s)}


def look(api: Api, who: str, area: str = THEATRE) -> str:
    """The picture key ``who`` gets by looking at ``area`` (GET /v1/picture?area=...)."""
    key: str = api.ok("GET", f"/v1/picture?area={area}", who, 200)["picture_key"]
    return key


def propose(
    api: Api, who: str = "alfa", volumes: list[dict[str, Any]] | None = None, kind: str = "fires", **extra: Any
) -> Response:
    """POST /v1/activities with a key from a look just before, unless ``key`` is given (None: no key at all)."""
    body = {"kind": kind, "purpose": f"{kind} by {who}", "volumes": volumes or [point()], **extra}
    if "key" not in extra:
        body["key"] = look(api, who)
    elif extra["key"] is None:
        del body["key"]
    return api.post("/v1/activities", who, json=body)


def proposed(api: Api, who: str = "alfa", volumes: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    response = propose(api, who, volumes, **extra)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def activate(api: Api, activity_id: str, who: str = "alfa", proposer: str = "alfa", **body: Any) -> Response:
    """POST .../activate with a fresh key, unless ``key`` is given."""
    body.setdefault("key", look(api, who))
    return api.post(f"/v1/activities/{proposer}/{activity_id}/activate", who, json=body)


def answer(api: Api, activity_id: str, who: str, objection: str | None = None, proposer: str = "alfa") -> Response:
    if objection is None:
        return api.post(f"/v1/activities/{proposer}/{activity_id}/acknowledge", who)
    return api.post(f"/v1/activities/{proposer}/{activity_id}/object", who, json={"reason": objection})


def state(api: Api, activity_id: str, who: str = "alfa", proposer: str = "alfa") -> str:
    return str(api.ok("GET", f"/v1/activities/{proposer}/{activity_id}", who, 200)["state"])


def bravo_site(api: Api, metres: float, asset_id: str = "b-post", bearing: float = 90.0, **extra: Any) -> None:
    """A site of bravo's ``metres`` from FP (inside alfa's land: a liaison post, a clinic)."""
    api.asset("bravo", asset_id, "site", position=offset(*FP, metres, bearing), **extra)


def events(api: Api, who: str, type_: str | None = None) -> list[dict[str, Any]]:
    """The event log as ``who``'s party may see it (the same call that feeds SSE and WebSocket)."""
    caller = api.service.authenticate(api.token(who))
    shown, _ = api.service.events(caller, 0, 10_000)
    return [e for e in shown if type_ is None or e["type"] == type_]


def stale(response: Response) -> dict[str, Any]:
    """Assert a 409 stale_picture refusal with its details; return its error object."""
    assert response.status_code == 409, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == STALE_FIELDS, error
    assert (error["code"], error["field"]) == ("stale_picture", "key"), error
    assert isinstance(error["message"], str) and error["message"]
    return error


@contextmanager
def unchanged(api: Api) -> Iterator[None]:
    """Assert that what follows changes nothing alfa, bravo or the admin sees: version, counts, activities."""

    def seen() -> list[Any]:
        return [
            api.ok("GET", "/v1/picture", "admin", 200),
            api.ok("GET", "/v1/activities", "alfa", 200),
            api.ok("GET", "/v1/activities", "bravo", 200),
        ]

    before = seen()
    yield
    assert seen() == before


# ---------------------------------------------------------------------------- the lifecycle


def test_an_activity_nobody_else_is_near_is_cleared_at_once(api: Api) -> None:
    """No affected party: nobody has to answer, so the proposal is cleared as it is made."""
    made = proposed(api)
    assert made["state"] == "cleared"
    assert made["affected"] == [] and made["waiting_for"] == [] and made["answers"] == {}
    assert (made["party"], made["kind"], made["purpose"]) == ("alfa", "fires", "fires by alfa")
    assert made["proposed_at"] == at(0).isoformat()
    assert made["deadline"] == at(600).isoformat()
    assert api.ok("GET", f"/v1/activities/alfa/{made['id']}", "alfa", 200) == made


def test_every_affected_party_acknowledging_clears_it(api: Api) -> None:
    """proposed → cleared when every affected party has acknowledged; each answer is recorded with its time."""
    api.party("charlie")
    bravo_site(api, 1000)
    api.asset("charlie", "c-post", "site", position=offset(*FP, 1000, 270))
    made = proposed(api)
    assert made["state"] == "proposed"
    assert made["affected"] == ["bravo", "charlie"] == made["waiting_for"]

    api.advance(60)
    after_bravo = api.ok("POST", f"/v1/activities/alfa/{made['id']}/acknowledge", "bravo", 200)
    assert after_bravo["state"] == "proposed", "one of two answers does not clear it"
    assert after_bravo["waiting_for"] == ["charlie"]
    assert after_bravo["answers"] == {"bravo": {"answer": "acknowledged", "at": at(60).isoformat(), "reason": None}}

    cleared = api.ok("POST", f"/v1/activities/alfa/{made['id']}/acknowledge", "charlie", 200)
    assert cleared["state"] == "cleared" and cleared["waiting_for"] == []
    assert set(cleared["answers"]) == {"bravo", "charlie"}


def test_one_objection_makes_it_objected_with_the_reason_shown(api: Api) -> None:
    """proposed → objected when any affected party objects; the reason is in ``answers`` for both sides."""
    bravo_site(api, 1000)
    made = proposed(api)
    objected = api.ok("POST", f"/v1/activities/alfa/{made['id']}/object", "bravo", 200, json={"reason": "our patrol is there"})
    assert objected["state"] == "objected"
    assert objected["answers"] == {"bravo": {"answer": "objected", "at": at(0).isoformat(), "reason": "our patrol is there"}}
    assert api.ok("GET", f"/v1/activities/alfa/{made['id']}", "alfa", 200) == objected
    (notice,) = events(api, "alfa", "activity.objected")
    assert notice["data"]["by"] == "bravo" and notice["data"]["reason"] == "our patrol is there"
    assert notice["data"]["state"] == "objected"


def test_the_objector_acknowledging_instead_clears_it(api: Api) -> None:
    """objected → cleared: a party may change its answer, and its latest answer is the one that counts."""
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo", "our patrol is there")
    api.advance(120)
    cleared = api.ok("POST", f"/v1/activities/alfa/{made['id']}/acknowledge", "bravo", 200)
    assert cleared["state"] == "cleared"
    assert cleared["answers"] == {"bravo": {"answer": "acknowledged", "at": at(120).isoformat(), "reason": None}}


def test_a_cleared_activity_is_objected_when_a_party_changes_its_mind(api: Api) -> None:
    """cleared → objected: until it is under way an affected party may still object."""
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo")
    assert state(api, made["id"]) == "cleared"
    assert answer(api, made["id"], "bravo", "a convoy was re-routed there").json()["state"] == "objected"


def test_the_deadline_passing_escalates_it_and_not_a_second_before(api: Api) -> None:
    """proposed → escalated by the clock: fires has 10 minutes; both sides are told, and silence is not consent."""
    bravo_site(api, 1000)
    made = proposed(api)
    api.clock.advance_to(at(599))
    assert api.service.tick() == []
    assert state(api, made["id"]) == "proposed"

    api.clock.advance_to(at(600))
    assert api.service.tick() == [{"type": "activity.escalated", "party": "alfa", "id": made["id"]}]
    escalated = api.ok("GET", f"/v1/activities/alfa/{made['id']}", "alfa", 200)
    assert escalated["state"] == "escalated"
    assert escalated["escalated_at"] == at(600).isoformat()
    assert escalated["waiting_for"] == ["bravo"]
    for who in ("alfa", "bravo"):
        (notice,) = events(api, who, "activity.escalated")
        assert notice["data"]["waiting_for"] == ["bravo"] and notice["data"]["state"] == "escalated"
    assert api.service.tick() == [], "an escalation fires once"


@pytest.mark.parametrize(("kind", "deadline_s"), [("fires", 600), ("air", 1800), ("patrol", 3600), ("movement", 3600)])
def test_each_kind_has_its_deadline(api: Api, kind: str, deadline_s: int) -> None:
    bravo_site(api, 100)
    made = proposed(api, kind=kind, volumes=[point(end_s=7200)])
    assert made["deadline"] == at(deadline_s).isoformat()
    api.clock.advance_to(at(deadline_s - 1))
    api.service.tick()
    assert state(api, made["id"]) == "proposed"
    api.clock.advance_to(at(deadline_s))
    api.service.tick()
    assert state(api, made["id"]) == "escalated"


def test_late_acknowledgements_clear_an_escalated_activity(api: Api) -> None:
    """escalated → cleared: an answer after the deadline still counts."""
    bravo_site(api, 1000)
    made = proposed(api)
    api.clock.advance_to(at(700))
    api.service.tick()
    cleared = answer(api, made["id"], "bravo").json()
    assert cleared["state"] == "cleared"
    assert cleared["escalated_at"] == at(700).isoformat(), "the record keeps that it was late (escalated by the tick at 700 s)"


def test_an_escalated_activity_objected_late_is_objected(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    api.clock.advance_to(at(700))
    api.service.tick()
    assert answer(api, made["id"], "bravo", "too late to move our people").json()["state"] == "objected"


def test_the_proposer_activates_a_cleared_activity(api: Api) -> None:
    """cleared → active, by the proposer with a current key; no override is recorded."""
    made = proposed(api)
    api.advance(30)
    active = activate(api, made["id"])
    assert active.status_code == 200, active.text
    assert active.json()["state"] == "active"
    assert active.json()["activated_at"] == at(30).isoformat()
    assert active.json()["override"] is None
    (notice,) = events(api, "alfa", "activity.activated")
    assert "override" not in notice["data"] and notice["data"]["state"] == "active"


def test_an_override_on_a_cleared_activity_is_refused_not_dropped(api: Api) -> None:
    """A cleared activity needs no override: one sent anyway is refused (422, field override), not silently ignored."""
    made = proposed(api)
    with unchanged(api):
        refusal(activate(api, made["id"], override="just in case"), 422, "invalid_input", "override")
    assert state(api, made["id"]) == "cleared"


def test_the_proposer_completes_an_active_activity(api: Api) -> None:
    """active → completed by the proposer, before its windows end."""
    made = proposed(api)
    activate(api, made["id"])
    api.advance(600)
    done = api.ok("POST", f"/v1/activities/alfa/{made['id']}/complete", "alfa", 200)
    assert done["state"] == "completed"
    assert (done["ended_at"], done["end_reason"]) == (at(600).isoformat(), "completed by the proposer")


@pytest.mark.parametrize("before", ["proposed", "objected", "escalated", "cleared", "active"])
def test_the_proposer_cancels_an_activity_in_any_state_before_its_end(api: Api, before: str) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    if before == "objected":
        answer(api, made["id"], "bravo", "no")
    elif before == "escalated":
        api.clock.advance_to(at(600))
        api.service.tick()
    elif before in ("cleared", "active"):
        answer(api, made["id"], "bravo")
    if before == "active":
        activate(api, made["id"])
    assert state(api, made["id"]) == before
    cancelled = api.ok("POST", f"/v1/activities/alfa/{made['id']}/cancel", "alfa", 200, json={"reason": "the target moved"})
    assert (cancelled["state"], cancelled["end_reason"]) == ("cancelled", "the target moved")
    (notice,) = events(api, "bravo", "activity.cancelled")
    assert notice["data"]["reason"] == "the target moved"


def test_windows_ending_complete_an_active_activity_and_cancel_one_never_activated(api: Api) -> None:
    """On the tick after the last window ends: active → completed, anything still waiting → cancelled."""
    bravo_site(api, 1000)
    under_way = proposed(api, volumes=[point(end_s=900), point(offset(*FP, 500), end_s=1800)])
    answer(api, under_way["id"], "bravo")
    activate(api, under_way["id"])
    waiting = proposed(api, volumes=[point(end_s=1800)])
    answer(api, waiting["id"], "bravo")
    never_answered = proposed(api, volumes=[point(end_s=1800)])

    api.clock.advance_to(at(1800))
    api.service.tick()
    assert state(api, under_way["id"]) == "active", "the window is closed: it ends after its end, not at it"
    api.clock.advance_to(at(1801))
    fired = {(f["type"], f["id"]) for f in api.service.tick()}
    assert fired == {
        ("activity.completed", under_way["id"]),
        ("activity.cancelled", waiting["id"]),
        ("activity.cancelled", never_answered["id"]),
    }
    done = api.ok("GET", f"/v1/activities/alfa/{under_way['id']}", "alfa", 200)
    assert (done["state"], done["end_reason"], done["ended_at"]) == ("completed", "its windows ended", at(1801).isoformat())
    for activity, was in ((waiting, "cleared"), (never_answered, "escalated")):
        gone = api.ok("GET", f"/v1/activities/alfa/{activity['id']}", "alfa", 200)
        assert gone["state"] == "cancelled"
        assert gone["end_reason"] == f"its windows ended before it was activated (it was {was})"
    assert api.ok("GET", "/v1/picture", "admin", 200)["activities"] == 0


# ---------------------------------------------------------------------------- who is affected


@pytest.mark.parametrize(("metres", "affected"), [(1400, ["bravo"]), (1650, [])])
def test_a_site_within_the_fires_buffer_makes_its_party_affected(api: Api, metres: float, affected: list[str]) -> None:
    """A fires mission (buffer 1500 m) affects bravo if bravo's site lies within the buffer of the volume, not beyond."""
    bravo_site(api, metres)
    assert proposed(api)["affected"] == affected


def test_the_radius_of_a_volume_widens_the_buffer(api: Api) -> None:
    bravo_site(api, 2000)
    assert proposed(api, volumes=[point(radius_m=600)])["affected"] == ["bravo"]


def test_a_hidden_site_makes_its_party_affected(api: Api) -> None:
    """Need to know hides where the site is, not that its party must be asked."""
    bravo_site(api, 1000, disclosure="hidden")
    assert proposed(api)["affected"] == ["bravo"]


def test_a_site_within_the_buffer_but_outside_the_window_is_still_there(api: Api) -> None:
    """A site holds until moved: a volume later in the day is near it as well."""
    bravo_site(api, 1000)
    assert proposed(api, volumes=[point(start_s=7200, end_s=9000)])["affected"] == ["bravo"]


@pytest.mark.parametrize(("lon", "affected"), [(71.01, ["bravo"]), (71.03, [])])
def test_the_buffered_volume_touching_bravos_territory_makes_bravo_affected(api: Api, lon: float, affected: list[str]) -> None:
    """At 71.01 E the fires buffer crosses the border (900 m away) into bravo's land; at 71.03 E (2.7 km) it does not."""
    assert proposed(api, volumes=[point(f"34.6, {lon}")])["affected"] == affected


def test_bravos_aor_touched_by_the_buffered_volume_makes_bravo_affected(api: Api) -> None:
    api.aor("bravo", "liaison-cell", box(71.21, 34.59, 71.23, 34.61))  # 900 m east of FP, in alfa's land
    assert proposed(api)["affected"] == ["bravo"]


@pytest.mark.parametrize(("metres", "affected"), [(250, ["bravo"]), (400, [])])
def test_a_route_volume_affects_a_site_near_its_corridor(api: Api, metres: float, affected: list[str]) -> None:
    """A patrol route 200 m wide (ground buffer 200 m): a site 250 m from its centre line is within reach, 400 m is not."""
    route = {"type": "LineString", "coordinates": [[71.15, 34.6], [71.25, 34.6]]}
    api.asset("bravo", "b-post", "site", position=offset(34.6, 71.2, metres, 0))
    made = proposed(api, kind="patrol", volumes=[{"area": route, "width_m": 200, "window": window()}])
    assert made["affected"] == affected
    assert made["volumes"][0]["width_m"] == 200 and made["volumes"][0]["area"] == route


@pytest.mark.parametrize(("metres", "affected"), [(-500, ["bravo"]), (150, ["bravo"]), (300, [])])
def test_a_polygon_volume_affects_a_site_inside_or_near_it(api: Api, metres: float, affected: list[str]) -> None:
    """A movement over an area: a site inside it (negative: metres inside the south edge) or within 200 m of it."""
    area = box(71.15, 34.6, 71.25, 34.65)
    api.asset("bravo", "b-post", "site", position=offset(34.6, 71.2, metres, 180))
    made = proposed(api, kind="movement", volumes=[{"area": area, "window": window()}])
    assert made["affected"] == affected


def test_activities_are_seen_only_by_the_proposer_and_the_affected(api: Api) -> None:
    """A third party learns nothing of an activity that does not concern it, not even that it exists."""
    api.party("charlie")
    bravo_site(api, 1000)
    made = proposed(api)
    assert [a["id"] for a in api.ok("GET", "/v1/activities", "bravo", 200)] == [made["id"]]
    assert api.ok("GET", "/v1/activities", "charlie", 200) == []
    refusal(api.get(f"/v1/activities/alfa/{made['id']}", "charlie"), 404, "not_found", "id")
    assert [e["type"] for e in events(api, "bravo") if e["type"].startswith("activity.")] == ["activity.proposed"]
    assert [e for e in events(api, "charlie") if e["type"].startswith("activity.")] == []
    assert [a["id"] for a in api.ok("GET", f"/v1/picture?area={THEATRE}", "bravo", 200)["activities"]] == [made["id"]]
    assert api.ok("GET", f"/v1/picture?area={THEATRE}", "charlie", 200)["activities"] == []


# ---------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One picture for the refusals that need no activity of their own; each one checks that it changed nothing."""
    with running_api(tmp_path_factory.mktemp("activities") / "t.db") as api:
        yield add_parties(api)


def test_a_party_the_activity_does_not_affect_cannot_answer_it(api: Api) -> None:
    """404, as if it did not exist: a third party may not learn of it by trying to answer."""
    api.party("charlie")
    bravo_site(api, 1000)
    made = proposed(api)
    with unchanged(api):
        refusal(answer(api, made["id"], "charlie"), 404, "not_found", "id")
        refusal(answer(api, made["id"], "charlie", "no"), 404, "not_found", "id")


def test_the_proposer_cannot_answer_its_own_activity(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    with unchanged(api):
        refusal(answer(api, made["id"], "alfa"), 403, "forbidden", "id")
        refusal(answer(api, made["id"], "alfa", "no"), 403, "forbidden", "id")


def test_a_viewer_cannot_answer_for_its_party(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    with unchanged(api):
        refusal(answer(api, made["id"], "bravo:viewer"), 403, "forbidden")


def test_only_the_proposer_activates_completes_or_cancels(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo")
    with unchanged(api):
        refusal(activate(api, made["id"], "bravo"), 403, "forbidden", "id")
        refusal(api.post(f"/v1/activities/alfa/{made['id']}/cancel", "bravo", json={}), 403, "forbidden", "id")
        refusal(api.post(f"/v1/activities/alfa/{made['id']}/complete", "bravo"), 403, "forbidden", "id")


def test_an_objected_activity_is_not_activated_without_an_override(api: Api) -> None:
    """409 invalid_state naming ``override``: the message says who objected."""
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo", "our patrol is there")
    with unchanged(api):
        error = refusal(activate(api, made["id"]), 409, "invalid_state", "override")
    assert "objected by: bravo" in error["message"]


@pytest.mark.parametrize("before", ["proposed", "escalated"])
def test_an_unanswered_activity_is_not_activated_without_an_override(api: Api, before: str) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    if before == "escalated":
        api.clock.advance_to(at(600))
        api.service.tick()
    with unchanged(api):
        error = refusal(activate(api, made["id"]), 409, "invalid_state", "override")
    assert "no answer from: bravo" in error["message"]


@pytest.mark.parametrize("before", ["objected", "proposed", "escalated"])
def test_an_override_activates_an_uncleared_activity_and_tells_the_affected_at_once(api: Api, before: str) -> None:
    """objected (or unanswered) → active with an override reason: recorded, and in an ``activity.activated`` event bravo sees."""
    bravo_site(api, 1000)
    made = proposed(api)
    if before == "objected":
        answer(api, made["id"], "bravo", "our patrol is there")
    api.clock.advance_to(at(600 if before == "escalated" else 90))
    api.service.tick()
    assert state(api, made["id"]) == before
    active = activate(api, made["id"], override="troops in contact, no time to wait")
    assert active.status_code == 200, active.text
    assert active.json()["state"] == "active"
    assert active.json()["override"] == "troops in contact, no time to wait"
    assert active.json()["activated_at"] == api.clock.now().isoformat()

    (notice,) = events(api, "bravo", "activity.activated")
    assert notice["time"] == active.json()["activated_at"]
    assert notice["data"]["override"] == "troops in contact, no time to wait"
    assert notice["data"]["uncleared_state"] == before
    assert (notice["data"]["id"], notice["data"]["by"], notice["data"]["state"]) == (made["id"], "alfa", "active")


def test_the_override_notice_reaches_bravo_over_server_sent_events(api: Api) -> None:
    """GET /v1/events streams the same ``activity.activated`` with its override to bravo."""
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo", "no")
    activate(api, made["id"], override="troops in contact")
    count = len(events(api, "bravo"))
    with api.client.stream("GET", f"/v1/events?cursor=0&limit={count}", headers=api.headers("bravo")) as response:
        text = "".join(response.iter_text())
    messages = [block for block in text.split("\n\n") if "event: activity.activated" in block]
    assert len(messages) == 1
    assert '"override":"troops in contact"' in messages[0] and '"uncleared_state":"objected"' in messages[0]


def test_a_stale_key_is_refused_with_what_changed(api: Api) -> None:
    """409 stale_picture: bravo reported a unit into the area after alfa looked; the refusal names it and gives a fresh key."""
    key = look(api, "alfa")
    api.asset("bravo", "b-unit", "unit", position=offset(*FP, 1000))
    version = api.version()
    with unchanged(api):
        error = stale(propose(api, key=key))
    assert error["changed"] == [{"object": "asset", "party": "bravo", "id": "b-unit", "version": version}]
    assert error["key"].startswith(f"{version}@")
    west, south, east, north = error["area"]
    assert west < FP[1] < east and south < FP[0] < north
    fresh = proposed(api, key=error["key"])
    assert fresh["affected"] == ["bravo"], "the fresh key is good, and the unit it showed is now asked"


def test_a_hidden_change_does_not_make_a_key_stale(api: Api) -> None:
    """Need to know holds in a refusal too: a hidden unit moving in is neither named nor counted, and refuses nothing.

    Its owner is affected instead, and a visible change still refuses the key, naming only itself.
    """
    key = look(api, "alfa")
    api.asset("bravo", "ghost", "unit", position=offset(*FP, 1000), disclosure="hidden")
    assert proposed(api, key=key)["affected"] == ["bravo"]
    key = look(api, "alfa")
    api.asset("bravo", "visible", "unit", position=offset(*FP, 1200))
    api.report("bravo", "ghost", offset(*FP, 900))
    with unchanged(api):
        error = stale(propose(api, key=key))
    assert [c["id"] for c in error["changed"]] == ["visible"]
    assert "ghost" not in str(error) and "1 change(s);" in error["message"]


def test_an_activity_the_proposer_may_not_know_of_does_not_make_its_key_stale(api: Api) -> None:
    """North of both territories nobody is affected by default: charlie's fires there do not concern alfa, nor refuse its key."""
    api.party("charlie")
    north = (35.05, 71.2)
    key = look(api, "alfa")
    proposed(api, "charlie", volumes=[point(offset(*north, 1000))])
    assert proposed(api, volumes=[point(f"{north[0]}, {north[1]}")], key=key)["affected"] == []


def test_a_key_issued_before_a_restart_is_refused_with_a_fresh_one(api: Api) -> None:
    """A restart forgets where the changes since a key were: even one 30 km away makes it refuse the key; look again.

    (A key of the very version the service restarted at is still good: nothing changed since.)
    """
    key = look(api, "alfa")
    api.asset("bravo", "far", "unit", position="34.9, 70.8")
    restarted = Service(open_store(api.db), api.clock)
    try:
        with TestClient(create_app(restarted)) as client:
            headers = {"Authorization": f"Bearer {api.token('alfa')}"}
            body = {"kind": "fires", "purpose": "after a restart", "volumes": [point()], "key": key}
            error = stale(client.post("/v1/activities", headers=headers, json=body))
            assert error["changed"] == []
            assert client.post("/v1/activities", headers=headers, json=body | {"key": error["key"]}).status_code == 201
    finally:
        restarted.store.close()


def test_a_change_far_from_the_volume_does_not_make_the_key_stale(api: Api) -> None:
    """A key covers its box: a report 30 km away, outside both the key's box and the volume, does not invalidate it."""
    key = look(api, "alfa", "71.1,34.5,71.3,34.7")
    api.asset("bravo", "far", "unit", position="34.9, 70.8")
    assert propose(api, key=key).status_code == 201


def test_a_missing_key_is_refused_with_a_fresh_one(api: Api) -> None:
    with unchanged(api):
        error = stale(propose(api, key=None))
    assert error["changed"] == []
    assert propose(api, key=error["key"]).status_code == 201


@pytest.mark.parametrize("key", ["latest", "12@70.5,34.0,71.5,35.2", "", 12])
def test_a_malformed_key_is_refused(shared: Api, key: object) -> None:
    with unchanged(shared):
        refusal(propose(shared, key=key), 422, "invalid_input", "key")


def test_a_key_from_a_version_not_yet_issued_is_refused(shared: Api) -> None:
    """A key claiming a future version was never given out: 422, not a stale picture."""
    future = shared.version() + 1000
    with unchanged(shared):
        refusal(propose(shared, key=f"{future}@70.500000,34.000000,71.500000,35.200000"), 422, "invalid_input", "key")


def test_a_key_that_does_not_cover_the_buffered_volumes_is_refused(api: Api) -> None:
    """A key for the firing point alone does not prove a look at the 1.5 km around it."""
    narrow = look(api, "alfa", f"{FP[1] - 0.001},{FP[0] - 0.001},{FP[1] + 0.001},{FP[0] + 0.001}")
    with unchanged(api):
        error = stale(propose(api, key=narrow))
    assert error["changed"] == []
    west, south, east, north = error["area"]
    assert east - west > 0.03 and north - south > 0.025, "the area to look at includes the 1500 m buffer"


def test_a_stale_key_is_refused_at_activation(api: Api) -> None:
    """Activating needs a current key too: the picture may have changed while the activity waited."""
    made = proposed(api)
    key = look(api, "alfa")
    api.asset("bravo", "b-unit", "unit", position=offset(*FP, 800))
    with unchanged(api):
        error = stale(activate(api, made["id"], key=key))
    assert [c["id"] for c in error["changed"]] == ["b-unit"]
    with unchanged(api):
        stale(activate(api, made["id"], key=None))
    assert activate(api, made["id"], key=error["key"]).json()["state"] == "active"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/activities/alfa/nope"),
        ("POST", "/v1/activities/alfa/nope/acknowledge"),
        ("POST", "/v1/activities/bravo/nope/complete"),
        ("GET", "/v1/activities/nobody/nope"),
    ],
)
def test_an_unknown_activity_is_not_found(shared: Api, method: str, path: str) -> None:
    with unchanged(shared):
        refusal(shared.call(method, path, "bravo"), 404, "not_found", "id")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/activities/bravo/nope/object", {"reason": "no"}),
        ("/v1/activities/alfa/nope/activate", {"key": "1@70.500000,34.000000,71.500000,35.200000"}),
        ("/v1/activities/alfa/nope/cancel", {}),
    ],
)
def test_an_unknown_activity_is_not_found_for_any_step(shared: Api, path: str, body: dict[str, Any]) -> None:
    with unchanged(shared):
        refusal(shared.post(path, "alfa", json=body), 404, "not_found", "id")


def test_a_cleared_activity_that_never_started_cannot_be_completed(api: Api) -> None:
    made = proposed(api)
    with unchanged(api):
        error = refusal(api.post(f"/v1/activities/alfa/{made['id']}/complete", "alfa"), 409, "invalid_state", "id")
    assert "cancel" in error["message"]


def test_an_activity_is_cancelled_once(api: Api) -> None:
    made = proposed(api)
    api.ok("POST", f"/v1/activities/alfa/{made['id']}/cancel", "alfa", 200, json={})
    with unchanged(api):
        refusal(api.post(f"/v1/activities/alfa/{made['id']}/cancel", "alfa", json={}), 409, "invalid_state", "id")
        refusal(activate(api, made["id"]), 409, "invalid_state", "id")


def test_an_activity_whose_windows_ended_is_not_activated_even_before_the_tick(api: Api) -> None:
    made = proposed(api, volumes=[point(end_s=600)])
    api.clock.advance_to(at(601))
    with unchanged(api):
        error = refusal(activate(api, made["id"]), 409, "invalid_state", "id")
    assert "ended" in error["message"]


def test_an_activity_under_way_takes_no_more_answers(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo")
    activate(api, made["id"])
    with unchanged(api):
        refusal(answer(api, made["id"], "bravo", "changed our mind"), 409, "invalid_state", "id")
        refusal(activate(api, made["id"]), 409, "invalid_state", "id")


@pytest.mark.parametrize("who", ["alfa:viewer", "alfa:auditor", "admin"])
def test_only_a_liaison_proposes(shared: Api, who: str) -> None:
    with unchanged(shared):
        refusal(propose(shared, who, key=look(shared, "alfa")), 403, "forbidden")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_an_objection_needs_a_reason(api: Api, body: dict[str, Any]) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    with unchanged(api):
        refusal(api.post(f"/v1/activities/alfa/{made['id']}/object", "bravo", json=body), 422, "invalid_input", "reason")


def test_an_override_needs_a_reason(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    answer(api, made["id"], "bravo", "no")
    with unchanged(api):
        refusal(activate(api, made["id"], override="  "), 422, "invalid_input", "override")


@pytest.mark.parametrize(
    ("volume", "field"),
    [
        pytest.param(point(start_s=-7200, end_s=-1), "volumes.0.window.end", id="window-ended"),
        pytest.param(point(start_s=-7200, end_s=0), "volumes.0.window.end", id="window-ends-now"),
        pytest.param(point(start_s=600, end_s=300), "volumes.0.window.end", id="window-backwards"),
        pytest.param({"position": FP_TEXT}, "volumes.0.window", id="no-window"),
        pytest.param(
            {"position": FP_TEXT, "area": box(71.1, 34.5, 71.2, 34.6), "window": window()}, "volumes.0.position", id="both"
        ),
        pytest.param(
            {"area": {"type": "LineString", "coordinates": [[71.1, 34.6], [71.2, 34.6]]}, "window": window()},
            "volumes.0.width_m",
            id="route-without-width",
        ),
        pytest.param({"position": FP_TEXT, "width_m": 50, "window": window()}, "volumes.0.width_m", id="width-on-point"),
        pytest.param({"position": "34.6", "window": window()}, "volumes.0.position", id="bad-position"),
    ],
)
def test_a_malformed_volume_is_refused_naming_its_field(shared: Api, volume: dict[str, Any], field: str) -> None:
    with unchanged(shared):
        error = refusal(propose(shared, volumes=[volume]), 422, field=field)
    assert error["code"] in ("invalid_input", "invalid_position")


def test_the_second_volume_of_a_proposal_is_named_when_it_is_wrong(shared: Api) -> None:
    with unchanged(shared):
        refusal(propose(shared, volumes=[point(), point(end_s=-1)]), 422, "invalid_input", "volumes.1.window.end")


def test_an_activity_id_is_taken_once_by_its_proposer(api: Api) -> None:
    proposed(api, id="strike-1")
    with unchanged(api):
        error = refusal(propose(api, id="strike-1"), 409, "already_exists", "id")
    assert "strike-1" in error["message"] and "shared" not in error["message"]


def test_each_party_names_its_own_activities(api: Api) -> None:
    """alfa's fire-1 and bravo's fire-1 are two activities: each is named by its proposer and its id."""
    bravo_site(api, 1000)
    alfas = proposed(api, id="fire-1")
    assert alfas["affected"] == ["bravo"]
    bravos = proposed(api, "bravo", volumes=[point("34.6, 70.8")], id="fire-1")
    assert (bravos["party"], bravos["id"], bravos["state"]) == ("bravo", "fire-1", "cleared")

    assert api.ok("GET", "/v1/activities/alfa/fire-1", "alfa", 200) == alfas
    assert api.ok("GET", "/v1/activities/bravo/fire-1", "bravo", 200) == bravos
    assert api.ok("GET", "/v1/activities/alfa/fire-1", "bravo", 200) == alfas, "alfa's affects bravo"
    refusal(api.get("/v1/activities/bravo/fire-1", "alfa"), 404, "not_found", "id")
    assert [(a["party"], a["id"]) for a in api.ok("GET", "/v1/activities", "alfa", 200)] == [("alfa", "fire-1")]
    listed = {(a["party"], a["id"]) for a in api.ok("GET", "/v1/activities", "bravo", 200)}
    assert listed == {("alfa", "fire-1"), ("bravo", "fire-1")}

    # bravo answers alfa's by alfa's name for it; its own is untouched.
    with unchanged(api):
        refusal(answer(api, "fire-1", "bravo", proposer="bravo"), 403, "forbidden", "id")
    cleared = api.ok("POST", "/v1/activities/alfa/fire-1/acknowledge", "bravo", 200)
    assert (cleared["party"], cleared["state"], list(cleared["answers"])) == ("alfa", "cleared", ["bravo"])
    assert api.ok("GET", "/v1/activities/bravo/fire-1", "bravo", 200) == bravos
    (acknowledged,) = events(api, "alfa", "activity.acknowledged")
    assert (acknowledged["data"]["party"], acknowledged["data"]["id"], acknowledged["data"]["by"]) == ("alfa", "fire-1", "bravo")

    # The proposer's steps go by its own name; a check's activity is the asker's own.
    assert activate(api, "fire-1", "bravo", proposer="bravo").json()["party"] == "bravo"
    assert activate(api, "fire-1").json()["party"] == "alfa"
    checked = api.check("bravo", position="34.6, 70.8", kind="fires", activity="fire-1")
    assert (checked["activity"], checked["flags"]) == ("fire-1", []), "bravo's own fire-1, not alfa's 35 km away"
    api.ok("POST", "/v1/activities/alfa/fire-1/complete", "alfa", 200)
    assert state(api, "fire-1", "bravo", proposer="bravo") == "active"


def test_a_made_id_is_unique_among_the_proposers_own(api: Api) -> None:
    """Made ids (``party-n``) count the party's own activities only; another party's ids do not move them."""
    proposed(api, id="bravo-1")
    assert proposed(api, "bravo", volumes=[point("34.6, 70.8")])["id"] == "bravo-1"
    assert proposed(api, "bravo", volumes=[point("34.6, 70.8")])["id"] == "bravo-2"
    assert proposed(api)["id"] == "alfa-2"


# ---------------------------------------------------------------------------- picture keys


def test_a_key_from_a_check_at_the_same_point_radius_and_kind_is_accepted(api: Api) -> None:
    """A careful client checks first and proposes with the check's ``picture_key``."""
    checked = api.check("alfa", position=FP_TEXT, radius_m=300, kind="fires")
    made = proposed(api, volumes=[point(radius_m=300)], key=checked["picture_key"])
    assert made["state"] == "cleared"


def test_looking_at_the_volume_with_its_kind_gives_a_key_that_covers_it(api: Api) -> None:
    """GET /v1/picture?area=...&kind=fires widens the box by the fires buffer, as the activity's volume is widened."""
    key = look(api, "alfa", f"{FP[1]},{FP[0]},{FP[1]},{FP[0]}&kind=fires")
    assert propose(api, key=key).status_code == 201


def test_a_key_from_a_check_with_a_smaller_radius_does_not_cover_the_volume(api: Api) -> None:
    checked = api.check("alfa", position=FP_TEXT, radius_m=0, kind="fires")
    with unchanged(api):
        stale(propose(api, volumes=[point(radius_m=2000)], key=checked["picture_key"]))


def test_alfa_moving_its_own_unit_does_not_make_its_key_stale(api: Api) -> None:
    """Alfa knows where its own units are: their reports are no change it must have seen."""
    api.asset("alfa", "battery", "unit", position=offset(*FP, 300))
    key = look(api, "alfa")
    api.report("alfa", "battery", offset(*FP, 600))
    api.asset("alfa", "observer", "unit", position=offset(*FP, 900))
    assert propose(api, key=key).status_code == 201


def test_confirming_an_aor_does_not_make_a_key_stale(api: Api) -> None:
    """A confirmation renews a promise; nothing on the map moved."""
    api.aor("bravo", "liaison-cell", box(71.21, 34.59, 71.23, 34.61), confirm=False)
    key = look(api, "alfa")
    api.ok("POST", "/v1/aors/liaison-cell/confirm", "bravo", 200)
    assert propose(api, key=key).status_code == 201


def test_an_acknowledgement_does_not_make_a_key_stale(api: Api) -> None:
    bravo_site(api, 1000)
    first = proposed(api)
    key = look(api, "alfa")
    answer(api, first["id"], "bravo")
    assert activate(api, first["id"], key=key).json()["state"] == "active"


@pytest.mark.parametrize(
    ("change", "what", "owner"),
    [
        pytest.param("zone", "zone", "bravo", id="bravo-declares-a-zone"),
        pytest.param("own-zone", "zone", "alfa", id="alfa-declares-a-zone"),
        pytest.param("aor", "aor", "bravo", id="bravo-declares-an-aor"),
        pytest.param("withdrawal", "asset", "bravo", id="bravo-withdraws-a-site"),
        pytest.param("activity", "activity", "bravo", id="bravo-proposes-an-activity"),
    ],
)
def test_these_changes_in_the_area_make_a_key_stale(api: Api, change: str, what: str, owner: str) -> None:
    area = box(71.2, 34.6, 71.21, 34.61)
    if change == "withdrawal":
        bravo_site(api, 1000)
    key = look(api, "alfa")
    if change == "zone":
        api.zone("bravo", "clinic", "protected_area", area)
    elif change == "own-zone":
        api.zone("alfa", "range", "operating_area", area)
    elif change == "aor":
        api.aor("bravo", "cell", area, confirm=False)
    elif change == "withdrawal":
        api.ok("DELETE", "/v1/assets/b-post", "bravo", 200)
    else:
        proposed(api, "bravo", volumes=[point(offset(*FP, 1000))], id="bravo-move")
    with unchanged(api):
        error = stale(propose(api, key=key))
    assert [(c["object"], c["party"]) for c in error["changed"]] == [(what, owner)]


# ---------------------------------------------------------------------------- two proposers racing


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real HTTP server (uvicorn in a thread, on a loopback port) over a SQLite file, with alfa's and bravo's liaison tokens."""
    store = SQLiteStore(tmp_path / "race.db")
    service = Service(store, ManualClock(T0))
    admin = service.create_token(ROOT, None, "admin")
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=free_port(), log_level="warning", ws="none")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{config.port}"
    try:
        deadline = time.monotonic() + 10
        while not uv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        tokens = {}
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as client:
            for party, land in (("alfa", ALFA_LAND), ("bravo", BRAVO_LAND)):
                client.post("/v1/parties", json={"id": party, "name": party.title()}).raise_for_status()
                client.put(f"/v1/territories/{party}", json={"area": land}).raise_for_status()
                made = client.post(f"/v1/parties/{party}/tokens", json={"role": "liaison"})
                tokens[party] = made.raise_for_status().json()["token"]
        yield url, tokens
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        store.close()


RACE_SITES = {"alfa": "34.6, 71.005", "bravo": "34.6, 70.995"}  # 450 m each side of the border: each affects the other
RACE_AREA = "70.9,34.5,71.1,34.7"


def race(clients: dict[str, httpx.Client], round_: int) -> dict[str, httpx.Response]:
    """Both parties look at RACE_AREA, then both propose fires there at the same instant (a barrier releases them)."""
    keys = {p: c.get(f"/v1/picture?area={RACE_AREA}").json()["picture_key"] for p, c in clients.items()}
    assert len({k.split("@")[0] for k in keys.values()}) == 1, "both looked at the same version"
    barrier = threading.Barrier(len(clients))
    answers: dict[str, httpx.Response] = {}

    def attempt(party: str) -> None:
        body = {
            "id": f"{party}-{round_}",
            "kind": "fires",
            "purpose": "race",
            "volumes": [{"position": RACE_SITES[party], "window": window()}],
            "key": keys[party],
        }
        barrier.wait(timeout=5)
        answers[party] = clients[party].post("/v1/activities", json=body)

    threads = [threading.Thread(target=attempt, args=(p,)) for p in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert set(answers) == set(clients), "every attempt was answered"
    return answers


def test_two_proposers_racing_for_one_area_cannot_both_win(server: tuple[str, dict[str, str]]) -> None:
    """Alfa and bravo look at the same area at the same version, then propose at the same instant, ten times over.

    Each round exactly one wins (201); the other is refused with 409 stale_picture naming the
    winner's activity, which it may see since it lies across the border from it.
    """
    url, tokens = server
    clients = {p: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {t}"}, timeout=10) for p, t in tokens.items()}
    try:
        for round_ in range(10):
            answers = race(clients, round_)
            statuses = sorted(r.status_code for r in answers.values())
            assert statuses == [201, 409], (round_, {p: r.text for p, r in answers.items()})
            winner = next(p for p, r in answers.items() if r.status_code == 201)
            loser = next(p for p in answers if p != winner)
            assert answers[winner].json()["affected"] == [loser]
            error = stale(answers[loser])
            assert [(c["object"], c["id"]) for c in error["changed"]] == [("activity", f"{winner}-{round_}")]
    finally:
        for c in clients.values():
            c.close()


# ---------------------------------------------------------------------------- drift from the notice


@pytest.fixture
def notified(api: Api) -> dict[str, Any]:
    """Alfa's fire mission at FP (radius 500 m, T0 to T0+1 h), affecting bravo (a site 1 km away), acknowledged."""
    bravo_site(api, 1000)
    made = proposed(api, volumes=[point(radius_m=500)])
    answer(api, made["id"], "bravo")
    return made


def drift(api: Api, activity: dict[str, Any], who: str = "alfa", **body: Any) -> Response:
    return api.post("/v1/checks", who, json={"kind": "fires", "activity": activity["id"], **body})


@pytest.mark.parametrize("under_way", [False, True], ids=["cleared", "active"])
def test_a_check_inside_the_notified_volume_and_window_has_no_flags(api: Api, notified: dict[str, Any], under_way: bool) -> None:
    if under_way:
        activate(api, notified["id"])
    checked = drift(api, notified, position=offset(*FP, 300), radius_m=100, window=window(600, 1200))
    assert checked.status_code == 200, checked.text
    assert checked.json()["flags"] == [] and checked.json()["activity"] == notified["id"]
    assert events(api, "bravo", "activity.outside_notified_volume") == []


def test_a_check_outside_the_notified_volume_is_flagged_and_the_affected_told(api: Api, notified: dict[str, Any]) -> None:
    """Executing 2 km from where it was notified: the answer flags it, and bravo gets an event at once."""
    activate(api, notified["id"])
    api.advance(300)
    checked = drift(api, notified, position=offset(*FP, 2000)).json()
    assert checked["flags"] == ["outside_notified_volume"]
    (notice,) = events(api, "bravo", "activity.outside_notified_volume")
    assert notice["time"] == at(300).isoformat()
    assert (notice["data"]["id"], notice["data"]["by"], notice["data"]["kind"]) == (notified["id"], "alfa", "fires")
    assert notice["data"]["reference"]["lat"] == pytest.approx(float(offset(*FP, 2000).split(",")[0]))
    assert len(events(api, "alfa", "activity.outside_notified_volume")) == 1


def test_a_check_whose_radius_reaches_beyond_the_volume_is_flagged(api: Api, notified: dict[str, Any]) -> None:
    """Inside means the whole checked area: a point 300 m off with 400 m around it reaches past the 500 m radius."""
    assert drift(api, notified, position=offset(*FP, 300), radius_m=400).json()["flags"] == ["outside_notified_volume"]


def test_a_check_outside_the_notified_window_is_flagged(api: Api, notified: dict[str, Any]) -> None:
    checked = drift(api, notified, position=FP_TEXT, window=window(3000, 4000)).json()
    assert checked["flags"] == ["outside_notified_volume"]
    assert len(events(api, "bravo", "activity.outside_notified_volume")) == 1


def test_a_check_naming_an_uncleared_activity_says_so(api: Api) -> None:
    bravo_site(api, 1000)
    made = proposed(api)
    assert drift(api, made, position=FP_TEXT).json()["flags"] == ["not_cleared"]
    assert drift(api, made, position=offset(*FP, 3000)).json()["flags"] == ["outside_notified_volume", "not_cleared"]


def test_a_check_may_name_only_the_askers_own_activity(api: Api, notified: dict[str, Any]) -> None:
    """A check's ``activity`` is one of the asker's own: bravo (affected) has none by alfa's id: 404, as for a third party."""
    api.party("charlie")
    refusal(drift(api, notified, "bravo", position=FP_TEXT), 404, "not_found", "activity")
    refusal(drift(api, notified, "charlie", position=FP_TEXT), 404, "not_found", "activity")
    refusal(drift(api, {"id": "nope"}, position=FP_TEXT), 404, "not_found", "activity")
    assert events(api, "bravo", "activity.outside_notified_volume") == []


# ---------------------------------------------------------------------------- conflicts with what is under way


@pytest.fixture
def under_way(api: Api) -> dict[str, Any]:
    """Alfa's fire mission at FP, cleared (nobody near) and active; bravo's unit ``b-unit`` 5 km away."""
    api.asset("bravo", "b-unit", "unit", position=offset(*FP, 5000))
    made = proposed(api)
    assert activate(api, made["id"]).json()["state"] == "active"
    return made


def conflicts(api: Api, who: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events(api, who, "conflict.detected")]


def test_a_unit_entering_an_active_activity_raises_a_conflict_for_both_sides(api: Api, under_way: dict[str, Any]) -> None:
    """Bravo's unit reported 1 km from alfa's firing point: alfa (the proposer) and bravo (the owner) are told."""
    api.advance(60)
    api.report("bravo", "b-unit", offset(*FP, 1000))
    (to_alfa,) = conflicts(api, "alfa")
    assert (to_alfa["activity"], to_alfa["proposer"]) == (under_way["id"], "alfa")
    found = to_alfa["found"]
    assert (found["party"], found["object"], found["id"], found["disclosure"]) == ("bravo", "unit", "b-unit", "exact")
    assert found["distance_m"] == pytest.approx(1000, abs=2)
    (to_bravo,) = conflicts(api, "bravo")
    assert to_bravo["found"] == found
    assert to_bravo["kind"] == "fires" and to_bravo["area"] == under_way["area"]


def test_a_unit_that_stays_inside_raises_the_conflict_once(api: Api, under_way: dict[str, Any]) -> None:
    api.report("bravo", "b-unit", offset(*FP, 1000))
    api.advance(60)
    api.report("bravo", "b-unit", offset(*FP, 800))
    assert len(conflicts(api, "alfa")) == 1
    api.report("bravo", "b-unit", offset(*FP, 4000))
    api.advance(60)
    api.report("bravo", "b-unit", offset(*FP, 900))
    assert len(conflicts(api, "alfa")) == 2, "leaving and coming back is entering again"


def test_a_unit_moving_far_from_the_activity_raises_none(api: Api, under_way: dict[str, Any]) -> None:
    api.report("bravo", "b-unit", offset(*FP, 3000))
    api.asset("bravo", "b-far", "site", position=offset(*FP, 1700))
    assert conflicts(api, "alfa") == [] and conflicts(api, "bravo") == []


def test_a_new_asset_registered_inside_raises_a_conflict(api: Api, under_way: dict[str, Any]) -> None:
    api.asset("bravo", "b-clinic", "site", position=offset(*FP, 1200))
    assert [c["found"]["id"] for c in conflicts(api, "alfa")] == ["b-clinic"]


def test_a_hidden_unit_entering_shows_the_proposer_only_its_party(api: Api, under_way: dict[str, Any]) -> None:
    """Need to know holds for conflict notices: alfa learns that bravo has something there, nothing more."""
    api.asset("bravo", "ghost", "unit", position=offset(*FP, 5000), disclosure="hidden")
    api.report("bravo", "ghost", offset(*FP, 1000))
    (to_alfa,) = conflicts(api, "alfa")
    assert to_alfa["found"] == {"party": "bravo", "disclosure": "hidden"}
    assert "ghost" not in str(events(api, "alfa"))
    (to_bravo,) = conflicts(api, "bravo")
    assert to_bravo["found"]["id"] == "ghost", "the owner sees its own unit in full"


def test_a_zone_declared_inside_raises_a_conflict(api: Api, under_way: dict[str, Any]) -> None:
    api.zone("bravo", "clinic", "protected_area", box(71.21, 34.6, 71.215, 34.605))
    (to_alfa,) = conflicts(api, "alfa")
    assert (to_alfa["found"]["object"], to_alfa["found"]["id"]) == ("protected_area", "clinic")


def test_nothing_is_raised_for_an_activity_not_yet_active_or_ended(api: Api) -> None:
    made = proposed(api)
    api.asset("bravo", "b-unit", "unit", position=offset(*FP, 1000))
    assert state(api, made["id"]) == "cleared"
    activate(api, made["id"])
    api.ok("POST", f"/v1/activities/alfa/{made['id']}/complete", "alfa", 200)
    api.asset("bravo", "b-unit-2", "unit", position=offset(*FP, 1000, 180))
    assert conflicts(api, "alfa") == [] and conflicts(api, "bravo") == []


@pytest.mark.parametrize(("kind", "raised"), [("fires", 1), ("patrol", 0)])
def test_own_units_count_for_fires_but_not_for_patrols(api: Api, kind: str, raised: int) -> None:
    """Alfa's own unit walking into its fire mission is a danger; into its patrol, it is the patrol."""
    api.asset("alfa", "a-unit", "unit", position=offset(*FP, 5000))
    made = proposed(api, kind=kind)
    activate(api, made["id"])
    api.report("alfa", "a-unit", offset(*FP, 100))
    assert len(conflicts(api, "alfa")) == raised


@pytest.mark.parametrize(("activity_kind", "check_kind"), [("patrol", "ground"), ("movement", "ground"), ("fires", "fires")])
def test_a_look_widens_by_an_activity_kind_as_by_the_check_it_is_held_to(api: Api, activity_kind: str, check_kind: str) -> None:
    """Patrols and movements are held to the ground buffer: a look for them covers the same box."""
    area = {"area": "71.01,34.54,71.02,34.55"}
    by_activity = api.ok("GET", "/v1/picture", "alfa", 200, params={**area, "kind": activity_kind})
    by_check = api.ok("GET", "/v1/picture", "alfa", 200, params={**area, "kind": check_kind})
    assert by_activity["area"] == by_check["area"]
    assert by_activity["area"][0] < 71.01 and by_activity["area"][2] > 71.02


def test_an_activity_reaching_within_56_km_of_a_pole_is_refused_naming_its_volume(api: Api) -> None:
    """As a check there is (tests/api/test_checks.py): no activity is deconflicted on a plane that does not hold."""
    response = propose(api, volumes=[point(), point("89.7, 10.0")], key=None)
    refusal(response, 422, "invalid_input", "volumes.1.position")
    assert api.ok("GET", "/v1/activities", "alfa", 200) == []
