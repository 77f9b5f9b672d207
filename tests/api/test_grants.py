"""Owners may share more with named parties, and set the level their new objects get by default.

A grant opens one class of an owner's objects (units, sites or zones) to one named party, at
``exact`` or ``coarse``; every outlet follows it through the one disclosure policy (lists, checks,
events); it never lowers a level, and withdrawing it closes again.
"""

from __future__ import annotations

from tests.api.conftest import Api, box, refusal

SITE = "34.5712, 71.0433"  # alfa's land
UNIT = "34.5633, 71.0511"


def _secrets(api: Api) -> None:
    api.asset("alfa", "post", disclosure="hidden", position=SITE)
    api.asset("alfa", "patrol", kind="unit", disclosure="hidden", position=UNIT)


def _seen(api: Api, who: str) -> dict[str, dict]:
    return {a["id"]: a for a in api.ok("GET", "/v1/assets", who, 200) if a["party"] == "alfa"}


def test_a_grant_lets_the_named_party_see_that_class_exactly_and_no_other(api: Api) -> None:
    _secrets(api)
    assert _seen(api, "bravo") == {}
    made = api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "site", "level": "exact"})
    assert made == {"party": "alfa", "grantee": "bravo", "what": "site", "level": "exact"}
    seen = _seen(api, "bravo")
    assert list(seen) == ["post"]  # the hidden unit stays hidden: the grant names sites
    assert (seen["post"]["position"]["lat"], seen["post"]["position"]["lon"]) == (34.5712, 71.0433)
    answer = api.check("bravo", position=SITE, kind="fires")
    shown = {f.get("id"): f for f in answer["conflicts"]}
    assert shown["post"]["position"]["lat"] == 34.5712 and shown["post"]["distance_m"] == 0.0
    assert {"party": "alfa", "disclosure": "hidden"} in answer["conflicts"]  # the unit
    assert api.ok("GET", "/v1/grants", "bravo", 200) == [made]
    assert api.ok("GET", "/v1/grants", "bravo:viewer", 200) == [made]


def test_a_grant_reaches_the_event_stream_and_withdrawing_it_closes_again(api: Api) -> None:
    _secrets(api)
    api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "site", "level": "coarse"})
    seen = _seen(api, "bravo")["post"]
    assert "cell" in seen and "position" not in seen
    stream = api.get("/v1/events", "bravo", params={"cursor": 0, "limit": 3}).text  # registered, reported, granted
    assert '"grant.given"' in stream and '"asset":"post"' in stream and '"cell"' in stream and "34.5712" not in stream
    api.ok("DELETE", "/v1/grants/bravo/site", "alfa", 200)
    assert _seen(api, "bravo") == {}
    assert api.ok("GET", "/v1/grants", "alfa", 200) == []


def test_a_grant_never_lowers_a_level_and_a_third_party_gains_nothing(api: Api) -> None:
    api.party("charlie")
    api.asset("alfa", "depot", disclosure="exact", position=SITE)
    api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "site", "level": "coarse"})
    assert "position" in _seen(api, "bravo")["depot"]
    api.asset("alfa", "post", disclosure="hidden", position=UNIT)
    api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "site", "level": "exact"})
    assert "post" not in _seen(api, "charlie")


def test_a_grant_on_zones_shows_a_hidden_zone_to_the_grantee(api: Api) -> None:
    api.zone("alfa", "camp", "protected_area", box(71.04, 34.56, 71.05, 34.57), disclosure="hidden")
    assert [z for z in api.ok("GET", "/v1/zones", "bravo", 200) if z["id"] == "camp"] == []
    api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "zone", "level": "exact"})
    (camp,) = [z for z in api.ok("GET", "/v1/zones", "bravo", 200) if z["id"] == "camp"]
    assert camp["area"]["type"] == "Polygon"


def test_grant_refusals_name_the_field_and_change_nothing(api: Api) -> None:
    version = api.version()
    refusal(
        api.post("/v1/grants", "alfa", json={"grantee": "nobody", "what": "site", "level": "exact"}), 404, "not_found", "grantee"
    )
    refusal(
        api.post("/v1/grants", "alfa", json={"grantee": "alfa", "what": "site", "level": "exact"}),
        422,
        "invalid_input",
        "grantee",
    )
    refusal(
        api.post("/v1/grants", "alfa", json={"grantee": "bravo", "what": "site", "level": "hidden"}),
        422,
        "invalid_input",
        "level",
    )
    refusal(
        api.post("/v1/grants", "alfa", json={"grantee": "bravo", "what": "tank", "level": "exact"}), 422, "invalid_input", "what"
    )
    refusal(api.post("/v1/grants", "alfa:viewer", json={"grantee": "bravo", "what": "site", "level": "exact"}), 403, "forbidden")
    refusal(api.delete("/v1/grants/bravo/site", "alfa"), 404, "not_found", "grantee")
    assert api.version() == version


def test_a_party_default_disclosure_applies_to_its_new_objects_that_name_none(api: Api) -> None:
    shown = api.ok("PUT", "/v1/parties/alfa/default-disclosure", "alfa", 200, json={"disclosure": "hidden"})
    assert shown["default_disclosure"] == "hidden"
    assert api.asset("alfa", "post", position=SITE)["disclosure"] == "hidden"
    assert api.asset("alfa", "depot", position=UNIT, disclosure="exact")["disclosure"] == "exact"
    assert api.zone("alfa", "camp", "protected_area", box(71.04, 34.56, 71.05, 34.57))["disclosure"] == "hidden"
    assert set(_seen(api, "bravo")) == {"depot"}
    refusal(api.put("/v1/parties/bravo/default-disclosure", "alfa", json={"disclosure": "hidden"}), 403, "forbidden", "party")
