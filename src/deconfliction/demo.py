"""A demo border picture: two forces either side of a border on the meridian 71° E and an aid agency.

Synthetic geometry in the valley of the 2011 incident. ``load_demo(service)`` writes it
through the ordinary service calls (so it lands in the log like any other writes) and
returns one liaison token per party.
"""

from __future__ import annotations

from typing import Any

from deconfliction.model import Role
from deconfliction.service import ROOT, Caller, Service


def _box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


PARTIES = [
    {"id": "alfa", "name": "Alfa Army"},
    {"id": "bravo", "name": "Bravo Coalition"},
    {"id": "relief", "name": "Relief Agency"},
]
TERRITORIES = {"alfa": _box(71.0, 34.3, 71.3, 34.9), "bravo": _box(70.7, 34.3, 71.0, 34.9)}

PICTURE: dict[str, list[dict[str, Any]]] = {
    "alfa": [
        {"aor": {"id": "alfa-border", "area": _box(71.0, 34.4, 71.15, 34.75), "freshness_s": 12 * 3600}},
        {
            "asset": {
                "id": "volcano",
                "kind": "site",
                "name": "Post Volcano",
                "position": "34.5500, 71.0150",
                "uncertainty_m": 25,
                "disclosure": "hidden",
            }
        },
        {
            "asset": {
                "id": "boulder",
                "kind": "site",
                "name": "Post Boulder",
                "position": "42S XD 85335 26098",
                "uncertainty_m": 25,
                "disclosure": "coarse",
            }
        },
        {
            "asset": {
                "id": "qrf-1",
                "kind": "unit",
                "name": "Quick Reaction Force 1",
                "position": "34.6200, 71.0800",
                "uncertainty_m": 100,
                "stale_after_s": 4 * 3600,
                "disclosure": "coarse",
            }
        },
        {"zone": {"id": "village-nfa", "kind": "no_fire_area", "name": "Village", "area": _box(71.05, 34.48, 71.08, 34.51)}},
        {"confirm": "alfa-border"},
    ],
    "bravo": [
        {"aor": {"id": "bravo-east", "area": _box(70.85, 34.4, 71.0, 34.75), "freshness_s": 12 * 3600}},
        {
            "asset": {
                "id": "tf-alpha",
                "kind": "unit",
                "name": "Task Force Alpha",
                "position": "34.5450, 70.9800",
                "uncertainty_m": 50,
                "stale_after_s": 4 * 3600,
            }
        },
        {
            "asset": {
                "id": "cop-north",
                "kind": "site",
                "name": "Combat Outpost North",
                "position": "34°39'00\"N 70°55'30\"E",
                "uncertainty_m": 30,
            }
        },
        {
            "zone": {
                "id": "airstrip",
                "kind": "protected_area",
                "name": "Forward airstrip",
                "area": _box(70.90, 34.45, 70.92, 34.46),
            }
        },
        {"confirm": "bravo-east"},
    ],
    "relief": [
        {"asset": {"id": "clinic", "kind": "site", "name": "Field clinic", "position": "34.7000, 71.1000", "uncertainty_m": 20}},
        {
            "zone": {
                "id": "convoy",
                "kind": "route",
                "name": "Convoy route",
                "width_m": 200,
                "area": {"type": "LineString", "coordinates": [[70.88, 34.70], [70.95, 34.68], [71.02, 34.69], [71.10, 34.70]]},
            }
        },
    ],
}


def load_demo(service: Service) -> dict[str, str]:
    """Write the demo picture and return ``{party: liaison token}`` (and ``admin``)."""
    tokens = {"admin": service.create_token(ROOT, None, "admin")}
    for party in PARTIES:
        service.create_party(ROOT, party)
    for party_id, area in TERRITORIES.items():
        service.put_territory(ROOT, party_id, area)
    for party_id, steps in PICTURE.items():
        caller = Caller(party_id, Role.LIAISON)
        for step in steps:
            if "aor" in step:
                service.declare_aor(caller, step["aor"])
            elif "asset" in step:
                service.register_asset(caller, step["asset"])
            elif "zone" in step:
                service.declare_zone(caller, step["zone"])
            else:
                service.confirm_aor(caller, step["confirm"])
        tokens[party_id] = service.create_token(ROOT, party_id, "liaison")
    return tokens
