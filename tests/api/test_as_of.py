"""As of any instant: the picture, and a check's answer, as they were then, rebuilt from the record.

This is how an investigation replays "what information they had available at the time": the
picture as the asking party could see it (disclosure holds in the past too), and a check
answered as the service would have answered it, recorded now with the instant it asked about.
"""

from __future__ import annotations

import json

from tests.api.conftest import ALFA_LAND, Api, at, iso, refusal

POST = "34.5500, 71.0200"  # alfa's land, east of the meridian


def _history(api: Api) -> None:
    """t=0 bravo's AOR; t=60 alfa's hidden post; t=120 alfa's exact unit; t=180 the unit moves away."""
    api.aor("alfa", "alfa-all", ALFA_LAND, freshness_s=86_400)
    api.advance(60)
    api.asset("alfa", "post", disclosure="hidden", position=POST)
    api.advance(60)
    api.asset("alfa", "qrf", kind="unit", position="34.5600, 71.0300", stale_after_s=86_400)
    api.advance(60)
    api.report("alfa", "qrf", "34.8000, 71.2500", stale_after_s=86_400)
    api.advance(60)


def test_the_picture_as_of_an_instant_has_what_was_written_by_then(api: Api) -> None:
    _history(api)
    before = api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(90))})
    assert before["as_of"] == at(90).isoformat()
    assert before["assets"] == []  # the hidden post existed, but bravo never sees it
    then = api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(150))})
    (qrf,) = then["assets"]
    assert (qrf["id"], qrf["position"]["lat"], qrf["position"]["lon"]) == ("qrf", 34.56, 71.03)
    now = api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(200))})
    assert now["assets"][0]["position"]["lat"] == 34.8


def test_the_owner_sees_its_hidden_post_in_the_past_and_others_never_do(api: Api) -> None:
    _history(api)
    mine = api.ok("GET", "/v1/picture", "alfa", 200, params={"as_of": iso(at(90))})
    assert [a["id"] for a in mine["assets"]] == ["post"]
    theirs = api.get("/v1/picture", "bravo", params={"as_of": iso(at(90)), "area": "71.0,34.5,71.1,34.6"})
    assert theirs.status_code == 200
    assert "post" not in theirs.text and "34.55" not in theirs.text
    assert "picture_key" not in theirs.json()  # a key of the past proves nothing now


def test_a_check_as_of_an_instant_answers_as_the_service_would_have_then(api: Api) -> None:
    """Fires at the post's position: clear before the post was registered, conflict after; both recorded now."""
    _history(api)
    early = api.check("bravo", position=POST, kind="fires", as_of=iso(at(30)))
    late = api.check("bravo", position=POST, kind="fires", as_of=iso(at(90)))
    assert early["as_of"] == at(30).isoformat() and early["asked_at"] == at(30).isoformat()
    assert (early["status"], early["conflicts"]) == ("clear", [])
    assert late["status"] == "conflict" and late["conflicts"][0] == {"party": "alfa", "disclosure": "hidden"}
    assert "picture_key" not in late
    record = api.ok("GET", "/v1/ledger/entries", "alfa:auditor", 200, params={"start": late["record"] - 1})["entries"][0]
    assert record["event"]["type"] == "check.asked" and record["event"]["time"] == api.clock.now().isoformat()
    assert record["sealed"] == [None, None]  # alfa's auditor may read neither bravo's question nor the full answer
    own = api.ok("GET", "/v1/ledger/entries", "bravo", 200, params={"start": late["record"] - 1})["entries"][0]
    asked = next(p for p in own["sealed"] if p is not None)
    assert asked["data"]["query"]["as_of"] == iso(at(90))


def test_as_of_refusals_name_the_field_and_change_nothing(api: Api) -> None:
    _history(api)
    version = api.version()
    refusal(api.get("/v1/picture", "bravo", params={"as_of": iso(at(10_000))}), 422, "invalid_input", "as_of")
    refusal(api.get("/v1/picture", "bravo", params={"as_of": "yesterday"}), 422, "invalid_input", "as_of")
    refusal(api.post("/v1/checks", "bravo", json={"position": POST, "kind": "fires", "as_of": iso(at(10_000))}), 422)
    refusal(api.get("/v1/picture", "bravo", params={"as_of": "2025-12-31T00:00:00Z"}), 404, "not_found", "party")
    assert api.version() == version
    assert json.dumps(api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(0))})["assets"]) == "[]"


def test_the_past_of_one_area_holds_exactly_what_stood_in_it_then(api: Api) -> None:
    """On PostgreSQL the store reads only the assets ever reported in the area; the answer is the whole log's.

    At t=299: ``in`` stands in the box; ``left`` stood in it, then left; ``came`` comes into it at t=300;
    ``gone`` stood in it and was withdrawn; ``far`` was never near it.
    """
    box, inside, outside = "71.10,34.60,71.20,34.70", "34.6500, 71.1500", "34.4000, 71.2500"
    for name, where in (("in", inside), ("left", inside), ("came", outside), ("gone", inside), ("far", outside)):
        api.asset("alfa", name, kind="unit", position=where, stale_after_s=86_400)
    api.advance(60)
    api.report("alfa", "left", outside, stale_after_s=86_400)
    api.ok("DELETE", "/v1/assets/gone", "alfa", 200)
    api.advance(240)  # t=300
    api.report("alfa", "came", inside, stale_after_s=86_400)
    api.advance(60)

    def seen(when: int, area: str | None) -> list[str]:
        params = {"as_of": iso(at(when))} | ({"area": area} if area else {})
        return sorted(a["id"] for a in api.ok("GET", "/v1/picture", "bravo", 200, params=params)["assets"])

    assert seen(299, box) == ["in"]
    assert seen(30, box) == ["gone", "in", "left"]
    assert seen(300, box) == ["came", "in"]  # as of an instant: what was written up to it, inclusive
    assert seen(299, None) == ["came", "far", "in", "left"]  # the whole picture then: every asset, wherever it stood
    version = api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(299)), "area": box})["picture_version"]
    assert version == api.ok("GET", "/v1/picture", "bravo", 200, params={"as_of": iso(at(299))})["picture_version"]
