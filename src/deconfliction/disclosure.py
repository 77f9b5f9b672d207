"""Need to know: the one policy that decides what of another party's object a caller sees.

- ``exact``: id, name, position and distance;
- ``coarse``: id, name, the H3 cell and a distance band, never a point;
- ``hidden``: used by checks, but only the owning party is named.

A party always sees its own objects exactly; an owner may grant a named party more for a class of
its objects (party B sees my sites exactly). Every outlet that shows an asset, a zone or
a finding calls :func:`level_for` and one of the ``show_*`` functions here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h3

from deconfliction.geo import LatLon, to_mgrs
from deconfliction.model import Disclosure, Finding, Gap

DISTANCE_BANDS_M = (250, 500, 1000, 2000, 5000)


Grants = Mapping[tuple[str, str, str], Disclosure]
"""(owner, grantee, what) to the level the owner grants: ``("pak", "isaf", "site"): EXACT``."""
NO_GRANTS: Grants = {}
OPENNESS = {Disclosure.HIDDEN: 0, Disclosure.COARSE: 1, Disclosure.EXACT: 2}
GRANTABLE = ("unit", "site", "zone")
"""What a grant covers: an owner's units, its sites, or its zones."""


def grantable(object_: str) -> str:
    """The class a grant names for a finding's or an event's object: ``unit``, ``site``, or ``zone`` for every zone kind."""
    return object_ if object_ in ("unit", "site") else "zone"


def level_for(
    owner: str, disclosure: Disclosure, viewer: str | None, what: str | None = None, grants: Grants = NO_GRANTS
) -> Disclosure:
    """What ``viewer`` may see of an object ``owner`` declared with ``disclosure``: the one policy every outlet asks.

    The owner sees everything; others see the declared level, or more where the owner granted
    them more for that class of object (``what``: unit, site or zone). A grant never lowers a level.
    """
    if viewer == owner:
        return Disclosure.EXACT
    granted = grants.get((owner, viewer, what)) if viewer is not None and what is not None else None
    return granted if granted is not None and OPENNESS[granted] > OPENNESS[disclosure] else disclosure


def distance_band(distance_m: float) -> str:
    """``"250-500 m"``: the band a coarse distance is shown as."""
    low = 0
    for high in DISTANCE_BANDS_M:
        if distance_m < high:
            return f"under {high} m" if low == 0 else f"{low}-{high} m"
        low = high
    return f"over {low} m"


def show_point(point: LatLon) -> dict[str, Any]:
    # + 0.0: a place a hair west of the meridian or south of the equator rounds to -0.0, a sign that means nothing.
    return {"lat": round(point.lat, 7) + 0.0, "lon": round(point.lon, 7) + 0.0, "mgrs": to_mgrs(point)}


def show_cell(point: LatLon, resolution: int) -> str:
    """The H3 cell a coarse position is shown as."""
    return str(h3.latlng_to_cell(point.lat, point.lon, resolution))


def show_finding(finding: Finding, viewer: str | None, cell_resolution: int, grants: Grants = NO_GRANTS) -> dict[str, Any]:
    level = level_for(finding.party, finding.disclosure, viewer, grantable(finding.object), grants)
    if level is Disclosure.HIDDEN:
        return {"party": finding.party, "disclosure": "hidden"}
    shown: dict[str, Any] = {
        "party": finding.party,
        "object": finding.object,
        "id": finding.id,
        "name": finding.name,
        "disclosure": level.value,
    }
    if level is Disclosure.EXACT:
        shown["distance_m"] = round(finding.distance_m, 1)
        if finding.point is not None:
            shown["position"] = show_point(finding.point)
    else:
        shown["distance_band"] = distance_band(finding.distance_m)
        if finding.point is not None:
            shown["cell"] = show_cell(finding.point, cell_resolution)
    return shown


def show_gap(gap: Gap, viewer: str | None, cell_resolution: int, grants: Grants = NO_GRANTS) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "party": gap.party,
        "reason": gap.reason,
        "since": None if gap.since is None else gap.since.isoformat(),
    }
    if gap.aor is not None:
        shown["aor"] = gap.aor
    if gap.asset is not None:
        asset = show_finding(gap.asset, viewer, cell_resolution, grants)
        if asset.get("disclosure") == "hidden":
            shown["since"] = None  # when a hidden unit went stale is itself a clue
        shown["asset"] = asset
    return shown
