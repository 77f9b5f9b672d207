"""Need to know: what another party sees of alfa's exact, coarse and hidden objects, on every outlet.

alfa declares, close together just east of the border: an exact site, a coarse site, a
hidden site, a hidden unit, a coarse zone and a hidden zone. Every other caller then walks
the API near them, and no response body may carry a coarse or hidden object's coordinates
(as decimal degrees to 4 or 5 places, or as MGRS) or a hidden object's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h3
import pytest
from pyproj import Geod

from deconfliction.model import Role
from deconfliction.service import Caller
from tests.api.conftest import ALFA_LAND, BRAVO_LAND, Api, Response, box, refusal

WGS84 = Geod(ellps="WGS84")
CELL_RESOLUTION = 7

EXACT = (34.55123, 71.01457)
COARSE = (34.55687, 71.02234)
HIDDEN = (34.54871, 71.00893)
HIDDEN_UNIT = (34.56291, 71.01733)
COARSE_ZONE = (71.02611, 34.56173, 71.02947, 34.56419)  # west, south, east, north
HIDDEN_ZONE = (71.00712, 34.54511, 71.01034, 34.54629)

# bravo asks about these (none is one of alfa's points)
NEAR = "34.5530, 71.0160"
NEAR_HIDDEN = "34.5479, 71.0083"  # about 110 m from the hidden site, 180 m from the hidden zone
NEAR_UNIT = "34.5612, 71.0190"
AROUND = box(71.004, 34.544, 71.031, 34.566)


def distance_m(a: tuple[float, float], b: str) -> float:
    lat, lon = (float(v) for v in b.split(","))
    return float(WGS84.inv(a[1], a[0], lon, lat)[2])


def band(metres: float) -> str:
    for low, high in ((0, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 5000)):
        if metres < high:
            return f"under {high} m" if low == 0 else f"{low}-{high} m"
    return "over 5000 m"


@dataclass
class Picture:
    api: Api
    mgrs: dict[str, str]  # alfa's read-back of each of its points

    def secrets(self) -> list[str]:
        """Text that must never reach another party: coarse and hidden coordinates, hidden names."""
        numbers = [*COARSE, *HIDDEN, *HIDDEN_UNIT, *COARSE_ZONE, *HIDDEN_ZONE]
        texts = [f"{v:.4f}" for v in numbers] + [f"{v:.5f}" for v in numbers]
        for name in ("post-coarse", "post-hidden", "patrol-hidden"):
            texts += [self.mgrs[name], self.mgrs[name].replace(" ", "")]
        # the names (the ids do come back, but only in refusals that echo what the caller asked for)
        texts += ["Post Hidden", "Hidden Patrol", "Hidden Zone"]
        return texts


@pytest.fixture
def picture(api: Api) -> Picture:
    api.aor("alfa", "alfa-all", ALFA_LAND, freshness_s=7200)
    api.aor("bravo", "bravo-all", BRAVO_LAND, freshness_s=7200)
    readback = {}
    for asset_id, name, kind, point, disclosure in (
        ("post-exact", "Post Exact", "site", EXACT, "exact"),
        ("post-coarse", "Post Coarse", "site", COARSE, "coarse"),
        ("post-hidden", "Post Hidden", "site", HIDDEN, "hidden"),
        ("patrol-hidden", "Hidden Patrol", "unit", HIDDEN_UNIT, "hidden"),
    ):
        made = api.asset(
            "alfa",
            asset_id,
            kind,
            name=name,
            position=f"{point[0]}, {point[1]}",
            uncertainty_m=20,
            disclosure=disclosure,
            **({"stale_after_s": 600} if kind == "unit" else {}),
        )
        readback[asset_id] = made["position"]["mgrs"]
    api.zone("alfa", "coarse-zone", "protected_area", box(*COARSE_ZONE), name="Coarse Zone", disclosure="coarse")
    api.zone("alfa", "hidden-zone", "protected_area", box(*HIDDEN_ZONE), name="Hidden Zone", disclosure="hidden")
    return Picture(api, readback)


def walk(api: Api, who: str) -> list[Response]:
    """Everything a caller could do near alfa's objects, refused or not."""
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/assets", None),
        ("GET", "/v1/zones", None),
        ("GET", "/v1/aors", None),
        ("GET", "/v1/parties", None),
        ("GET", "/v1/territories", None),
        ("GET", "/v1/picture", None),
        ("GET", f"/v1/readback?position={NEAR}", None),
    ]
    for asset_id in ("post-exact", "post-coarse", "post-hidden", "patrol-hidden", "ghost"):
        calls += [
            ("GET", f"/v1/assets/alfa/{asset_id}", None),
            ("POST", "/v1/reports", {"asset": asset_id, "position": NEAR}),
            ("POST", "/v1/reports/batch", {"reports": [{"asset": asset_id, "position": NEAR}]}),
            ("DELETE", f"/v1/assets/{asset_id}", None),
            ("DELETE", f"/v1/assets/{asset_id}/position", None),
        ]
    calls += [
        ("DELETE", "/v1/zones/hidden-zone", None),
        ("DELETE", "/v1/zones/coarse-zone", None),
        ("POST", "/v1/aors/alfa-all/confirm", None),
    ]
    for kind in ("fires", "air", "ground", "other"):
        calls += [
            ("POST", "/v1/checks", {"position": NEAR, "kind": kind}),
            ("POST", "/v1/checks", {"position": NEAR_HIDDEN, "kind": kind, "radius_m": 50}),
            ("POST", "/v1/checks", {"area": AROUND, "kind": kind}),
        ]
    responses = []
    for method, path, body in calls:
        responses.append(api.call(method, path, who, json=body) if body is not None else api.call(method, path, who))
    api.advance(600)  # the hidden unit goes stale: a gap, which must not say since when
    responses += [api.call("POST", "/v1/checks", who, json={"position": NEAR_UNIT, "kind": "fires"})]
    responses += [api.call("GET", "/v1/assets", who)]
    return responses


@pytest.mark.parametrize(
    "who",
    [
        pytest.param("bravo", id="bravo-liaison"),
        pytest.param("bravo:viewer", id="bravo-viewer"),
        pytest.param("bravo:auditor", id="bravo-auditor"),
        pytest.param("admin", id="server-admin"),
    ],
)
def test_disclosure_no_response_carries_coarse_or_hidden_coordinates(picture: Picture, who: str) -> None:
    responses = walk(picture.api, who)
    assert all(r.status_code < 500 for r in responses)
    text = "\n".join(r.text for r in responses)
    leaks = [secret for secret in picture.secrets() if secret in text]
    assert leaks == []
    # the walk did reach the exact site: the detector sees what is allowed to be seen
    assert f"{EXACT[0]:.5f}" in text and picture.mgrs["post-exact"] in text


def test_disclosure_hidden_assets_are_absent_from_lists(picture: Picture) -> None:
    api = picture.api
    for who in ("bravo", "bravo:viewer", "admin"):
        shown = {a["id"]: a for a in api.ok("GET", "/v1/assets", who)}
        assert set(shown) == {"post-exact", "post-coarse"}, who


def test_disclosure_hidden_asset_is_404_like_a_missing_one(picture: Picture) -> None:
    api = picture.api
    hidden = api.get("/v1/assets/alfa/post-hidden", "bravo")
    missing = api.get("/v1/assets/alfa/no-such", "bravo")
    refusal(hidden, 404, "not_found", "id")
    refusal(missing, 404, "not_found", "id")
    assert hidden.json()["error"]["message"].replace("post-hidden", "X") == missing.json()["error"]["message"].replace(
        "no-such", "X"
    )


def test_disclosure_report_refusals_are_the_same_for_hidden_and_missing(picture: Picture) -> None:
    api = picture.api
    bodies = {}
    for asset_id in ("post-hidden", "post-coarse", "post-exact", "ghostpost-x"):
        response = api.post("/v1/reports", "bravo", json={"asset": asset_id, "position": NEAR})
        refusal(response, 404, "not_found", "asset")
        bodies[asset_id] = response.json()["error"]["message"].replace(asset_id, "X")
    assert len(set(bodies.values())) == 1, bodies


def test_disclosure_coarse_asset_shows_cell_not_point(picture: Picture) -> None:
    api = picture.api
    shown = api.ok("GET", "/v1/assets/alfa/post-coarse", "bravo")
    assert shown["disclosure"] == "coarse"
    assert shown["cell"] == h3.latlng_to_cell(*COARSE, CELL_RESOLUTION)
    assert h3.is_valid_cell(shown["cell"])
    assert not {"position", "border", "uncertainty_m", "notation"} & set(shown)
    assert {a["id"]: a for a in api.ok("GET", "/v1/assets", "bravo")}["post-coarse"] == shown


def test_disclosure_exact_asset_shows_its_point_to_others(picture: Picture) -> None:
    shown = picture.api.ok("GET", "/v1/assets/alfa/post-exact", "bravo")
    assert (shown["position"]["lat"], shown["position"]["lon"]) == EXACT
    assert shown["disclosure"] == "exact"


def test_disclosure_check_shows_each_level_as_it_allows(picture: Picture) -> None:
    api = picture.api
    answer = api.check("bravo", position=NEAR, kind="fires")
    assert answer["status"] == "conflict"
    by_level: dict[str, list[dict[str, Any]]] = {}
    for conflict in answer["conflicts"]:
        by_level.setdefault(conflict["disclosure"], []).append(conflict)
    assert set(by_level) == {"exact", "coarse", "hidden"}

    (exact,) = by_level["exact"]
    assert exact["id"] == "post-exact"
    assert (exact["position"]["lat"], exact["position"]["lon"]) == EXACT
    assert exact["distance_m"] == pytest.approx(distance_m(EXACT, NEAR), abs=2)

    coarse = {c["id"]: c for c in by_level["coarse"]}
    assert set(coarse) == {"post-coarse", "coarse-zone"}
    site = coarse["post-coarse"]
    assert set(site) == {"party", "object", "id", "name", "disclosure", "distance_band", "cell"}
    assert site["cell"] == h3.latlng_to_cell(*COARSE, CELL_RESOLUTION)
    assert site["distance_band"] == band(distance_m(COARSE, NEAR))
    assert set(coarse["coarse-zone"]) == {"party", "object", "id", "name", "disclosure", "distance_band"}

    # the hidden site, the hidden unit and the hidden zone: only that alfa has something there
    assert by_level["hidden"] == [{"party": "alfa", "disclosure": "hidden"}] * 3


def test_disclosure_hidden_stale_unit_gap_names_only_the_party(picture: Picture) -> None:
    api = picture.api
    api.advance(600)
    answer = api.check("bravo", position=NEAR_UNIT, kind="fires")
    stale = [g for g in answer["gaps"] if g["reason"] == "stale_asset"]
    assert stale == [
        {"party": "alfa", "reason": "stale_asset", "since": None, "asset": {"party": "alfa", "disclosure": "hidden"}}
    ]


def test_disclosure_zones_coarse_without_area_hidden_absent(picture: Picture) -> None:
    zones = {z["id"]: z for z in picture.api.ok("GET", "/v1/zones", "bravo")}
    assert set(zones) == {"coarse-zone"}
    assert zones["coarse-zone"]["disclosure"] == "coarse"
    assert "area" not in zones["coarse-zone"]


def test_disclosure_owner_sees_everything_exactly(picture: Picture) -> None:
    api = picture.api
    points = {"post-exact": EXACT, "post-coarse": COARSE, "post-hidden": HIDDEN, "patrol-hidden": HIDDEN_UNIT}
    for who in ("alfa", "alfa:viewer"):
        shown = {a["id"]: a for a in api.ok("GET", "/v1/assets", who)}
        assert set(shown) == set(points)
        for asset_id, point in points.items():
            assert (shown[asset_id]["position"]["lat"], shown[asset_id]["position"]["lon"]) == point
            assert api.ok("GET", f"/v1/assets/alfa/{asset_id}", who) == shown[asset_id]
        assert {a: s["disclosure"] for a, s in shown.items()} == {
            "post-exact": "exact",
            "post-coarse": "coarse",
            "post-hidden": "hidden",
            "patrol-hidden": "hidden",
        }
        zones = {z["id"]: z for z in api.ok("GET", "/v1/zones", who)}
        assert zones["hidden-zone"]["area"] == box(*HIDDEN_ZONE)
        assert zones["coarse-zone"]["area"] == box(*COARSE_ZONE)
    answer = api.check("alfa", position=NEAR, kind="fires")
    assert {c["id"] for c in answer["conflicts"]} == {
        "post-exact",
        "post-coarse",
        "post-hidden",
        "patrol-hidden",
        "coarse-zone",
        "hidden-zone",
    }
    for conflict in answer["conflicts"]:
        assert conflict["disclosure"] == "exact"
        assert "distance_m" in conflict and "distance_band" not in conflict and "cell" not in conflict
        if conflict["object"] in ("site", "unit"):
            assert (conflict["position"]["lat"], conflict["position"]["lon"]) == points[conflict["id"]]


def test_others_only_leaves_out_the_callers_own_objects_and_nothing_it_may_see_of_others(picture: Picture) -> None:
    """What a party's TAK devices are sent: the others' objects as disclosure shows them, never its own again."""
    api = picture.api
    api.asset("bravo", "bravo-post", "site", position="34.55, 70.9")
    api.zone("bravo", "bravo-zone", "protected_area", box(70.8, 34.5, 70.81, 34.51))
    for who in ("alfa", "bravo"):
        caller = Caller(who, Role.VIEWER)
        everything = {
            "assets": api.service.assets(caller),
            "zones": api.service.zones(caller),
            "aors": api.service.aors(caller),
        }
        others = {
            "assets": api.service.assets(caller, others_only=True),
            "zones": api.service.zones(caller, others_only=True),
            "aors": api.service.aors(caller, others_only=True),
        }
        assert others == {kind: [s for s in shown if s["party"] != who] for kind, shown in everything.items()}
        assert all(others.values()) and all(len(others[k]) < len(everything[k]) for k in others), who


def test_disclosure_a_hidden_site_still_makes_a_conflict(picture: Picture) -> None:
    """Hidden is never shown, but always used: a check beside it is a conflict, not clear."""
    answer = picture.api.check("bravo", position=NEAR_HIDDEN, kind="other", radius_m=50)
    assert answer["status"] == "conflict"
    assert answer["conflicts"] == [{"party": "alfa", "disclosure": "hidden"}]


def test_the_pictures_counts_count_only_what_the_caller_may_see(api: Api) -> None:
    """A count of all assets would tell bravo how many alfa hides; a grant adds what it opens, the centre sees all."""
    api.asset("alfa", "post", disclosure="hidden", position="34.60, 71.10")
    api.asset("alfa", "depot", disclosure="coarse", position="34.61, 71.11")
    api.asset("alfa", "patrol", kind="unit", disclosure="hidden", position="34.62, 71.12")
    api.zone("alfa", "quiet", "protected_area", box(71.1, 34.6, 71.2, 34.7), disclosure="hidden")

    def counts(who: str) -> tuple[int, int, int]:
        summary = api.ok("GET", "/v1/picture", who, 200)
        return summary["assets"], summary["positions"], summary["zones"]

    assert counts("bravo") == counts("bravo:viewer") == (1, 1, 0)
    assert counts("alfa") == counts("admin") == (3, 3, 1)
    api.ok("POST", "/v1/grants", "alfa", 201, json={"grantee": "bravo", "what": "site", "level": "coarse"})
    assert counts("bravo") == (2, 2, 0)
