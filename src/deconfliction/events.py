"""Events: how each accepted write is written to the log, and how the log rebuilds the picture.

One function per direction: ``*_event`` builds the event for a validated domain object,
:func:`apply` replays any event onto a :class:`~deconfliction.engine.picture.Picture`.
Start-up and live writes go through the same :func:`apply`, so a restart restores exactly
the picture that was served.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import shapely.geometry

from deconfliction.engine.picture import Picture
from deconfliction.geo import LatLon, to_geojson
from deconfliction.model import (
    AltitudeBand,
    Aor,
    Asset,
    AssetKind,
    Disclosure,
    Event,
    Party,
    Report,
    Territory,
    Window,
    Zone,
    ZoneKind,
)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def party_event(party: Party, at: datetime, by: str | None) -> Event:
    return Event("party.created", at, by, {"id": party.id, "name": party.name, "stale_after_s": party.stale_after_s})


def asset_event(asset: Asset, at: datetime) -> Event:
    data = {"party": asset.party, "id": asset.id, "kind": asset.kind, "name": asset.name, "disclosure": asset.disclosure}
    return Event("asset.registered", at, asset.party, data)


def report_event(report: Report, at: datetime) -> Event:
    data = {
        "party": report.party,
        "asset": report.asset,
        "lat": report.point.lat,
        "lon": report.point.lon,
        "time": report.time.isoformat(),
        "uncertainty_m": report.uncertainty_m,
        "stale_at": _iso(report.stale_at),
        "notation": report.notation,
    }
    return Event("report.accepted", at, report.party, data)


def zone_event(zone: Zone, at: datetime) -> Event:
    data = {
        "party": zone.party,
        "id": zone.id,
        "kind": zone.kind,
        "name": zone.name,
        "area": to_geojson(zone.geometry),
        "width_m": zone.width_m,
        "window": None if zone.window is None else [zone.window.start.isoformat(), zone.window.end.isoformat()],
        "altitude_m": None if zone.altitude is None else [zone.altitude.low_m, zone.altitude.high_m],
        "disclosure": zone.disclosure,
    }
    return Event("zone.declared", at, zone.party, data)


def aor_event(aor: Aor, at: datetime) -> Event:
    data = {"party": aor.party, "id": aor.id, "area": to_geojson(aor.geometry), "freshness_s": aor.freshness_s}
    return Event("aor.declared", at, aor.party, data)


def territory_event(territory: Territory, at: datetime, by: str | None) -> Event:
    return Event("territory.loaded", at, by, {"party": territory.party, "area": to_geojson(territory.geometry)})


def withdrawal_event(type_: str, party: str, id_: str, at: datetime) -> Event:
    """``asset.withdrawn``, ``position.withdrawn``, ``zone.withdrawn`` or ``aor.confirmed``."""
    return Event(type_, at, party, {"party": party, "id": id_})


def _shape(data: dict[str, Any]) -> Any:
    return shapely.geometry.shape(data)


def _zone(d: dict[str, Any]) -> Zone:
    window = None if d["window"] is None else Window(*(datetime.fromisoformat(t) for t in d["window"]))
    altitude = None if d["altitude_m"] is None else AltitudeBand(*d["altitude_m"])
    return Zone(
        party=d["party"],
        id=d["id"],
        kind=ZoneKind(d["kind"]),
        geometry=_shape(d["area"]),
        width_m=d["width_m"],
        window=window,
        altitude=altitude,
        disclosure=Disclosure(d["disclosure"]),
        name=d["name"],
    )


def _report(d: dict[str, Any]) -> Report:
    return Report(
        party=d["party"],
        asset=d["asset"],
        point=LatLon(d["lat"], d["lon"]),
        time=datetime.fromisoformat(d["time"]),
        uncertainty_m=d["uncertainty_m"],
        stale_at=_time(d["stale_at"]),
        notation=d["notation"],
    )


def apply(picture: Picture, event: Event) -> None:
    """Replay one picture event; events that only feed the record (tokens, checks) are ignored."""
    d = event.data
    match event.type:
        case "party.created":
            picture.put_party(Party(d["id"], d["name"], d["stale_after_s"]))
        case "territory.loaded":
            picture.put_territory(Territory(d["party"], _shape(d["area"])))
        case "asset.registered":
            asset = Asset(d["party"], d["id"], AssetKind(d["kind"]), d["name"], Disclosure(d["disclosure"]))
            picture.put_asset(asset)
        case "asset.withdrawn":
            picture.withdraw_asset((d["party"], d["id"]))
        case "report.accepted":
            picture.put_report(_report(d))
        case "position.withdrawn":
            picture.withdraw_position((d["party"], d["id"]))
        case "zone.declared":
            picture.put_zone(_zone(d))
        case "zone.withdrawn":
            picture.withdraw_zone((d["party"], d["id"]))
        case "aor.declared":
            picture.put_aor(Aor(d["party"], d["id"], _shape(d["area"]), d["freshness_s"]))
        case "aor.confirmed":
            picture.confirm_aor((d["party"], d["id"]), event.time)
        case _:
            return
    # The version of the picture is the log position of its latest change, so that it
    # means the same after a restart (which skips superseded reports) as before it.
    if event.seq:
        picture.version = event.seq
