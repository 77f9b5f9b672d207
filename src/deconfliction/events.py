"""Events: how each accepted write is written to the log, and how the log rebuilds the picture.

One function per direction: ``*_event`` builds the event for a validated domain object,
:func:`apply` replays any event onto a :class:`~deconfliction.engine.picture.Picture`.
Start-up and live writes go through the same :func:`apply`, so a restart restores exactly
the picture that was served.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import shapely.geometry

from deconfliction.engine.activities import settled
from deconfliction.engine.picture import Picture
from deconfliction.geo import LatLon, to_geojson
from deconfliction.model import (
    Activity,
    ActivityKind,
    ActivityState,
    AltitudeBand,
    Answer,
    Aor,
    Asset,
    AssetKind,
    Disclosure,
    Event,
    Party,
    Report,
    Territory,
    Volume,
    Window,
    Zone,
    ZoneKind,
)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def iso_or_none(value: datetime | None) -> str | None:
    """An instant as events and answers write it (ISO 8601), or None."""
    return None if value is None else value.isoformat()


def party_event(party: Party, at: datetime, by: str | None) -> Event:
    return Event("party.created", at, by, {"id": party.id, "name": party.name, "stale_after_s": party.stale_after_s})


def asset_event(asset: Asset, at: datetime) -> Event:
    data = {"party": asset.party, "id": asset.id, "kind": asset.kind, "name": asset.name, "disclosure": asset.disclosure}
    return Event("asset.registered", at, asset.party, data)


def report_event(report: Report, at: datetime, disclosure: Disclosure, kind: AssetKind) -> Event:
    """A position report, with its asset's disclosure and kind: whoever reads the log later must know whom it may tell."""
    data = {
        "party": report.party,
        "asset": report.asset,
        "lat": report.point.lat,
        "lon": report.point.lon,
        "time": report.time.isoformat(),
        "uncertainty_m": report.uncertainty_m,
        "stale_at": iso_or_none(report.stale_at),
        "notation": report.notation,
        "how": report.how,
        "disclosure": disclosure,
        "kind": kind,
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


def withdrawal_event(type_: str, party: str, id_: str, at: datetime, disclosure: Disclosure | None = None) -> Event:
    """``asset.withdrawn``, ``position.withdrawn``, ``zone.withdrawn`` or ``aor.confirmed``.

    A withdrawn object's disclosure goes with the event: the object is gone, and the
    event stream still has to know whom it may tell.
    """
    data: dict[str, Any] = {"party": party, "id": id_}
    if disclosure is not None:
        data["disclosure"] = disclosure
    return Event(type_, at, party, data)


def activity_event(activity: Activity, at: datetime) -> Event:
    """``activity.proposed``: the whole activity as proposed, with the parties it affects."""
    data = {
        "id": activity.id,
        "party": activity.party,
        "kind": activity.kind,
        "purpose": activity.purpose,
        "volumes": [
            {
                "area": to_geojson(v.geometry),
                "radius_m": v.radius_m,
                "window": [v.window.start.isoformat(), v.window.end.isoformat()],
                "altitude_m": None if v.altitude is None else [v.altitude.low_m, v.altitude.high_m],
            }
            for v in activity.volumes
        ],
        "affected": list(activity.affected),
        "deadline": activity.deadline.isoformat(),
        "envelope": list(activity.envelope),
    }
    return Event("activity.proposed", at, activity.party, data)


def transition_event(type_: str, activity: Activity, at: datetime, by: str | None, **data: Any) -> Event:
    """``activity.acknowledged`` and every later step (and notices about the activity): its id, its parties, what the step adds.

    A transition carries the state it leads to, so that a stream read later shows each step as it was.
    """
    body = {"id": activity.id, "party": activity.party, "affected": list(activity.affected), "by": by, **data}
    event = Event(type_, at, by, body)
    if type_ in TRANSITIONS:
        body["state"] = _next_state(activity, event).state
    return event


def activity_of(d: dict[str, Any], at: datetime) -> Activity:
    """The activity an ``activity.proposed`` event proposes."""
    volumes = tuple(
        Volume(
            geometry=_shape(v["area"]),
            radius_m=v["radius_m"],
            window=Window(*(datetime.fromisoformat(t) for t in v["window"])),
            altitude=None if v["altitude_m"] is None else AltitudeBand(*v["altitude_m"]),
        )
        for v in d["volumes"]
    )
    activity = Activity(
        id=d["id"],
        party=d["party"],
        kind=ActivityKind(d["kind"]),
        volumes=volumes,
        purpose=d["purpose"],
        affected=tuple(d["affected"]),
        proposed_at=at,
        deadline=datetime.fromisoformat(d["deadline"]),
        envelope=tuple(d["envelope"]),
    )
    return replace(activity, state=settled(activity))


def _next_state(activity: Activity, event: Event) -> Activity:
    """The activity after one of its transition events."""
    d, at = event.data, event.time
    match event.type:
        case "activity.acknowledged" | "activity.objected":
            answer = Answer(event.type == "activity.acknowledged", at, d.get("reason"))
            answered = replace(activity, answers={**activity.answers, d["by"]: answer})
            return replace(answered, state=settled(answered))
        case "activity.escalated":
            escalated = replace(activity, escalated_at=at)
            return replace(escalated, state=settled(escalated))
        case "activity.activated":
            return replace(activity, state=ActivityState.ACTIVE, activated_at=at, override=d.get("override"))
        case "activity.completed":
            return replace(activity, state=ActivityState.COMPLETED, ended_at=at, end_reason=d.get("reason"))
        case _:  # activity.cancelled
            return replace(activity, state=ActivityState.CANCELLED, ended_at=at, end_reason=d.get("reason"))


TRANSITIONS = (
    "activity.acknowledged",
    "activity.objected",
    "activity.escalated",
    "activity.activated",
    "activity.completed",
    "activity.cancelled",
)


def _shape(data: dict[str, Any]) -> Any:
    return shapely.geometry.shape(data)


def zone_of(d: dict[str, Any]) -> Zone:
    """The zone a ``zone.declared`` event declares."""
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
        how=d.get("how"),  # reports written before CoT ingest have none
    )


def apply(picture: Picture, event: Event) -> None:
    """Replay one picture event; events that only feed the record (tokens, checks, notices) are ignored.

    The version of the picture is the log position of its latest change (``event.seq``),
    so that it means the same after a restart (which skips superseded reports) as before it.
    """
    d, seq = event.data, event.seq
    match event.type:
        case "party.created":
            picture.put_party(Party(d["id"], d["name"], d["stale_after_s"]), seq)
        case "party.defaults":
            picture.put_party(replace(picture.parties[d["party"]], default_disclosure=Disclosure(d["disclosure"])), seq)
        case "grant.given":
            picture.put_grant((d["party"], d["grantee"], d["what"]), Disclosure(d["level"]), seq)
        case "grant.withdrawn":
            picture.withdraw_grant((d["party"], d["grantee"], d["what"]), seq)
        case "territory.loaded":
            picture.put_territory(Territory(d["party"], _shape(d["area"])), seq)
        case "asset.registered":
            asset = Asset(d["party"], d["id"], AssetKind(d["kind"]), d["name"], Disclosure(d["disclosure"]))
            picture.put_asset(asset, seq)
        case "asset.withdrawn":
            picture.withdraw_asset((d["party"], d["id"]), seq)
        case "report.accepted":
            picture.put_report(_report(d), seq)
        case "position.withdrawn":
            picture.withdraw_position((d["party"], d["id"]), seq)
        case "zone.declared":
            picture.put_zone(zone_of(d), seq)
        case "zone.withdrawn":
            picture.withdraw_zone((d["party"], d["id"]), seq)
        case "aor.declared":
            picture.put_aor(Aor(d["party"], d["id"], _shape(d["area"]), d["freshness_s"]), seq)
        case "aor.confirmed":
            picture.confirm_aor((d["party"], d["id"]), event.time, seq)
        case "aor.lapsed":
            picture.lapses_noticed.add((d["party"], d["id"]))
        case "probe.suspected":
            picture.probes[d["party"]].append({**d, "noticed_at": event.time.isoformat(), "record": seq})
        case "activity.proposed":
            picture.put_activity(activity_of(d, event.time), seq)
        case t if t in TRANSITIONS:
            picture.put_activity(_next_state(picture.activities[(d["party"], d["id"])], event), seq)
