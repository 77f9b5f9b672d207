"""Need to know, walked: every route of the OpenAPI document, called as bravo, carries none of alfa's secrets.

alfa builds a rich picture with secrets at distinctive coordinates: a hidden site, a hidden
unit that reports again and again, a coarse site, a coarse unit, a hidden protected zone, a
coarse no-fire zone, a hidden route, a hidden site it later withdraws, and a fires mission
that affects nobody else (with a hidden scout that runs into it). Next to them sit what bravo
may see: an exact site, alfa's missions that do affect bravo, bravo's own units, zones, AORs
and missions. Conflicts are detected both ways, checks are asked and recorded, the ledger and
the event log fill up.

Then the walk reads ``GET /openapi.json`` and calls every path and method in it: path
parameters take real ids (alfa's hidden ones included), query parameters sensible values,
request bodies a valid write for the walker's own party (so that success bodies are read,
not only refusals). It also reads the app's routes outside the document (``/healthz``, the
docs pages), the SSE stream ``/v1/events?cursor=0&limit=200`` and the WebSocket
``/v1/events/ws?cursor=0``. The node offers alfa's places (hidden ones too) for the private
cross-check, so ``POST /v1/psi/sessions`` is answered with a real request. A route whose
parameter or body the walk does not know fails the coverage test until it is taught here, so
a route added later is walked, not skipped.

As bravo's liaison, viewer and auditor no response text (error messages included, and hex
strings decoded) may contain one of alfa's coarse or hidden coordinates, a hidden id or name,
or the id, purpose, position or box of the mission that does not affect bravo. Coordinates are
matched as numbers wherever they stand, so one number catches a pair in either order, GeoJSON
and any notation around it: at 4 places rounded or cut, at 5 (the secrets have 5), at 6 within
the micro-degree a picture key rounds by, at 7 or more up to float noise; and as MGRS at 1 m
and 10 m, with and without spaces. An id the caller itself sent is echoed in refusals ("no
visible asset alfa/X"): that is no leak, so a needle found in a response to a request that
carried it is not counted.

Controls, so that the walk could see a leak: the same walk as alfa finds each of its secrets
in some body, and bravo's walk finds the exact site's position.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import shapely
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from deconfliction import psi
from deconfliction.api import stream
from deconfliction.api.psi import PsiNode, PsiSettings
from deconfliction.geo import LatLon, to_mgrs
from tests.api.conftest import ALFA_LAND, BRAVO_LAND, Api, add_parties, at, box, iso, running_api

# ---------------------------------------------------------------------------- alfa's secrets

Point = tuple[float, float]  # (lat, lon)

EXACT_SITE = (34.63581, 71.05264)  # shown to everyone: the control
HIDDEN_SITE = (34.61237, 71.04391)
HIDDEN_UNIT = ((34.58219, 71.07713), (34.58467, 71.07291), (34.58692, 71.06938), (34.60188, 71.05127))
COARSE_SITE = (34.62743, 71.03158)
COARSE_UNIT = ((34.57934, 71.08362), (34.60472, 71.04716))
WITHDRAWN_SITE = (34.64418, 71.09276)  # hidden, then its position and itself withdrawn
MARSH_SCOUT = ((34.80693, 71.25148), (34.72046, 71.23581))  # hidden; its second report enters the quiet mission
QUIET = (34.71853, 71.23467)  # the fires mission that affects nobody but alfa
# zone vertices as GeoJSON (lon, lat)
HIDDEN_ZONE = ((71.04127, 34.60483), (71.04869, 34.60517), (71.04813, 34.61092), (71.04151, 34.61046))
COARSE_ZONE = ((71.05683, 34.58917), (71.06341, 34.58962), (71.06298, 34.59538), (71.05714, 34.59491))
HIDDEN_ROUTE = ((71.01963, 34.56147), (71.03289, 34.57418), (71.04573, 34.58931))

# ids and names bravo must never read (coarse ids and names are shown by design)
HIDDEN_NAMES = {
    "hidden site": ("hx-vulture-nest", "Vulture Nest"),
    "hidden unit": ("hx-ghost-troop", "Ghost Troop"),
    "withdrawn hidden site": ("hx-old-well", "Old Well"),
    "hidden scout": ("hx-marsh-scout", "Marsh Scout"),
    "hidden zone": ("hz-willow-clinic", "Willow Clinic"),
    "hidden route": ("hr-otter-road", "Otter Road"),
}
QUIET_ID, QUIET_PURPOSE = "ax-op-quietmarsh", "Quietmarsh harassing fire"

# everything else the walk names
BORDERLINE, RIDGELINE = "ax-op-borderline", "ax-op-ridgeline"  # alfa's fires that affect bravo
OVERWATCH, STANDBY, SPARE = "b-op-overwatch", "b-op-standby", "b-op-spare"  # bravo's: active, cleared, waiting
OWN_UNIT = {"alfa": "ax-runner", "bravo": "b-scout"}
THEATRE = "70.5,34.0,71.5,35.2"
PAST = at(150)  # after alfa's secrets were written, before the walk
WALK_AT = 900.0  # seconds after T0: the hidden units are stale, the missions' windows still open
LEDGER_PAGE = 1000

# Positions the walk asks about as bravo: near alfa's secrets, none of them one of alfa's points.
NEAR_SITE = "34.6151, 71.0462"  # about 370 m from the hidden site
NEAR_ZONE = "34.6098, 71.0455"  # inside the hidden zone's buffer
NEAR_UNIT = "34.6012, 71.0521"  # about 110 m from the hidden unit's last report (stale by the walk)
NEAR_NOFIRE = "34.5905, 71.0640"  # beside the coarse no-fire zone
NEAR_ROUTE = "34.5760, 71.0345"  # beside the hidden route


PROBING = ((1100.0, 450.0), (-1150.0, -300.0), (200.0, 1180.0))
"""Fires checks around the hidden site, metres north and east: their buffers meet on it and place it within 600 m."""


def position(p: Point) -> str:
    return f"{p[0]}, {p[1]}"


def polygon(vertices: tuple[tuple[float, float], ...]) -> dict[str, Any]:
    ring = [list(v) for v in (*vertices, vertices[0])]
    return {"type": "Polygon", "coordinates": [ring]}


@dataclass
class Needles:
    """What betrays one secret: coordinates (matched as numbers) and texts (MGRS, ids, names, matched as they are)."""

    numbers: frozenset[float] = frozenset()
    texts: set[str] = field(default_factory=set)  # MGRS
    words: set[str] = field(default_factory=set)  # ids, names, a purpose

    def coordinates(self) -> Needles:
        return Needles(self.numbers, self.texts)


def mgrs_texts(lat: float, lon: float) -> set[str]:
    """The MGRS of a point at 1 m and at 10 m, with and without spaces."""
    mgrs = to_mgrs(LatLon(lat, lon))
    assert mgrs is not None
    zone, square, easting, northing = mgrs.split(" ")
    texts = set()
    for e, n in ((easting, northing), (easting[:4], northing[:4])):
        texts |= {f"{zone} {square} {e} {n}", f"{zone}{square}{e}{n}"}
    return texts


def needles_for(points: list[Point], words: tuple[str, ...] = ()) -> Needles:
    return Needles(frozenset(v for p in points for v in p), set().union(*(mgrs_texts(*p) for p in points)), set(words))


def secrets() -> dict[str, Needles]:
    """Needles by what they betray: nothing of these may reach another party."""
    return {
        "hidden site": needles_for([HIDDEN_SITE], HIDDEN_NAMES["hidden site"]),
        "hidden unit": needles_for(list(HIDDEN_UNIT), HIDDEN_NAMES["hidden unit"]),
        "coarse site": needles_for([COARSE_SITE]),
        "coarse unit": needles_for(list(COARSE_UNIT)),
        "withdrawn hidden site": needles_for([WITHDRAWN_SITE], HIDDEN_NAMES["withdrawn hidden site"]),
        "hidden scout": needles_for(list(MARSH_SCOUT), HIDDEN_NAMES["hidden scout"]),
        "quiet mission": needles_for([QUIET], (QUIET_ID, QUIET_PURPOSE)),
        "hidden zone": needles_for([(lat, lon) for lon, lat in HIDDEN_ZONE], HIDDEN_NAMES["hidden zone"]),
        "coarse zone": needles_for([(lat, lon) for lon, lat in COARSE_ZONE]),
        "hidden route": needles_for([(lat, lon) for lon, lat in HIDDEN_ROUTE], HIDDEN_NAMES["hidden route"]),
    }


SECRETS = secrets()
CONTROL = {"exact site": needles_for([EXACT_SITE])}

NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}\.\d{4,}(?![\d.])")
"""A decimal number with 4 places or more: how a coordinate is written, whatever the notation around it."""


def renders(written: str, secret: float) -> bool:
    """Is ``written`` the coordinate ``secret`` in some rendering?

    4 places: rounded or cut; 5 places: the value itself (the secrets have 5); 6 places: within
    the micro-degree a picture key rounds outwards by; more: the value up to float noise. Fewer
    than 4 places say too little to tell a secret from anything else nearby.
    """
    places = len(written.rsplit(".", 1)[1])
    x = float(written)
    if places == 4:
        return any(abs(x - v) < 1e-9 for v in (round(secret, 4), math.floor(secret * 10_000) / 10_000))
    if places == 5:
        return abs(x - secret) < 1e-9
    return abs(x - secret) <= (1.5e-6 if places == 6 else 1e-7)


@functools.cache
def renders_any(written: str, numbers: frozenset[float]) -> bool:
    return any(renders(written, v) for v in numbers)


def found_in(text: str, needles: Needles, numbers: list[tuple[str, int]] | None = None) -> list[tuple[str, int]]:
    """The needles in ``text``, as written there, with where; ``numbers``: the text's numbers, if already found."""
    hits = [(t, text.find(t)) for t in sorted(needles.texts | needles.words) if t in text]
    if numbers is None:
        numbers = [(m.group(), m.start()) for m in NUMBER.finditer(text)]
    hits += [(written, at_) for written, at_ in numbers if renders_any(written, needles.numbers)]
    return hits


# ---------------------------------------------------------------------------- the picture


def look(api: Api, who: str) -> str:
    return str(api.ok("GET", "/v1/picture", who, 200, params={"area": THEATRE})["picture_key"])


def volume(where: str | dict[str, Any], radius_m: float = 0.0, hours: float = 3.0) -> dict[str, Any]:
    """A volume from T0 for ``hours``: a position with a radius, or a GeoJSON area."""
    window = {"start": iso(at(0)), "end": iso(at(hours * 3600))}
    if isinstance(where, str):
        return {"position": where, "radius_m": radius_m, "window": window}
    return {"area": where, "window": window}


def propose(
    api: Api, who: str, activity_id: str, kind: str, purpose: str, where: str | dict[str, Any], radius_m: float = 0.0
) -> Any:
    body = {"id": activity_id, "kind": kind, "purpose": purpose, "volumes": [volume(where, radius_m)], "key": look(api, who)}
    return api.ok("POST", "/v1/activities", who, 201, json=body)


def activate(api: Api, who: str, activity_id: str) -> None:
    shown = api.ok("POST", f"/v1/activities/{who}/{activity_id}/activate", who, 200, json={"key": look(api, who)})
    assert shown["state"] == "active", shown


@dataclass
class Built:
    stale_key: str  # a key to the whole theatre from before alfa wrote anything
    quiet_area: list[float]  # the box around the quiet mission's buffered volume, as alfa reads it


def build(api: Api) -> Built:
    """alfa's secrets and bravo's own things, conflicts both ways, checks, withdrawals; the clock ends at ``WALK_AT``."""
    for who in ("alfa", "bravo", "bravo:viewer", "bravo:auditor", "alfa:viewer"):
        api.token(who)
    api.aor("alfa", "alfa-land", ALFA_LAND, freshness_s=7200)
    api.aor("bravo", "bravo-land", BRAVO_LAND, freshness_s=7200)
    stale_key = look(api, "bravo")
    api.zone("bravo", "b-camp", "operating_area", box(70.81, 34.41, 70.83, 34.43), name="Bravo Camp")
    api.asset("bravo", "b-scout", "unit", name="Bravo Scout", position="34.4500, 70.8500", stale_after_s=7200)
    api.asset("alfa", "ax-runner", "unit", name="Alfa Runner", position="34.3600, 71.2800", stale_after_s=7200)

    api.advance(30)  # t=30: alfa's assets
    api.asset("alfa", "ax-exact-lookout", "site", name="Lookout Exact", position=position(EXACT_SITE))
    for key, kind, point, disclosure, extra in (
        ("hidden site", "site", HIDDEN_SITE, "hidden", {}),
        ("hidden unit", "unit", HIDDEN_UNIT[0], "hidden", {"stale_after_s": 600}),
        ("withdrawn hidden site", "site", WITHDRAWN_SITE, "hidden", {}),
        ("hidden scout", "unit", MARSH_SCOUT[0], "hidden", {"stale_after_s": 600}),
    ):
        asset_id, name = HIDDEN_NAMES[key]
        api.asset("alfa", asset_id, kind, name=name, position=position(point), disclosure=disclosure, **extra)
    api.asset("alfa", "cx-marten-post", "site", name="Marten Post", position=position(COARSE_SITE), disclosure="coarse")
    api.asset("alfa", "cx-heron-patrol", "unit", name="Heron Patrol", position=position(COARSE_UNIT[0]), disclosure="coarse")

    api.advance(30)  # t=60: missions
    quiet = propose(api, "alfa", QUIET_ID, "fires", QUIET_PURPOSE, position(QUIET), 400)
    assert quiet["affected"] == []
    assert propose(api, "alfa", BORDERLINE, "fires", "Border fires", "34.6600, 71.0060", 200)["affected"] == ["bravo"]
    assert propose(api, "alfa", RIDGELINE, "fires", "Ridge fires", "34.7000, 71.0080", 200)["affected"] == ["bravo"]
    overwatch = propose(api, "bravo", OVERWATCH, "air", "Overwatch", box(71.035, 34.595, 71.055, 34.615))
    assert overwatch["affected"] == ["alfa"]
    assert propose(api, "bravo", STANDBY, "patrol", "Standby", "34.4000, 70.8000", 100)["affected"] == []
    assert propose(api, "bravo", SPARE, "patrol", "Spare", "34.6300, 71.0290", 100)["affected"] == ["alfa"]
    api.ok("POST", f"/v1/activities/alfa/{BORDERLINE}/acknowledge", "bravo", 200)
    api.ok("POST", f"/v1/activities/bravo/{OVERWATCH}/acknowledge", "alfa", 200)
    for who, activity_id in (("alfa", QUIET_ID), ("alfa", BORDERLINE), ("bravo", OVERWATCH)):
        activate(api, who, activity_id)

    api.advance(60)  # t=120: reports and zones that run into active missions
    hidden_unit = HIDDEN_NAMES["hidden unit"][0]
    api.report("alfa", hidden_unit, position(HIDDEN_UNIT[1]), stale_after_s=600)
    batch = [{"asset": hidden_unit, "position": position(p), "stale_after_s": 600} for p in HIDDEN_UNIT[2:]]
    api.ok("POST", "/v1/reports/batch", "alfa", 201, json={"reports": batch})
    api.report("alfa", "cx-heron-patrol", position(COARSE_UNIT[1]))
    api.report("alfa", HIDDEN_NAMES["hidden scout"][0], position(MARSH_SCOUT[1]), stale_after_s=600)
    api.report("bravo", "b-scout", "34.6612, 70.9963")  # into alfa's border fires
    zone_id, name = HIDDEN_NAMES["hidden zone"]
    api.zone("alfa", zone_id, "protected_area", polygon(HIDDEN_ZONE), name=name, disclosure="hidden")
    api.zone("alfa", "cz-birch-nofire", "no_fire_area", polygon(COARSE_ZONE), name="Birch No-Fire", disclosure="coarse")
    zone_id, name = HIDDEN_NAMES["hidden route"]
    route = {"type": "LineString", "coordinates": [list(v) for v in HIDDEN_ROUTE]}
    api.zone("alfa", zone_id, "route", route, name=name, width_m=300, disclosure="hidden")

    api.advance(120)  # t=240: checks, withdrawals
    for where, kind in ((NEAR_SITE, "fires"), (NEAR_UNIT, "ground"), (NEAR_NOFIRE, "air"), (NEAR_ROUTE, "ground")):
        api.check("bravo", position=where, kind=kind)
    api.check("alfa", position=position(HIDDEN_SITE), kind="fires")
    for north_m, east_m in PROBING:  # bravo closes in on the hidden site: alfa is told at the next tick, bravo never
        lat, lon = HIDDEN_SITE[0] + north_m / 111_000, HIDDEN_SITE[1] + east_m / 91_600
        api.check("bravo", position=f"{lat:.5f}, {lon:.5f}", kind="fires")
    api.check("alfa", position="34.7600, 71.2900", kind="fires", activity=QUIET_ID)  # outside its volume: a notice
    well = HIDDEN_NAMES["withdrawn hidden site"][0]
    api.ok("DELETE", f"/v1/assets/{well}/position", "alfa", 200)
    api.ok("DELETE", f"/v1/assets/{well}", "alfa", 200)

    api.clock.advance_to(at(WALK_AT))
    api.service.tick()  # the ridge fires escalate: bravo never answered; alfa is told of bravo's probing
    assert [(p["asker"], p["signs"]) for p in api.ok("GET", "/v1/probes", "alfa", 200)] == [("bravo", ["narrowing"])]
    return Built(stale_key, quiet["area"])


# ---------------------------------------------------------------------------- what the walk fills in


@dataclass
class Ctx:
    """The walker and the picture it walks."""

    api: Api
    who: str
    stale_key: str  # a key for the whole theatre from before alfa's secrets: proposals with it are refused, with details

    @property
    def party(self) -> str:
        return self.who.split(":")[0]

    @property
    def other(self) -> str:
        return "alfa" if self.party == "bravo" else "bravo"

    def tree_size(self) -> int:
        return int(self.api.ok("GET", "/v1/ledger/head", self.who, 200)["tree_size"])

    def key(self) -> str:
        return look(self.api, self.who)


Values = Callable[[Ctx], list[Any]]

ASSET_IDS = [
    *(HIDDEN_NAMES[k][0] for k in ("hidden site", "hidden unit", "withdrawn hidden site", "hidden scout")),
    *("cx-marten-post", "cx-heron-patrol", "ax-exact-lookout", "ax-runner", "b-scout", "no-such-asset"),
]
PATH_VALUES: dict[str, Values] = {
    "party": lambda c: ["alfa", "bravo"],
    "asset_id": lambda c: ASSET_IDS,
    "zone_id": lambda c: [HIDDEN_NAMES["hidden zone"][0], HIDDEN_NAMES["hidden route"][0], "cz-birch-nofire", "b-camp"],
    "aor_id": lambda c: ["alfa-land", "bravo-land"],
    "activity_id": lambda c: [BORDERLINE, RIDGELINE, QUIET_ID, OVERWATCH, STANDBY, SPARE, "no-such-op"],
    "grantee": lambda c: ["alfa", "bravo"],
    "what": lambda c: ["unit", "site", "zone"],
}
QUERY_VALUES: dict[str, Values] = {
    "position": lambda c: [NEAR_SITE],
    "area": lambda c: [THEATRE, "71.03,34.57,71.08,34.62"],
    "kind": lambda c: ["fires"],
    "as_of": lambda c: [iso(PAST)],
    "since": lambda c: [iso(PAST)],
    "start": lambda c: [0],
    "end": lambda c: [c.tree_size()],
    "index": lambda c: [0, c.tree_size() - 1],
    "tree_size": lambda c: [c.tree_size()],
    "first": lambda c: [1],
    "second": lambda c: [c.tree_size()],
    "cursor": lambda c: [0],
    "limit": lambda c: [200],
    "asker": lambda c: ["bravo", "alfa"],
    "ids": lambda c: ["872093028ffffff", "not-a-cell"],  # the H3 cell of bravo's scout (34.45, 70.85), and nonsense
    "spacing_m": lambda c: [1000, 10000],  # GET /v1/grid: arithmetic on the box, like /v1/cells
}
UNFILLED = {
    "last-event-id": "the SSE reconnection header names the same start as ?cursor=, which the walk gives",
}


def psi_request() -> str:
    """A private cross-check request for a fires mission near alfa's hidden site, as the asker's library makes it."""
    cells = psi.activity_cells([psi.Place(shapely.Point(71.0426, 34.6138), 200.0)], PsiSettings().resolution)
    return base64.b64encode(psi.Asker(cells).request()).decode()


def own_volume(c: Ctx) -> dict[str, Any]:
    return volume("34.6138, 71.0426" if c.party == "bravo" else "34.4520, 70.8810", 1200, hours=2)


BODIES: dict[str, Values] = {
    "PartyIn": lambda c: [{"id": "charlie", "name": "Charlie"}],
    "TokenIn": lambda c: [{"role": "viewer"}],
    "TokenRevokeIn": lambda c: [{"token": "not-a-token-of-this-service"}],  # the walk must not revoke its own
    "TerritoryIn": lambda c: [{"area": BRAVO_LAND if c.party == "bravo" else ALFA_LAND}],
    "DefaultDisclosureIn": lambda c: [{"disclosure": "exact"}],
    "GrantIn": lambda c: [{"grantee": c.other, "what": "unit", "level": "coarse"}],
    "AssetIn": lambda c: [
        {"id": f"{c.party}-walk-post", "kind": "site", "name": "Walk Post", "position": "34.4810, 70.9120"},
        {"id": f"{c.party}-walk-unit", "kind": "unit", "disclosure": "hidden"},
    ],
    "ReportIn": lambda c: [{"asset": OWN_UNIT[c.party], "position": "34.5120, 70.8830", "uncertainty_m": 25}],
    "ReportBatchIn": lambda c: [
        {"reports": [{"asset": OWN_UNIT[c.party], "position": p} for p in ("34.5130, 70.8840", "34.5140, 70.8850")]}
    ],
    "ZoneIn": lambda c: [{"id": f"{c.party}-walk-zone", "kind": "operating_area", "area": box(70.85, 34.46, 70.87, 34.48)}],
    "AorIn": lambda c: [{"id": f"{c.party}-walk-aor", "area": box(70.86, 34.47, 70.88, 34.49), "freshness_s": 3600}],
    "CheckIn": lambda c: [
        {"position": NEAR_SITE, "kind": "fires"},
        {"position": NEAR_ZONE, "kind": "other", "radius_m": 50},
        {"position": NEAR_UNIT, "kind": "ground"},
        {"position": NEAR_NOFIRE, "kind": "air"},
        {"position": NEAR_ROUTE, "kind": "ground"},
        {"area": box(*(float(v) for v in THEATRE.split(","))), "kind": "fires"},
        {"position": NEAR_SITE, "kind": "fires", "as_of": iso(PAST)},
        {"position": NEAR_UNIT, "kind": "air", "activity": OVERWATCH if c.party == "bravo" else BORDERLINE},
    ],
    "ActivityIn": lambda c: [
        {"id": f"{c.party}-op-walk", "kind": "patrol", "purpose": "walk patrol", "volumes": [own_volume(c)], "key": key}
        for key in (c.stale_key, c.key())
    ],
    "ObjectionIn": lambda c: [{"reason": "our patrol is there"}],
    "ActivationIn": lambda c: [{"key": c.stale_key}, {"key": c.key()}],
    "CancellationIn": lambda c: [{"reason": "not needed"}],
    "SessionIn": lambda c: [{"kind": "fires", "resolution": PsiSettings().resolution, "request": psi_request()}],
}
NOT_WALKED: dict[tuple[str, str], str] = {}
"""Routes the walk cannot call meaningfully, with the reason; none so far."""
NO_SUCCESS_FOR_A_LIAISON = {
    ("POST", "/v1/parties"): "the server admin creates parties",
    ("POST", "/v1/parties/{party}/tokens"): "the server admin makes tokens",
    ("PUT", "/v1/territories/{party}"): "the server admin loads the border reference",
    ("GET", "/v1/tak"): "the server admin reads the TAK gateway's status",
    ("POST", "/v1/tokens/revoke"): "admins revoke tokens",
}
"""Routes where a party's liaison is refused whatever the body: the walk reads their refusals only."""


# ---------------------------------------------------------------------------- the walk


@dataclass
class Call:
    route: tuple[str, str]  # (method, path template)
    url: str
    sent: str  # everything the request carried: url and body
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Walk:
    who: str
    calls: list[Call] = field(default_factory=list)
    routes: set[tuple[str, str]] = field(default_factory=set)  # every route in the document and the app
    unknown: list[str] = field(default_factory=list)  # what the walk could not fill in

    @property
    def visited(self) -> set[tuple[str, str]]:
        return {c.route for c in self.calls}


HEX = re.compile(r"\b(?:[0-9a-f]{2}){16,}\b")


def readable(text: str) -> str:
    """``text`` and every long hex string in it decoded as UTF-8 (a ledger leaf is its entry in hex)."""
    decoded = []
    for run in HEX.findall(text):
        try:
            decoded.append(bytes.fromhex(run).decode())
        except UnicodeDecodeError:
            continue
    return "\n".join([text, *decoded])


def app_routes(routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, ``WS`` for WebSockets, through included routers."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:  # FastAPI keeps an included router whole
            found |= app_routes(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif type(route).__name__ in ("WebSocketRoute", "APIWebSocketRoute"):
            found.add(("WS", prefix + route.path))
        else:
            found |= {(m, prefix + route.path) for m in getattr(route, "methods", None) or () if m != "HEAD"}
    return found


def query_variants(params: list[dict[str, Any]], ctx: Ctx, walk: Walk, route: str) -> list[dict[str, Any]]:
    """Required parameters only; each known one with each of its values; every known one at once."""
    values: dict[str, list[Any]] = {}
    for p in params:
        if p["name"] in QUERY_VALUES:
            values[p["name"]] = QUERY_VALUES[p["name"]](ctx)
        elif p["name"] not in UNFILLED or p.get("required"):
            walk.unknown.append(f"{route}: {p['in']} parameter {p['name']!r}")
    required = {p["name"] for p in params if p.get("required")}
    base = {name: values[name][0] for name in required if name in values}
    variants = [
        base,
        *({**base, name: v} for name, vs in values.items() for v in vs),
        {**base, **{n: v[0] for n, v in values.items()}},
    ]
    unique: list[dict[str, Any]] = []
    for v in variants:
        if v not in unique:
            unique.append(v)
    return unique


def requests_for(method: str, path: str, op: dict[str, Any], ctx: Ctx, walk: Walk) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(url, query, body) for every combination of path values, query variants and bodies."""
    route = f"{method} {path}"
    params = op.get("parameters", [])
    names = [p["name"] for p in params if p["in"] == "path"]
    for name in names:
        if name not in PATH_VALUES:
            walk.unknown.append(f"{route}: path parameter {name!r}")
            return
    queries = query_variants([p for p in params if p["in"] != "path"], ctx, walk, route)
    bodies: list[Any] = [None]
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        if ref not in BODIES:
            walk.unknown.append(f"{route}: request body {ref or schema!r}")
            return
        bodies = BODIES[ref](ctx)
    for chosen in product(*(PATH_VALUES[n](ctx) for n in names)):
        url = path
        for name, value in zip(names, chosen, strict=True):
            url = url.replace("{" + name + "}", str(value))
        for query, body in product(queries, bodies):
            yield url, query, body


def read_stream(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, str]:
    """An SSE stream until the server has nothing more to send (its first keep-alive) or closes it."""
    lines = []
    with client.stream("GET", url, headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith(":"):
                break
            lines.append(line)
    return response.status_code, "\n".join(lines)


def read_ws(client: TestClient, url: str, headers: dict[str, str]) -> str:
    """The WebSocket stream until its first keep-alive, or until the server closes it."""
    messages = []
    with client.websocket_connect(url, headers=headers) as ws:
        try:
            while True:
                message = ws.receive_text()
                if json.loads(message).get("type") == "keep-alive":
                    break
                messages.append(message)
        except WebSocketDisconnect:
            pass
    return "\n".join(messages)


def walk_all(api: Api, client: TestClient, who: str, stale_key: str) -> Walk:
    """Every route of the document and the app as ``who``: reads, writes, deletes (deepest first), reads again, streams."""
    ctx = Ctx(api, who, stale_key)
    walk = Walk(who)
    headers = api.headers(who)
    doc = client.get("/openapi.json", headers=headers).json()
    documented = [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    served = app_routes(api.app.routes)  # besides the document: /healthz, the docs pages, the WebSocket
    in_doc = {(m, p) for m, p, _ in documented}
    walk.routes = in_doc | served
    extras: list[tuple[str, str, dict[str, Any]]] = [(m, p, {}) for m, p in sorted(served - in_doc) if m != "WS"]

    def send(method: str, path: str, op: dict[str, Any]) -> None:
        if (method, path) in NOT_WALKED:
            return
        sse = "text/event-stream" in op.get("responses", {}).get("200", {}).get("content", {})
        for url, query, body in requests_for(method, path, op, ctx, walk):
            full = f"{url}?{urlencode(query)}" if query else url
            sent = full + ("" if body is None else json.dumps(body))
            if sse:
                status, text = read_stream(client, full, headers)
            else:
                response = client.request(method, full, headers=headers, json=body)
                status, text = response.status_code, response.text
            walk.calls.append(Call((method, path), full, sent, status, text))

    every = documented + extras
    reads = [r for r in every if r[0] == "GET"]
    writes = [r for r in every if r[0] not in ("GET", "DELETE")]
    deletes = sorted((r for r in every if r[0] == "DELETE"), key=lambda r: -r[1].count("/"))
    for method, path, op in [*reads, *writes, *deletes, *reads]:
        send(method, path, op)
    for m, p in sorted(served):
        if m == "WS":
            url = f"{p}?cursor=0"
            walk.calls.append(Call(("WS", p), url, url, 101, read_ws(client, url, headers)))
    return walk


@dataclass
class Leak:
    who: str
    what: str
    needle: str
    route: str
    url: str
    status: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.who}: {self.what} ({self.needle!r}) in {self.route} {self.url} [{self.status}]: ...{self.excerpt}..."


def leaks(walk: Walk, secrets: dict[str, Needles]) -> list[Leak]:
    """Needles found in a response, unless the request that got it carried the needle itself (an echo)."""
    found = []
    for call in walk.calls:
        text = readable(call.text)
        numbers = [(m.group(), m.start()) for m in NUMBER.finditer(text)]
        for what, needles in secrets.items():
            echoed = {written for written, _ in found_in(call.sent, needles)}
            for written, at_ in found_in(text, needles, numbers):
                if written not in echoed:
                    excerpt = text[max(0, at_ - 80) : at_ + len(written) + 40].replace("\n", " ")
                    found.append(Leak(walk.who, what, written, " ".join(call.route), call.url, call.status, excerpt))
    return found


# ---------------------------------------------------------------------------- the walks


WALKERS = ("bravo", "bravo:viewer", "bravo:auditor", "alfa")


@dataclass
class World:
    walks: dict[str, Walk]
    secrets: dict[str, Needles]  # SECRETS, and the quiet mission's box as alfa was told it


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One picture, walked by bravo's liaison (whose writes enrich the log), viewer, auditor, then alfa."""
    with running_api(tmp_path_factory.mktemp("leak") / "t.db") as api, pytest.MonkeyPatch.context() as mp:
        add_parties(api)
        built = build(api)
        assert api.service.store.last_seq() < LEDGER_PAGE, "the walk reads the ledger in one page"
        mp.setattr(stream, "KEEPALIVE_S", 0.01)  # a stream that has said everything says so at once
        api.app.state.psi = PsiNode(api.service, PsiSettings(party="alfa"))  # the node offers alfa's places, hidden ones too
        secrets = dict(SECRETS)
        quiet = secrets["quiet mission"]
        secrets["quiet mission"] = Needles(quiet.numbers | set(built.quiet_area), quiet.texts, quiet.words)
        with TestClient(api.app, raise_server_exceptions=False) as client:
            yield World({who: walk_all(api, client, who, built.stale_key) for who in WALKERS}, secrets)


@pytest.fixture(scope="module")
def walks(world: World) -> dict[str, Walk]:
    return world.walks


@pytest.fixture(scope="module")
def needles(world: World) -> dict[str, Needles]:
    return world.secrets


def test_the_walk_covers_every_route_of_the_document_and_the_app(walks: dict[str, Walk]) -> None:
    for walk in walks.values():
        assert walk.unknown == [], f"teach the walk these (PATH_VALUES, QUERY_VALUES, BODIES or NOT_WALKED): {walk.unknown}"
        assert walk.visited == walk.routes - set(NOT_WALKED), walk.routes ^ walk.visited
        assert ("GET", "/v1/events") in walk.visited and ("WS", "/v1/events/ws") in walk.visited
    assert all(reason for reason in NOT_WALKED.values())


def test_the_walk_meets_no_server_error(walks: dict[str, Walk]) -> None:
    errors = [(w.who, c.route, c.url, c.status, c.text[:200]) for w in walks.values() for c in w.calls if c.status >= 500]
    assert errors == []


def test_the_liaison_walk_reaches_a_success_on_every_route_it_may_use(walks: dict[str, Walk]) -> None:
    """Success bodies are read too, not only refusals: each route answered bravo's liaison 2xx at least once."""
    walk = walks["bravo"]
    succeeded = {c.route for c in walk.calls if 200 <= c.status < 300 or c.status == 101}
    assert walk.visited - succeeded == set(NO_SUCCESS_FOR_A_LIAISON)


def test_the_streams_deliver_the_log(walks: dict[str, Walk]) -> None:
    """The SSE and WebSocket reads saw events (so their bodies were scanned), the same ones, and more than a page of 10."""
    for walk in walks.values():
        sse = next(c for c in walk.calls if c.route == ("GET", "/v1/events") and c.url == "/v1/events?cursor=0&limit=200")
        (ws,) = [c for c in walk.calls if c.route[0] == "WS"]
        sse_seqs = [int(line[4:]) for line in sse.text.splitlines() if line.startswith("id: ")]
        ws_seqs = [json.loads(m)["seq"] for m in ws.text.splitlines()]
        assert len(sse_seqs) > 10 and sse_seqs[1:] == ws_seqs[1 : len(sse_seqs)], walk.who


def test_the_walk_meets_what_disclosure_must_hold_back(walks: dict[str, Walk]) -> None:
    """bravo's walk is near alfa's secrets: answers name hidden and coarse findings, streams carry conflicts, the ledger seals."""
    calls = walks["bravo"].calls
    checks = [c.json for c in calls if c.route == ("POST", "/v1/checks") and c.status == 200]
    conflicts = [f for answer in checks for f in answer["conflicts"]]
    assert {"party": "alfa", "disclosure": "hidden"} in conflicts
    assert {f["id"] for f in conflicts if f.get("disclosure") == "coarse"} == {
        "cx-heron-patrol",
        "cz-birch-nofire",
        "cx-marten-post",
    }
    gaps = [g for answer in checks for g in answer["gaps"]]
    assert {"party": "alfa", "reason": "stale_asset", "since": None, "asset": {"party": "alfa", "disclosure": "hidden"}} in gaps
    sse = next(c for c in calls if c.url == "/v1/events?cursor=0&limit=200")
    found = [
        json.loads(line[6:])["data"]["found"]
        for line in sse.text.splitlines()
        if line.startswith('data: {"seq"') and json.loads(line[6:])["type"] == "conflict.detected"
    ]
    assert found.count({"party": "alfa", "disclosure": "hidden"}) == 3  # the hidden unit, zone and route ran into overwatch
    assert {f.get("disclosure") for f in found} == {"hidden", "coarse", "exact"}
    entries = next(c.json for c in calls if c.url == "/v1/ledger/entries")["entries"]
    unreadable = [e["event"]["type"] for e in entries if None in e.get("sealed", [])]
    assert {"report.accepted", "zone.declared", "asset.registered", "check.asked", "activity.proposed"} <= set(unreadable)


@pytest.mark.parametrize("who", ["bravo", "bravo:viewer", "bravo:auditor"])
def test_no_response_carries_alfas_coarse_or_hidden_secrets(
    walks: dict[str, Walk], needles: dict[str, Needles], who: str
) -> None:
    found = leaks(walks[who], needles)
    assert found == [], "\n".join(str(leak) for leak in found[:20])


@pytest.mark.parametrize("who", ["bravo", "bravo:viewer", "bravo:auditor"])
def test_control_bravo_sees_the_exact_site_position(walks: dict[str, Walk], who: str) -> None:
    """The detector finds what bravo may see: the exact site, as numbers and as MGRS, in lists, checks and streams."""
    found = leaks(walks[who], CONTROL)
    written = {leak.needle for leak in found}
    assert {f"{v:.5f}" for v in EXACT_SITE} <= written and to_mgrs(LatLon(*EXACT_SITE)) in written
    assert {"GET /v1/assets", "POST /v1/checks", "GET /v1/events", "WS /v1/events/ws"} <= {leak.route for leak in found}


def test_control_alfa_finds_each_of_its_own_secrets(walks: dict[str, Walk], needles: dict[str, Needles]) -> None:
    """Every needle family is one a body would carry: alfa, who may see it all, meets each secret, in every form."""
    found = leaks(walks["alfa"], needles)
    assert {leak.what for leak in found} == set(needles)
    written = {leak.needle for leak in found}
    for secret in (HIDDEN_SITE, HIDDEN_UNIT[-1], COARSE_SITE, COARSE_UNIT[-1], MARSH_SCOUT[-1], QUIET):
        assert {f"{v:.5f}" for v in secret} <= written, secret
    for secret in (HIDDEN_SITE, HIDDEN_UNIT[-1], COARSE_SITE, COARSE_UNIT[-1]):
        assert to_mgrs(LatLon(*secret)) in written, secret
    for vertices in (HIDDEN_ZONE, COARSE_ZONE, HIDDEN_ROUTE):
        assert {f"{v:.5f}" for vertex in vertices for v in vertex} <= written
    assert {name for names in HIDDEN_NAMES.values() for name in names} | {QUIET_ID, QUIET_PURPOSE} <= written
    quiet_box = needles["quiet mission"].numbers - set(QUIET)
    assert len(quiet_box) == 4 and all(any(NUMBER.fullmatch(w) and renders(w, v) for w in written) for v in quiet_box)
    routes = {leak.route for leak in found}
    assert {"GET /v1/assets", "GET /v1/zones", "GET /v1/ledger/entries", "GET /v1/events", "WS /v1/events/ws"} <= routes


def test_the_walks_own_inputs_carry_no_coordinate_of_alfas(walks: dict[str, Walk], needles: dict[str, Needles]) -> None:
    """Walkers ask near alfa's secrets but never at them: a coordinate found is never the caller's own read back.

    (Hidden ids are sent on purpose, as path parameters: their echo in a refusal is allowed.)
    """
    for walk in walks.values():
        for call in walk.calls:
            for what, secret in needles.items():
                assert found_in(call.sent, secret.coordinates()) == [], (walk.who, what, call.sent)


# ---------------------------------------------------------------------------- the detector itself


@pytest.mark.parametrize(
    "written",
    [
        "34.6124",  # rounded to 4 places
        "34.6123",  # cut to 4 places
        "34.61237",
        "34.612370",  # a picture key's 6 places
        "34.612369",  # ... rounded outwards by a micro-degree
        "34.6123700",
        "34.61236999999999",  # float noise
        "[71.04391,34.61237]",  # GeoJSON order
        "34.61237, 71.04391",
    ],
)
def test_the_detector_reads_a_coordinate_in_any_rendering(written: str) -> None:
    assert found_in(f'{{"text": "{written}"}}', SECRETS["hidden site"])


@pytest.mark.parametrize("written", ["34.6125", "34.61238", "34.612372", "34.612", "134.61237", "34.612370.1", "3461237"])
def test_the_detector_does_not_read_a_neighbouring_number_as_the_secret(written: str) -> None:
    assert found_in(f'{{"lat": "{written}"}}', Needles(frozenset({HIDDEN_SITE[0]}))) == []


def test_an_echo_is_no_leak_but_the_same_text_unasked_is() -> None:
    """The echo rule exempts only the response to a request that carried the needle."""
    hidden_id = HIDDEN_NAMES["hidden site"][0]
    walk = Walk("probe", [Call(("GET", "/x"), f"/x/{hidden_id}", f"/x/{hidden_id}", 404, f"no visible asset alfa/{hidden_id}")])
    assert leaks(walk, SECRETS) == []
    walk.calls.append(Call(("GET", "/y"), "/y", "/y", 200, f'{{"id": "{hidden_id}"}}'))
    assert [leak.url for leak in leaks(walk, SECRETS)] == ["/y"]


def test_hex_strings_are_read_decoded() -> None:
    leaf = json.dumps({"lat": HIDDEN_SITE[0]}).encode().hex()
    assert found_in(readable(f'{{"leaf_hex": "{leaf}"}}'), SECRETS["hidden site"])
    assert found_in(f'{{"leaf_hex": "{leaf}"}}', SECRETS["hidden site"]) == []


# ---------------------------------------------------------------------------- a mission's id, guessed


def test_a_mission_bravo_may_not_see_is_refused_like_one_that_does_not_exist(api: Api) -> None:
    """GET, answer and check against an activity bravo is not concerned by: the same refusal as for a missing id."""
    api.aor("alfa", "alfa-land", ALFA_LAND)
    propose(api, "alfa", QUIET_ID, "fires", QUIET_PURPOSE, position(QUIET), 400)
    for method, template, body in (
        ("GET", "/v1/activities/alfa/{}", None),
        ("POST", "/v1/activities/alfa/{}/acknowledge", None),
        ("POST", "/v1/activities/alfa/{}/object", {"reason": "no"}),
        ("POST", "/v1/checks", {"position": NEAR_SITE, "kind": "fires", "activity": "{}"}),
    ):
        answers = []
        for activity_id in (QUIET_ID, "ax-op-nothing"):
            url = template.format(activity_id)
            sent = None if body is None else json.loads(json.dumps(body).replace("{}", activity_id))
            response = api.call(method, url, "bravo", json=sent)
            answers.append((response.status_code, response.text.replace(activity_id, "X")))
        assert answers[0] == answers[1], (method, template, answers)


def test_proposing_under_the_id_of_a_mission_bravo_may_not_see_is_answered_as_under_a_free_id(api: Api) -> None:
    """Activity ids are each proposer's own: one alfa uses must not tell bravo that alfa has a mission by that name."""
    propose(api, "alfa", QUIET_ID, "fires", QUIET_PURPOSE, position(QUIET), 400)
    answers = []
    for activity_id in (QUIET_ID, "ax-op-nothing"):
        body = {"id": activity_id, "kind": "patrol", "purpose": "p", "volumes": [volume("34.4000, 70.8000", 100)]}
        response = api.post("/v1/activities", "bravo", json={**body, "key": look(api, "bravo")})
        answers.append((response.status_code, response.text.replace(activity_id, "X")))
    assert answers[0][0] == answers[1][0], answers


def test_an_activity_id_made_for_bravo_does_not_count_missions_bravo_may_not_see(tmp_path: Path) -> None:
    """A made id ('bravo-<n>') counts only bravo's own activities, not alfa's that bravo may not see."""
    made = []
    for alfa_missions in (0, 1):
        with running_api(tmp_path / f"{alfa_missions}.db") as api:
            add_parties(api)
            if alfa_missions:
                propose(api, "alfa", QUIET_ID, "fires", QUIET_PURPOSE, position(QUIET), 400)
            body = {"kind": "patrol", "purpose": "p", "volumes": [volume("34.4000, 70.8000", 100)], "key": look(api, "bravo")}
            made.append(api.ok("POST", "/v1/activities", "bravo", 201, json=body)["id"])
    assert made[0] == made[1]
